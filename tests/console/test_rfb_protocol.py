"""The RFB client against crafted server streams: each encoding, resize, auth, refusals."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from tests.console.fake_server import greeting, rect, run_client, server_init, update, zlib_payload
from virtstudio.console.des import vnc_auth_response
from virtstudio.console.framebuffer import ProtocolError
from virtstudio.console.rfb_client import (
    NUDGE_COUNT,
    NUDGE_INTERVAL_S,
    AuthenticationError,
    RfbClient,
)

RED = b"\x00\x00\xff\x00"  # BGRX
GREEN = b"\x00\xff\x00\x00"
BLUE = b"\xff\x00\x00\x00"


def pixel_at(client, x, y):
    fb = client.framebuffer
    i = y * fb.stride + x * 4
    return bytes(fb.data[i:i + 3])


def run(data, **kw):
    return asyncio.run(run_client(data, **kw))


def test_raw_and_client_requests():
    pixels = RED * 4 * 2
    client, writer, closed = run(greeting() + update(rect(1, 1, 4, 2, 0, pixels)))
    assert pixel_at(client, 1, 1) == RED[:3] and pixel_at(client, 4, 2) == RED[:3]
    assert pixel_at(client, 0, 0) == b"\x00\x00\x00"
    assert client.name == "fake" and client.updates == 1
    assert closed == ["The server closed the connection."]
    sent = bytes(writer.sent)
    assert sent.startswith(b"RFB 003.008\n\x01\x01")  # version, security None, shared
    assert b"\x00\x00\x00\x00" + struct.pack("!BBBB", 32, 24, 0, 1) in sent  # SetPixelFormat


def test_zlib_stream_spans_rectangles():
    z = zlib.compressobj()
    first = rect(0, 0, 2, 1, 6, zlib_payload(z, GREEN * 2))
    second = rect(0, 1, 2, 1, 6, zlib_payload(z, BLUE * 2))
    client, _, _ = run(greeting() + update(first, second), encoding="zlib")
    assert pixel_at(client, 1, 0) == GREEN[:3] and pixel_at(client, 1, 1) == BLUE[:3]


def _cpixel(bgrx: bytes) -> bytes:
    return bgrx[:3]


def test_zrle_tile_types():
    z = zlib.compressobj()
    # Tile 1 (64x1 at 0,0): solid red.  Tile 2 (a 4x1 strip at 64,0): raw.
    tiles_a = b"\x01" + _cpixel(RED)
    tiles_b = b"\x00" + _cpixel(RED) + _cpixel(GREEN) + _cpixel(BLUE) + _cpixel(RED)
    # Packed palette of 2 colours on a 8x1 tile: bits 10110000 -> G R G G R R R R
    packed = b"\x02" + _cpixel(RED) + _cpixel(GREEN) + bytes([0b10110000])
    # Plain RLE on 8x1: 3 blue then 5 green.
    plain = b"\x80" + _cpixel(BLUE) + b"\x02" + _cpixel(GREEN) + b"\x04"
    # Palette RLE on 8x1: palette [red, blue]; run of 6 red, then single blue, single red.
    palrle = b"\x82" + _cpixel(RED) + _cpixel(BLUE) + b"\x80\x05" + b"\x01" + b"\x00"
    data = greeting(width=72, height=5) + update(
        rect(0, 0, 68, 1, 16, zlib_payload(z, tiles_a + tiles_b)),
        rect(0, 1, 8, 1, 16, zlib_payload(z, packed)),
        rect(0, 2, 8, 1, 16, zlib_payload(z, plain)),
        rect(0, 3, 8, 1, 16, zlib_payload(z, palrle)))
    client, _, _ = run(data, encoding="zrle")
    assert pixel_at(client, 63, 0) == RED[:3]
    assert [pixel_at(client, 64 + i, 0) for i in range(4)] == [
        RED[:3], GREEN[:3], BLUE[:3], RED[:3]]
    assert [pixel_at(client, i, 1) for i in range(4)] == [
        GREEN[:3], RED[:3], GREEN[:3], GREEN[:3]]
    assert [pixel_at(client, i, 2) for i in (0, 2, 3, 7)] == [
        BLUE[:3], BLUE[:3], GREEN[:3], GREEN[:3]]
    assert [pixel_at(client, i, 3) for i in (0, 5, 6, 7)] == [
        RED[:3], RED[:3], BLUE[:3], RED[:3]]


def test_tight_fill_copy_palette_gradient():
    z = zlib.compressobj()
    fill = rect(0, 0, 4, 4, 7, b"\x80" + b"\x00\x00\xff")  # fill, TPIXEL is R,G,B: blue
    copy_small = rect(4, 0, 2, 1, 7, b"\x00" + b"\xff\x00\x00" + b"\x00\xff\x00")  # < 12 bytes
    # Palette of 2 on 8x1: bits 01000000 -> c0 c1 c0...
    palette = rect(0, 4, 8, 1, 7, b"\x40\x01\x01" + b"\xff\x00\x00" + b"\x00\x00\xff"
                   + bytes([0b01000000]))
    # Gradient filter on 2x2, compressed (12 bytes): values are differences from prediction.
    raw = bytes([10, 20, 30, 5, 5, 5, 1, 2, 3, 0, 0, 0])
    body = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    gradient = rect(0, 5, 2, 2, 7, b"\x40\x02" + bytes([len(body)]) + body)
    client, _, _ = run(greeting(width=16, height=8) + update(fill, copy_small, palette, gradient),
                       encoding="tight")
    assert pixel_at(client, 3, 3) == BLUE[:3]
    assert pixel_at(client, 4, 0) == RED[:3] and pixel_at(client, 5, 0) == GREEN[:3]
    assert [pixel_at(client, i, 4) for i in range(3)] == [RED[:3], BLUE[:3], RED[:3]]
    # Row 0: (10,20,30), (15,25,35); row 1: (11,22,33), (16,27,38) as R,G,B.
    assert pixel_at(client, 0, 5) == bytes([30, 20, 10])
    assert pixel_at(client, 1, 5) == bytes([35, 25, 15])
    assert pixel_at(client, 0, 6) == bytes([33, 22, 11])
    assert pixel_at(client, 1, 6) == bytes([38, 27, 16])


def test_desktop_size_resizes_without_reconnecting():
    sizes = []
    data = greeting(width=64, height=48) + update(rect(0, 0, 800, 600, -223, b""))
    client = RfbClient()
    client.resized.connect(lambda w, h: sizes.append((w, h)))

    async def go():
        from tests.console.fake_server import FakeWriter

        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        await client.handshake(reader, FakeWriter())
        await client.run()

    asyncio.run(go())
    assert sizes == [(800, 600)]
    assert (client.framebuffer.width, client.framebuffer.height) == (800, 600)


def test_extended_desktop_size_and_qemu_keys():
    screens = struct.pack("!B3x", 1) + struct.pack("!IHHHHI", 7, 0, 0, 1024, 768, 0)
    data = greeting() + update(rect(0, 0, 0, 0, -258, b""),
                               rect(0, 0, 1024, 768, -308, screens),
                               rect(0, 0, 0, 0, -261, b"\x02"))
    client, writer, _ = run(data)
    assert client.qemu_keys and client.extended_desktop and client.leds == 2
    assert client.framebuffer.width == 1024
    client._writer = writer
    writer._closed = False
    writer.sent.clear()
    client.key_event(True, 0x61, 0x1E)
    assert bytes(writer.sent) == struct.pack("!BBHII", 255, 0, 1, 0x61, 0x1E)
    writer.sent.clear()
    assert client.set_desktop_size(1280, 720)
    assert writer.sent[0] == 251 and struct.unpack("!HH", writer.sent[2:6]) == (1280, 720)


def _type_a(client, writer) -> bytes:
    """Press and release 'a' on a finished client's writer; what it sent until it went quiet."""
    client._writer = writer
    writer._closed = False

    async def type_a() -> bytes:
        writer.sent.clear()
        client.key_event(True, 0x61, 0x1E)
        client.key_event(False, 0x61, 0x1E)
        # The nudges are timers on this loop, the last one due NUDGE_COUNT intervals from
        # now. The loop runs due timers in the order they fall due, however late it gets to
        # them, so this sleep (due later) ends only after every nudge was sent: an ordering
        # of the loop's timers, not a guess at how long a loaded machine takes.
        await asyncio.sleep(NUDGE_INTERVAL_S * (NUDGE_COUNT + 2))
        return bytes(writer.sent)

    return asyncio.run(type_a())


