"""Clipboard over RFB against a scripted server: plain cut text, the extended clipboard,
nothing crossing while sharing is off, and hostile clipboard data."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from tests.console.fake_server import FakeWriter, greeting, rect, update
from tests.console.vnc_fake_server import (
    FakeVncServer,
    ext_clipboard,
    server_cut_text,
    server_provide,
)
from virtstudio.console import rfb_clipboard as clip
from virtstudio.console.rfb_client import RfbClient


async def _connected(server: FakeVncServer, *, share: bool) -> tuple[RfbClient, list, asyncio.Task]:
    client = RfbClient(encoding="raw")
    client.share_clipboard = share
    texts: list[str] = []
    client.clipboard.connect(texts.append)
    await client.connect_socket(server.opener())
    task = asyncio.create_task(client.run())
    await client.wait_update(5)
    return client, texts, task


async def _until(condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def _settle(client: RfbClient, server: FakeVncServer) -> None:
    """Each side has handled all the other sent so far, proven by a later message on the
    same connection: a one-pixel update the client must draw (so it has read, and answered,
    everything before it), then a pointer move the server must record (so it has read
    everything the client sent before it, those answers included)."""
    updates = client.updates
    server.push(update(rect(0, 0, 1, 1, 0, b"\x00\x00\x00\x00")))
    await _until(lambda: client.updates > updates)
    moves = len(server.of_kind("pointer"))
    client.pointer_event(0, 0, 0)
    await _until(lambda: len(server.of_kind("pointer")) > moves)


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def plain_server():
    with FakeVncServer() as server:
        yield server


@pytest.fixture
def ext_server():
    with FakeVncServer(ext_clipboard=True) as server:
        yield server


def test_plain_cut_text_crosses_only_while_shared(plain_server):
    async def go():
        client, texts, task = await _connected(plain_server, share=False)
        plain_server.push(server_cut_text("secret from guest"))
        assert client.send_clipboard("secret from desktop") is False
        await _settle(client, plain_server)
        assert texts == [] and plain_server.of_kind("cut") == []
        client.set_clipboard_sharing(True)
        plain_server.push(server_cut_text("line one\r\nline two"))
        assert client.send_clipboard("caf\u00e9 \u2713")
        await _settle(client, plain_server)
        task.cancel()
        return texts

    texts = _run(go())
    assert texts == ["line one\nline two"]
    # Plain cut text is Latin-1: what it cannot carry becomes '?'.
    assert plain_server.of_kind("cut") == ["caf\u00e9 ?"]


def test_extended_clipboard_round_trip(ext_server):
    async def go():
        client, texts, task = await _connected(ext_server, share=True)
        await _settle(client, ext_server)
        assert client.extended_clipboard
        caps = [f for f, _ in ext_server.of_kind("ext") if f & clip.ACTION_CAPS]
        assert caps and caps[0] & clip.FORMAT_TEXT and caps[0] & clip.ACTION_PROVIDE
        # Desktop to guest: Notify, the server asks, the client provides UTF-8.
        client.send_clipboard("caf\u00e9 \u2713")
        await _settle(client, ext_server)
        assert (clip.ACTION_NOTIFY | clip.FORMAT_TEXT, b"") in ext_server.of_kind("ext")
        ext_server.push(ext_clipboard(clip.ACTION_REQUEST | clip.FORMAT_TEXT))
        await _settle(client, ext_server)
        provided = [clip.parse_provide(f, p) for f, p in ext_server.of_kind("ext")
                    if f & clip.ACTION_PROVIDE and not f & clip.ACTION_CAPS]
        # Guest to desktop: the server notifies, the client asks, the server provides.
        ext_server.push(ext_clipboard(clip.ACTION_NOTIFY | clip.FORMAT_TEXT))
        await _settle(client, ext_server)
        requested = (clip.ACTION_REQUEST | clip.FORMAT_TEXT, b"") in ext_server.of_kind("ext")
        ext_server.push(server_provide("gr\u00fc\u00df dich\r\n"))
        await _settle(client, ext_server)
        task.cancel()
        return texts, provided, requested

    texts, provided, requested = _run(go())
    assert provided == ["caf\u00e9 \u2713"]
    assert requested
    assert texts == ["gr\u00fc\u00df dich\n"]


def test_extended_clipboard_off_sends_and_asks_nothing(ext_server):
    async def go():
        client, texts, task = await _connected(ext_server, share=False)
        await _settle(client, ext_server)
        assert not client.send_clipboard("desktop text")
        ext_server.push(ext_clipboard(clip.ACTION_NOTIFY | clip.FORMAT_TEXT))
        ext_server.push(ext_clipboard(clip.ACTION_REQUEST | clip.FORMAT_TEXT))
        ext_server.push(server_provide("guest text"))
        await _settle(client, ext_server)
        task.cancel()
        return texts

    texts = _run(go())
    assert texts == []
    # Only the capability exchange: no Notify, Request or Provide of ours.
    assert [f for f, _ in ext_server.of_kind("ext") if not f & clip.ACTION_CAPS] == []


def test_turning_sharing_off_withdraws_offered_text(ext_server):
    async def go():
        client, _texts, task = await _connected(ext_server, share=True)
        await _settle(client, ext_server)
        client.send_clipboard("offered")
        client.set_clipboard_sharing(False)
        ext_server.push(ext_clipboard(clip.ACTION_REQUEST | clip.FORMAT_TEXT))
        await _settle(client, ext_server)
        task.cancel()

    _run(go())
    flags = [f for f, _ in ext_server.of_kind("ext") if not f & clip.ACTION_CAPS]
    assert flags == [clip.ACTION_NOTIFY | clip.FORMAT_TEXT, clip.ACTION_NOTIFY]  # no Provide


def _provide_body(size: int, data: bytes) -> bytes:
    return zlib.compress(struct.pack("!I", size) + data)


@pytest.mark.parametrize(("message", "fragment"), [
    (ext_clipboard(clip.ACTION_PROVIDE | clip.FORMAT_TEXT,
                   _provide_body(clip.MAX_TEXT + 1, b"")), "too long"),
    (ext_clipboard(clip.ACTION_PROVIDE | clip.FORMAT_TEXT,
                   _provide_body(100, b"short")), "cut short"),
    (ext_clipboard(clip.ACTION_PROVIDE | clip.FORMAT_TEXT, b"not zlib at all"), "corrupt"),
    (struct.pack("!Bxxxi", 3, -2) + b"\x00\x00", "without flags"),
    (struct.pack("!BxxxI", 3, 1 << 30), "too long"),
])
def test_hostile_clipboard_closes_with_a_message(message, fragment):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(greeting() + message)
        reader.feed_eof()
        client = RfbClient()
        client.share_clipboard = True
        closed: list = []
        client.closed.connect(closed.append)
        await client.handshake(reader, FakeWriter())
        await client.run()
        return closed

    closed = asyncio.run(go())
    assert closed and fragment in closed[0]


def test_bomb_inflates_no_further_than_the_bound():
    bomb = zlib.compress(struct.pack("!I", 64) + b"A" * (50 << 20))
    assert clip.parse_provide(clip.ACTION_PROVIDE | clip.FORMAT_TEXT, bomb) == "A" * 64
