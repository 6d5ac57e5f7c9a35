"""The VNC client against the real lab guest: every encoding, typing, pixel-exact frames."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import libvirt
import pytest
from PySide6.QtGui import QImage

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml
from virtstudio.console.keymap import SHIFT_L, text_to_keys
from virtstudio.console.local import open_graphics_socket
from virtstudio.console.rfb_client import RfbClient

ROW = 16  # VGA text mode: 80x25 cells of 9x16 pixels
BOOT_S = 150  # start to shell prompt: about 6 s idle, much more on a loaded machine


@pytest.fixture(scope="module")
def lab_guest(lab_images):
    name = f"vstest-vnc-{os.getpid()}"
    conn = libvirt.open(SYSTEM_URI)
    dom = conn.createXML(lab_domain_xml(name, lab_images, graphics=("vnc",)), 0)
    try:
        # The banner, "Enter 'help'..." and the prompt fill the first 19 text rows.
        deadline = time.monotonic() + BOOT_S
        while _text_rows(screenshot(dom)) < 19:
            if time.monotonic() > deadline:
                pytest.fail(f"the lab guest did not reach its shell prompt in {BOOT_S} s")
            time.sleep(0.5)  # the poll's interval: each screenshot costs the guest time
        yield dom
    finally:
        dom.destroy()


def screenshot(dom) -> tuple[int, int, bytes]:
    stream = dom.connect().newStream(0)
    dom.screenshot(stream, 0)
    chunks = []
    stream.recvAll(lambda _s, data, acc: acc.append(data) or len(data), chunks)
    stream.finish()
    image = QImage.fromData(b"".join(chunks)).convertToFormat(QImage.Format.Format_RGB32)
    return image.width(), image.height(), bytes(image.constBits())[:image.sizeInBytes()]


def _text_rows(shot: tuple[int, int, bytes]) -> int:
    width, height, data = shot
    stride = width * 4
    rows = 0
    for r in range(height // ROW):
        band = data[r * ROW * stride:(r + 1) * ROW * stride]
        if band.strip(b"\x00\xff") and any(band[i] for i in range(0, len(band), 4)):
            rows = r + 1
    return rows


def opaque(data: bytes) -> bytes:
    """BGRX as QImage's RGB32 stores it: the unused byte reads 0xff."""
    out = bytearray(data)
    out[3::4] = b"\xff" * (len(out) // 4)
    return bytes(out)


def _row(data: bytes, width: int, row: int) -> bytes:
    stride = width * 4
    return data[row * ROW * stride:(row + 1) * ROW * stride]


def _answered(data: bytes, width: int, height: int) -> bool:
    prompt = _text_rows((width, height, data)) - 1
    answer = _row(data, width, prompt - 1)
    return prompt >= 3 and answer == _row(data, width, prompt - 3) and bool(
        answer.strip(b"\x00\xff"))


async def wait_answered(client, timeout: float = 90) -> None:
    """Wait until the last answer line has appeared (it matches the literal "42" two
    lines above): a busy machine may take a while, so no fixed time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        fb = client.framebuffer
        if _answered(opaque(fb.data), fb.width, fb.height):
            break
        if asyncio.get_running_loop().time() > deadline:
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await client.wait_update(1)
    await asyncio.sleep(0.3)


async def _wait_changed(client, before: bytes, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (bytes(client.framebuffer.data) == before
           and asyncio.get_running_loop().time() < deadline):
        with contextlib.suppress(asyncio.TimeoutError):
            await client.wait_update(1)


def _fb_rows(client) -> int:
    fb = client.framebuffer
    return _text_rows((fb.width, fb.height, opaque(fb.data)))


async def _wait_rows(client, rows: int, timeout: float = 60) -> None:
    """Until the screen holds ``rows`` text rows: a line's output and the next prompt."""
    deadline = asyncio.get_running_loop().time() + timeout
    while _fb_rows(client) < rows and asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(asyncio.TimeoutError):
            await client.wait_update(1)


async def _session(sock, encoding: str, dom) -> dict:
    client = RfbClient(encoding=encoding)
    await client.connect_socket(sock)
    runner = asyncio.create_task(client.run())
    try:
        await client.wait_update(10)
        for text in ("echo 42\n", "echo $((6*7))\n"):
            before, rows = bytes(client.framebuffer.data), _fb_rows(client)
            for keysym, scancode, shift in text_to_keys(text):
                if shift:
                    client.key_event(True, *SHIFT_L)
                client.key_event(True, keysym, scancode)
                client.key_event(False, keysym, scancode)
                if shift:
                    client.key_event(False, *SHIFT_L)
            await client.drain()
            # Like a typist, let the guest answer before the next line: QEMU drops keys
            # once the guest's PS/2 queue holds 8 bytes, and a busy guest reads none.
            await _wait_changed(client, before)
            await _wait_rows(client, rows + 2)
        await wait_answered(client)
        await asyncio.to_thread(dom.suspend)
        try:
            # A full frame of the paused guest, then libvirt's picture of the same moment.
            for _attempt in range(5):
                await asyncio.sleep(0.3)
                client.request_update(incremental=False)
                await client.wait_update(10)
                shot = await asyncio.to_thread(screenshot, dom)
                if opaque(client.framebuffer.data) == shot[2]:
                    break
        finally:
            await asyncio.to_thread(dom.resume)
        fb = client.framebuffer
        return {"fb": opaque(fb.data), "w": fb.width, "h": fb.height, "shot": shot,
                "qemu_keys": client.qemu_keys}
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


@pytest.mark.parametrize("encoding", ["raw", "zlib", "zrle", "tight"])
def test_encoding_types_and_matches_the_screenshot(lab_guest, encoding):
    sock = off_gui_thread(open_graphics_socket, lab_guest)
    result = asyncio.run(_session(sock, encoding, lab_guest))
    width, height, shot = result["shot"]
    assert (result["w"], result["h"]) == (width, height) == (720, 400)
    assert result["qemu_keys"]
    assert result["fb"] == shot, "decoded framebuffer differs from libvirt's screenshot"
    # The last lines read: "echo 42" / "42" / "echo $((6*7))" / <answer> / prompt.
    prompt = _text_rows(result["shot"]) - 1
    answer = _row(result["fb"], width, prompt - 1)
    literal = _row(result["fb"], width, prompt - 3)
    assert answer == literal and answer.strip(b"\x00\xff"), "the answer line is not 42"