def test_key_release_is_repeated_to_keep_qemu_refreshing_fast():
    client, writer, _ = run(greeting() + update(rect(0, 0, 0, 0, -258, b"")))
    assert client.qemu_keys
    sent = _type_a(client, writer)
    press = struct.pack("!BBHII", 255, 0, 1, 0x61, 0x1E)
    release = struct.pack("!BBHII", 255, 0, 0, 0x61, 0x1E)
    # One press, then the release: once for real and again for each nudge (QEMU drops a
    # release of a key that is up, so the guest still sees a single keystroke).
    assert sent == press + release * (1 + NUDGE_COUNT)


def test_plain_vnc_servers_get_no_repeated_releases():
    client, writer, _ = run(greeting())
    assert not client.qemu_keys
    assert _type_a(client, writer) == (struct.pack("!BBxxI", 4, 1, 0x61)
                                       + struct.pack("!BBxxI", 4, 0, 0x61))


def test_vnc_password_authentication():
    challenge = bytes(range(16))
    data = (b"RFB 003.008\n\x01\x02" + challenge + b"\x00\x00\x00\x00"
            + server_init(8, 8))
    _, writer, _ = run(data, password="secret")
    sent = bytes(writer.sent)
    assert sent[12] == 2
    assert sent[13:29] == vnc_auth_response("secret", challenge)


