"""The SPICE client against a scripted server: link, ACK/PING, drawing, cache, input, refusals."""

from __future__ import annotations

import asyncio
import struct

import pytest

from tests.console.spice_fake_server import (
    FakeSpiceServer,
    base,
    bitmap_image,
    client_messages,
    copy_bits,
    draw_copy,
    draw_fill,
    image_header,
    link_reply,
    lz4_image,
    main_init,
    msg,
    surface_create,
)
from virtstudio.console.framebuffer import ProtocolError
from virtstudio.console.rfb_client import AuthenticationError
from virtstudio.console.spice_client import SpiceClient, spice_scancode
from virtstudio.console.spice_wire import CHANNEL_CURSOR, CHANNEL_DISPLAY, CHANNEL_INPUTS

RED = b"\x00\x00\xff\x00"  # BGRX
GREEN = b"\x00\xff\x00\x00"
BLUE = b"\xff\x00\x00\x00"
WHITE = b"\xff\xff\xff\x00"


def pixel(client: SpiceClient, x: int, y: int) -> bytes:
    fb = client.framebuffer
    i = y * fb.stride + x * 4
    return bytes(fb.data[i:i + 4])


def run(display: bytes = b"", *, main: bytes | None = None, inputs: bytes = b"",
        cursor: bytes = b"", actions=None, until=None, **client_args):
    """Connect a client to a fake server, run ``actions``, wait for ``until`` (or an end)."""
    async def go():
        server = FakeSpiceServer({1: main_init() if main is None else main,
                                  CHANNEL_DISPLAY: surface_create(16, 8) + display,
                                  CHANNEL_INPUTS: inputs, CHANNEL_CURSOR: cursor})
        client = SpiceClient(**client_args)
        closed: list = []
        client.closed.connect(closed.append)
        try:
            await client.connect(server.opener, timeout=5)
            runner = asyncio.ensure_future(client.run())
            if actions is not None:
                actions(client)
                await client.drain()
            for _ in range(500):
                if runner.done() or (until is not None and until(client, server)):
                    break
                await asyncio.sleep(0.01)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        finally:
            await server.close()
        return client, server, closed

    return asyncio.run(go())


def test_link_sends_the_ticket_encrypted_and_joins_the_session():
    client, server, _ = run(password="s3cret", until=lambda c, s: len(s.sent) == 4)
    assert server.passwords == [b"s3cret\x00"] * 4  # RSA-OAEP with SHA-1, decrypted
    assert [(conn, kind) for conn, kind, _id, _caps in server.links] == [
        (0, 1), (42, 2), (42, 3), (42, 4)]
    display_caps = server.links[1][3][0]
    assert display_caps & (1 << 5) and display_caps & (1 << 6)  # LZ4, preferred compression
    assert server.links[2][3][0] & 1  # inputs: scancodes
    sent = client_messages(server.sent[CHANNEL_DISPLAY])
    assert sent[0][0] == 101 and struct.unpack("<BqBi", sent[0][1])[3] == 0  # no GLZ window
    assert sent[1] == (103, b"\x01")  # preferred compression: off
    assert (client.framebuffer.width, client.framebuffer.height) == (16, 8)


def test_lz4_preference_is_sent():
    _, server, _ = run(compression="lz4", until=lambda c, s: CHANNEL_DISPLAY in s.sent)
    assert (103, b"\x07") in client_messages(server.sent[CHANNEL_DISPLAY])


def test_set_ack_and_ping_are_answered():
    main = (main_init() + msg(3, struct.pack("<II", 7, 2)) + msg(4, struct.pack("<IQ", 9, 1234))
            + msg(113, b"\x00" * 8) + msg(114, b"\x00" * 16) + msg(106, b"\x00" * 4))
    _, server, _ = run(main=main, until=lambda c, s: len(client_messages(s.sent.get(1, b""))) >= 5)
    sent = client_messages(server.sent[1])
    assert (1, struct.pack("<I", 7)) in sent  # ACK_SYNC with the generation
    assert (3, struct.pack("<IQ", 9, 1234)) in sent  # PONG echoes id and timestamp
    assert [t for t, _ in sent].count(2) == 2  # one ACK per window of 2 messages


def test_bitmaps_both_row_orders_fill_and_copy_bits():
    pixels = RED * 2 + GREEN * 2  # 2x2: red row, green row
    display = (draw_copy(base(1, 1, 2, 2), bitmap_image(2, 2, pixels), (0, 0, 2, 2))
               + draw_copy(base(5, 1, 2, 2), bitmap_image(2, 2, pixels, top_down=False),
                           (0, 0, 2, 2))
               + draw_fill(base(10, 0, 3, 3), BLUE)
               + copy_bits(base(0, 5, 3, 2), 1, 1))
    client, _, closed = run(display, until=lambda c, s: c.updates >= 4)
    assert closed == [] or closed == [None]
    assert pixel(client, 1, 1) == RED and pixel(client, 2, 2) == GREEN
    assert pixel(client, 5, 1) == RED and pixel(client, 6, 2) == GREEN
    assert pixel(client, 12, 2) == BLUE and pixel(client, 13, 2) == bytes(4)
    # COPY_BITS moved the first bitmap (from 1,1) to 0,5
    assert pixel(client, 0, 5) == RED and pixel(client, 1, 6) == GREEN
    assert client.display.unsupported == {}


