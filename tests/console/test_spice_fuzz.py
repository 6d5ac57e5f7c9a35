"""Fuzzing the SPICE parsers and decoders: hostile bytes end in a ProtocolError, fast and bounded.

Hypothesis feeds unstructured bytes and well-framed messages with random
fields (sizes up to 2**32-1, every image type, random LZ4 blocks and cursor
shapes).  The only acceptable failure is a ProtocolError: no other exception,
no hang, no surface beyond the framebuffer's bound, no cache beyond its own,
and no more memory at peak (tracemalloc) than tests/console/alloc_bound.py
allows for the message and the 64x48 surface it draws on.
"""

from __future__ import annotations

import asyncio
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console.alloc_bound import bound, peak_allocation
from tests.console.fake_server import FakeWriter
from tests.console.spice_fake_server import base, draw_copy, image_header
from virtstudio.console.framebuffer import MAX_PIXELS, ProtocolError
from virtstudio.console.spice_cursor import CursorState
from virtstudio.console.spice_display import SpiceDisplay
from virtstudio.console.spice_lz4 import decompress_block_into
from virtstudio.console.spice_wire import SpiceChannel, parse_link_reply

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
DISPLAY_TYPES = [101, 102, 103, 104, 105, 106, 107, 108, 122, 123, 126, 302, 303, 304, 310,
                 314, 315, 316, 317, 319, 320, 999]
u32 = st.integers(0, 2**32 - 1)


def _display() -> SpiceDisplay:
    display = SpiceDisplay(lambda rects: None, lambda fb: None)
    display.handle(314, struct.pack("<IIIII", 0, 64, 48, 32, 1))
    return display


def _bounded(display: SpiceDisplay) -> None:
    assert sum(fb.width * fb.height for fb in display.surfaces.values()) <= 2 * MAX_PIXELS
    assert all(fb.width * fb.height <= MAX_PIXELS for fb in display.surfaces.values())
    assert display.cache.used <= display.cache.capacity


def _only_protocol_errors(fn, *args) -> None:
    try:
        fn(*args)
    except ProtocolError:
        pass


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(DISPLAY_TYPES), st.binary(max_size=600)),
                max_size=6))
def test_random_display_messages(messages):
    display = _display()
    for msg_type, body in messages:
        _only_protocol_errors(display.handle, msg_type, body)
    _bounded(display)