def test_wrong_password_is_reported():
    data = (b"RFB 003.008\n\x01\x02" + bytes(16) + b"\x00\x00\x00\x01"
            + struct.pack("!I", 19) + b"Authentication fail")
    with pytest.raises(AuthenticationError, match="Authentication fail"):
        run(data, password="wrong")


@pytest.mark.parametrize(("data", "fragment"), [
    (b"HTTP/1.1 200 OK\r\n", "does not speak the VNC"),
    (b"RFB 003.003\n", "needs 3.8"),
    (b"RFB 003.008\n\x00" + struct.pack("!I", 6) + b"nope!!", "refused the connection"),
    (b"RFB 003.008\n\x01\x10", "no security type"),
    (b"RFB 003.008\n\x01\x01\x00\x00\x00\x00" + server_init(65535, 65535), "refused"),
])
def test_handshake_refusals(data, fragment):
    with pytest.raises(ProtocolError, match=fragment):
        run(data)


@pytest.mark.parametrize(("payload", "fragment"), [
    (update(rect(60, 40, 10, 10, 0, b"")), "outside"),
    (update(rect(0, 0, 4, 4, 5, b"")), "not asked for"),
    (update(rect(0, 0, 4, 4, 6, struct.pack("!I", 1 << 30))), "refused"),
    (update(rect(0, 0, 2, 2, 6, struct.pack("!I", 4) + b"junk")), "corrupt"),
    (b"\x07", "Unknown server message"),
    (update(rect(0, 0, 300, 300, -239, b"")), "cursor is refused"),
])
def test_hostile_updates_close_with_a_message(payload, fragment):
    _, _, closed = run(greeting() + payload)
    assert closed and fragment in closed[0]


def test_zlib_bomb_is_refused():
    bomb = zlib.compress(b"\x00" * (10 << 20))  # 10 MiB of zeros for a 2x2 rectangle
    _, _, closed = run(greeting() + update(rect(0, 0, 2, 2, 6, struct.pack("!I", len(bomb))
                                                 + bomb)))
    assert closed and "does not match" in closed[0]