def test_clip_rects_limit_drawing():
    display = draw_fill(base(0, 0, 8, 4, clips=[(1, 1, 2, 1), (6, 3, 5, 5)]), WHITE)
    client, _, _ = run(display, until=lambda c, s: c.updates >= 1)
    assert pixel(client, 1, 1) == WHITE and pixel(client, 2, 1) == WHITE
    assert pixel(client, 0, 0) == bytes(4) and pixel(client, 3, 1) == bytes(4)
    assert pixel(client, 7, 3) == WHITE and pixel(client, 7, 2) == bytes(4)


def test_image_cache_and_its_invalidation():
    cached = bitmap_image(2, 1, BLUE + RED, image_id=77, flags=1)  # CACHE_ME
    from_cache = image_header(103, 2, 1, image_id=77)
    display = (draw_copy(base(0, 0, 2, 1), cached, (0, 0, 2, 1))
               + draw_copy(base(4, 4, 2, 1), from_cache, (0, 0, 2, 1)))
    client, _, _ = run(display, until=lambda c, s: c.updates >= 2)
    assert pixel(client, 4, 4) == BLUE and pixel(client, 5, 4) == RED
    assert len(client.display.cache) == 1
    invalidated = (draw_copy(base(0, 0, 2, 1), cached, (0, 0, 2, 1))
                   + msg(105, struct.pack("<HBQ", 1, 1, 77))
                   + draw_copy(base(4, 4, 2, 1), from_cache, (0, 0, 2, 1)))
    _, _, closed = run(invalidated)
    assert closed == ["The server referred to image 77, which it never sent."]


def test_lz4_image_with_matches_across_blocks():
    # Block 1: a red pixel, a match repeating it (an overlapping copy), a red pixel.
    block1 = bytes([0x48]) + RED + struct.pack("<H", 4) + bytes([0x40]) + RED
    # Block 2 copies the 4 red pixels made by block 1 (offset reaches into block 1's output).
    block2 = bytes([0x0C]) + struct.pack("<H", 20) + bytes([0x40]) + GREEN
    display = draw_copy(base(0, 0, 10, 1), lz4_image(10, 1, [block1, block2]), (0, 0, 10, 1))
    client, _, _ = run(display, until=lambda c, s: c.updates >= 1)
    assert [pixel(client, x, 0) for x in range(10)] == [RED] * 9 + [GREEN]


def test_primary_surface_change_resizes_without_reconnect():
    display = msg(315, struct.pack("<I", 0)) + surface_create(32, 20)
    sizes: list = []

    def watch(client):
        client.resized.connect(lambda w, h: sizes.append((w, h)))

    client, _, _ = run(display, actions=watch, until=lambda c, s: sizes)
    assert sizes == [(32, 20)]
    assert (client.framebuffer.width, client.framebuffer.height) == (32, 20)


def test_keys_go_as_scancodes_and_the_mouse_as_motion_and_buttons():
    def act(client):
        client.key_event(True, 0x61, 0x1E)  # a
        client.key_event(False, 0x61, 0x1E)
        client.key_event(True, 0xFF52, 0xE048)  # Up: an E0 scancode
        client.key_event(False, 0xFF52, 0xE048)
        client.key_event(True, 0x62, None)  # b, known by keysym only
        client.key_event(True, 0x12345, None)  # nothing to send
        client.pointer_event(5, 3, 1)
        client.pointer_event(5, 3, 0)
        client.pointer_event(5, 3, 8)

    _, server, _ = run(actions=act, until=lambda c, s: len(client_messages(
        s.sent.get(CHANNEL_INPUTS, b""))) >= 9)
    sent = client_messages(server.sent[CHANNEL_INPUTS])
    keys = [(t, struct.unpack("<I", b)[0]) for t, b in sent if t in (101, 102)]
    assert keys == [(101, 0x1E), (102, 0x9E), (101, 0x48E0), (102, 0xC8E0), (101, 0x30)]
    mouse = [(t, b) for t, b in sent if t >= 111]
    assert mouse[0] == (111, struct.pack("<iiH", 5, 3, 0))  # server mode: relative motion
    assert mouse[1:] == [(113, struct.pack("<BH", 1, 1)), (114, struct.pack("<BH", 1, 0)),
                         (113, struct.pack("<BH", 4, 0)), (114, struct.pack("<BH", 4, 0))]


def test_scancode_encoding():
    assert spice_scancode(0x1C, release=False) == 0x1C
    assert spice_scancode(0xE01C, release=True) == 0x9CE0
    with pytest.raises(ValueError):
        spice_scancode(0xE11D, release=False)