@st.composite
def hostile_images(draw, box_w: int, box_h: int):
    kind = draw(st.sampled_from([0, 0, 0, 1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109,
                                 109, 200]))
    width = draw(st.one_of(st.just(box_w), st.integers(0, 80), u32))
    height = draw(st.one_of(st.just(box_h), st.integers(0, 60), u32))
    header = image_header(kind, width, height, draw(st.integers(0, 3)), draw(st.integers(0, 7)))
    # Often well-formed, so the drawing paths run too, not only the refusals.
    exact = width * height * 4 if width * height <= 600 else 0
    if kind == 0 and exact and draw(st.booleans()):
        fields = struct.pack("<BBIII", 8, draw(st.sampled_from([0, 4])), width, height, width * 4)
        return header + fields + b"\x00" * 4 + draw(st.binary(min_size=exact, max_size=exact))
    if kind == 0:
        fields = struct.pack("<BBIII", draw(st.sampled_from([8, 8, 7, 9, 1, 0])),
                             draw(st.sampled_from([4, 0, 2, 1, 7])),
                             draw(st.one_of(st.just(width), u32)),
                             draw(st.one_of(st.just(height), u32)),
                             draw(st.one_of(st.just((width * 4) & 0xFFFFFFFF), u32)))
        palette = draw(st.sampled_from([b"\x00" * 4, b"\x10\x00\x00\x00"]))
        return header + fields + palette + draw(st.binary(min_size=exact, max_size=exact + 64))
    if kind == 109 and exact and draw(st.booleans()):
        literals = draw(st.binary(min_size=exact, max_size=exact))  # one literals-only block
        block = bytes([0xF0]) + bytes([255] * ((exact - 15) // 255)) + bytes(
            [(exact - 15) % 255]) + literals if exact >= 15 else bytes([exact << 4]) + literals
        payload = bytes([draw(st.integers(0, 1)), 8]) + struct.pack(">I", len(block)) + block
        return header + struct.pack("<I", len(payload)) + payload
    payload = draw(st.binary(max_size=800))
    size = draw(st.one_of(st.just(len(payload)), u32))
    return header + struct.pack("<I", size) + payload


@st.composite
def hostile_copies(draw):
    """DRAW_COPY messages: mostly inside the 64x48 screen, with any image at all."""
    x, y = draw(st.integers(0, 70)), draw(st.integers(0, 50))
    w, h = draw(st.integers(0, 30)), draw(st.integers(0, 20))
    src = draw(st.one_of(st.just((0, 0, w, h)),
                         st.tuples(st.integers(-5, 90), st.integers(-5, 70),
                                   st.integers(0, 90), st.integers(0, 70))))
    return draw_copy(base(x, y, w, h), draw(hostile_images(w, h)), src)[6:]


@FUZZ
@given(hostile_copies())
def test_draw_copy_with_hostile_images(message):
    display = _display()

    def twice() -> None:
        _only_protocol_errors(display.handle, 304, message)
        _only_protocol_errors(display.handle, 304, message)  # again, from the cache if kept

    result, peak = peak_allocation(twice)
    assert result is None, repr(result)
    _bounded(display)
    assert peak < bound(2 * len(message), 64 * 48), peak


def _lz4_chain(draw) -> bytes:
    """An LZ4 block of literals and long matches: lengths as chains of 255s."""
    block = b""
    for _ in range(draw(st.integers(1, 4))):
        literals = draw(st.binary(min_size=1, max_size=14))
        block += bytes([(len(literals) << 4) | 15]) + literals
        block += struct.pack("<H", draw(st.integers(1, 16)))
        block += b"\xff" * draw(st.integers(0, 4000)) + bytes([draw(st.integers(0, 254))])
    return block + bytes([0x10]) + b"\x00"  # a literals-only last sequence


@st.composite
def lz4_image_copies(draw):
    """DRAW_COPY of LZ4 images of any declared size, whose blocks expand hundreds of times."""
    width = draw(st.sampled_from([8, 64, 640, 8192]))
    height = draw(st.sampled_from([8, 48, 480, 4608]))
    fmt = draw(st.sampled_from([7, 8]))
    blocks = [_lz4_chain(draw) for _ in range(draw(st.integers(1, 3)))]
    data = bytes((draw(st.integers(0, 1)), fmt)) + b"".join(
        struct.pack(">I", len(b)) + b for b in blocks)
    image = image_header(109, width, height) + struct.pack("<I", len(data)) + data
    return draw_copy(base(0, 0, 8, 8), image, (0, 0, 8, 8))[6:]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lz4_image_copies())
def test_lz4_images_never_decode_past_their_surfaces(message):
    display = _display()
    result, peak = peak_allocation(lambda: _only_protocol_errors(display.handle, 304, message))
    assert result is None, repr(result)
    assert peak < bound(len(message), 64 * 48), peak


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4),
       st.integers(0, 4096))
def test_lz4_blocks_never_exceed_their_limit(blocks, limit):
    out = bytearray()
    for block in blocks:
        try:
            decompress_block_into(block, out, limit)
        except ProtocolError:
            break
    assert len(out) <= limit


@FUZZ
@given(st.sampled_from([101, 102, 103, 104, 105, 106, 107, 108, 150]),
       st.integers(0, 7), st.integers(0, 10), st.integers(0, 300), st.integers(0, 300),
       st.binary(max_size=700))
def test_cursor_messages(msg_type, flags, kind, width, height, data):
    cursor = (struct.pack("<hhHHB", 0, 0, 0, 0, 1) + struct.pack("<H", flags)
              + struct.pack("<QBHHHH", 1, kind, width, height, 0, 0) + data)
    state = CursorState()
    for body in (cursor, cursor[4:], data):
        _only_protocol_errors(state.handle, msg_type, body)
    shape = state.shape
    assert shape is None or len(shape.bgra) == shape.width * shape.height * 4 <= 256 * 256 * 4


@FUZZ
@given(st.binary(max_size=2048), st.booleans())
def test_random_streams_on_a_linked_channel(data, mini):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        channel = SpiceChannel(reader, FakeWriter(), 2, mini_header=mini)
        display = _display()
        try:
            while True:
                display.handle(*await channel.receive())
        except ProtocolError:
            return display

    display = asyncio.run(asyncio.wait_for(go(), 5))
    _bounded(display)


@FUZZ
@given(st.binary(min_size=16, max_size=16), st.binary(max_size=400))
def test_random_link_replies(header, body):
    _only_protocol_errors(parse_link_reply, b"REDQ" + header[4:], body)
    _only_protocol_errors(parse_link_reply, header, body)