def test_mono_cursor_becomes_a_shape():
    # 8x1 cursor: AND mask 0x0F (right half transparent), XOR mask 0xC0 (2 white pixels)
    cursor = (struct.pack("<hhHHB", 0, 0, 0, 0, 1) + struct.pack("<H", 0)
              + struct.pack("<QBHHHH", 5, 1, 8, 1, 2, 0) + bytes([0x0F, 0xC0]))
    shapes: list = []

    def watch(client):
        client.cursor_changed.connect(shapes.append)

    run(cursor=msg(101, cursor), actions=watch, until=lambda c, s: shapes)
    shape = shapes[0]
    assert (shape.width, shape.height, shape.hotspot_x) == (8, 1, 2)
    assert shape.bgra[0:4] == b"\xff\xff\xff\xff" and shape.bgra[8:12] == b"\x00\x00\x00\xff"
    assert shape.bgra[28:32] == bytes(4)  # transparent


def test_huge_surface_is_refused_before_allocation():
    client = SpiceClient()

    async def go():
        server = FakeSpiceServer({1: main_init(), CHANNEL_DISPLAY: surface_create(65535, 65535)})
        try:
            await client.connect(server.opener, timeout=5)
        finally:
            await server.close()

    with pytest.raises(ProtocolError, match="65535x65535 screen, which is refused"):
        asyncio.run(go())
    assert client.channels == {}  # every channel opened so far is closed again


def test_oversized_message_is_refused():
    huge = struct.pack("<HI", 304, 0xFFFFFFF0)
    _, _, closed = run(huge)
    assert closed and "refused" in closed[0]


def test_unsupported_images_are_skipped_and_counted():
    quic = image_header(1, 2, 1) + struct.pack("<I", 4) + b"QUIC"
    display = draw_copy(base(0, 0, 2, 1), quic, (0, 0, 2, 1)) + draw_fill(base(0, 0, 1, 1), RED)
    client, _, _ = run(display, until=lambda c, s: c.updates >= 1)
    assert client.display.unsupported == {"QUIC image": 1}
    assert pixel(client, 0, 0) == RED  # later drawing still applies


@pytest.mark.parametrize(("reply", "message"), [
    (link_reply(error=7), "the password was refused"),
    (link_reply(magic=b"RFB "), "does not speak the SPICE protocol"),
    (link_reply(pubkey=b"\x30" + b"\x00" * 161), "unreadable public key"),
])
def test_link_refusals_in_words(reply, message):
    async def go():
        server = FakeSpiceServer({}, reply=reply)
        try:
            await SpiceClient().connect(server.opener, timeout=5)
        finally:
            await server.close()

    with pytest.raises(ProtocolError, match=message):
        asyncio.run(go())


def test_long_password_is_refused():
    async def go():
        server = FakeSpiceServer({1: main_init()})
        try:
            await SpiceClient(password="x" * 61).connect(server.opener, timeout=5)
        finally:
            await server.close()

    with pytest.raises(AuthenticationError, match="at most 60"):
        asyncio.run(go())


def test_surfaces_together_stay_within_their_bound(monkeypatch):
    from virtstudio.console import spice_display

    monkeypatch.setattr(spice_display, "MAX_SURFACE_PIXELS", 1000)
    display = spice_display.SpiceDisplay(lambda rects: None, lambda fb: None)
    display.handle(314, struct.pack("<IIIII", 0, 20, 25, 32, 1))  # 500 pixels
    display.handle(314, struct.pack("<IIIII", 1, 20, 25, 32, 0))  # 1000 in all
    with pytest.raises(ProtocolError, match="would exceed 1000 pixels"):
        display.handle(314, struct.pack("<IIIII", 2, 1, 1, 32, 0))
    assert sorted(display.surfaces) == [0, 1]
    display.handle(315, struct.pack("<I", 1))
    display.handle(314, struct.pack("<IIIII", 2, 20, 25, 32, 0))  # room again


def test_a_server_that_never_draws_times_out_in_words():
    from virtstudio.console.rfb_client import describe_connection_error

    async def go():
        server = FakeSpiceServer({1: main_init()})  # the display never gets a surface
        try:
            await SpiceClient().connect(server.opener, timeout=0.2)
        finally:
            await server.close()

    with pytest.raises(TimeoutError) as caught:
        asyncio.run(go())
    assert describe_connection_error(caught.value) == "The console did not answer in time."


def test_client_mouse_mode_is_asked_for_and_then_used():
    main = main_init(modes=3, current=1) + msg(105, struct.pack("<HH", 3, 2))
    moved: list[int] = []

    def until(client, server):
        if client.mouse_mode == 2 and not moved:  # the server granted client mode
            client.pointer_event(7, 4, 0)
            moved.append(1)
        return bool(server.sent.get(CHANNEL_INPUTS))

    _, server, _ = run(main=main, until=until)
    assert (105, struct.pack("<H", 2)) in client_messages(server.sent[1])  # the request
    assert client_messages(server.sent[CHANNEL_INPUTS])[0] == (
        112, struct.pack("<IIHB", 7, 4, 0, 0))  # an absolute position
