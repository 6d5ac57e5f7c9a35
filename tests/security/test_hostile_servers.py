"""Hostile console servers: crafted messages that make a few bytes cost a lot of memory.

A VNC or SPICE server is untrusted (a guest can run its own, and remote
hosts speak for themselves).  Each test here sends one concrete message and
checks, with tracemalloc, that decoding it stays under the stated bound of
tests/console/alloc_bound.py and ends in a plain refusal, not an allocation.
"""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from tests.console.alloc_bound import bound, peak_allocation
from tests.console.fake_server import greeting, rect, run_client, update
from tests.console.spice_fake_server import base, draw_copy, image_header
from virtstudio.console import rfb_clipboard as clip
from virtstudio.console.framebuffer import MAX_PIXELS, ProtocolError
from virtstudio.console.rfb_decoders import ENC_ZRLE
from virtstudio.console.spice_display import SpiceDisplay

SCREEN = (128, 96)


def _deflate(data: bytes) -> bytes:
    stream = zlib.compressobj(9)
    return stream.compress(data) + stream.flush(zlib.Z_FINISH)


def _zrle_rect(tile_stream: bytes) -> bytes:
    body = _deflate(tile_stream)
    return rect(0, 0, *SCREEN, ENC_ZRLE, struct.pack("!I", len(body)) + body)


def _largest_run_bomb(tile_prefix: bytes, size: int) -> bytes:
    """A ZRLE update of exactly ``size`` bytes whose first run is as long as it can be."""
    best = b""
    # The client inflates at most one byte per tile plus three per pixel.
    tiles = -(-SCREEN[0] // 64) * -(-SCREEN[1] // 64)
    inflate_bound = tiles + SCREEN[0] * SCREEN[1] * 3
    low, high = 1, inflate_bound - len(tile_prefix) - 1
    while low <= high:
        run_bytes = (low + high) // 2
        message = update(_zrle_rect(tile_prefix + b"\xff" * run_bytes + b"\x00"))
        if len(message) <= size:
            best, low = message, run_bytes + 1
        else:
            high = run_bytes - 1
    return best


def _run_vnc(message: bytes) -> tuple[list, int]:
    """Close reasons and peak allocation of a client fed a greeting and ``message``."""
    data = greeting(*SCREEN) + message
    result, peak = peak_allocation(
        lambda: asyncio.run(run_client(data, width=SCREEN[0], height=SCREEN[1])))
    assert not isinstance(result, BaseException), repr(result)
    return result[2], peak


def test_zrle_run_bomb_of_77_bytes_is_refused_without_allocating():
    # One 64x64 tile, plain RLE (128), one pixel, then a run length made of
    # tens of thousands of 255s: billions of pixels announced for a tile of 4096.
    bomb = _largest_run_bomb(b"\x80" + b"\x10\x20\x30", 77)
    assert len(bomb) == 77
    closed, peak = _run_vnc(bomb)
    assert closed and "run" in closed[0]
    assert peak < bound(len(greeting(*SCREEN)) + len(bomb), SCREEN[0] * SCREEN[1]), peak


def test_zrle_palette_run_bomb_is_refused_without_allocating():
    # Palette RLE (130: two colours), index with the run bit, then the same chain.
    bomb = _largest_run_bomb(b"\x82" + b"\x10\x20\x30\x40\x50\x60" + b"\x81", 96)
    closed, peak = _run_vnc(bomb)
    assert closed and "run" in closed[0]
    assert peak < bound(len(greeting(*SCREEN)) + len(bomb), SCREEN[0] * SCREEN[1]), peak


def test_zrle_run_past_its_tile_is_refused_even_when_short():
    # 4097 pixels in a 4096-pixel tile: one byte past, not billions.
    tile = b"\x80" + b"\x01\x02\x03" + b"\xff" * 16 + b"\x10"
    closed, _ = _run_vnc(update(_zrle_rect(tile)))
    assert closed and "run" in closed[0]


def test_zrle_runs_that_fill_their_tile_still_draw():
    # The fix must not refuse what a real server sends: one run per tile, exactly.
    tiles = b""
    # 128x96 is 2x2 tiles: 64x64, 64x64, 64x32, 64x32.
    sizes = [64 * 64, 64 * 64, 64 * 32, 64 * 32]
    for count in sizes:
        run = count - 1
        tiles += b"\x80" + b"\x11\x22\x33" + b"\xff" * (run // 255) + bytes([run % 255])
    closed, _ = _run_vnc(update(_zrle_rect(tiles)))
    assert closed and "closed the connection" in closed[0]


@pytest.mark.parametrize("message", [
    # Raw rectangle larger than the screen.
    update(rect(0, 0, 4096, 4096, 0, b"")),
    # Zlib payload announced far beyond any rectangle.
    update(rect(0, 0, 8, 8, 6, struct.pack("!I", 0xFFFFFFFF))),
    # Zlib data that inflates past its rectangle.
    update(rect(0, 0, 8, 8, 6, struct.pack("!I", len(_deflate(b"\0" * 1_000_000)))
                + _deflate(b"\0" * 1_000_000))),
    # Cursor shape of 65535x65535.
    update(rect(0, 0, 65535, 65535, -239, b"")),
    # Clipboard text announced at 2 GiB.
    b"\x03\x00\x00\x00" + struct.pack("!i", 0x7FFFFFFF),
    # Extended clipboard announced at -2 GiB.
    b"\x03\x00\x00\x00" + struct.pack("!i", -0x7FFFFFFF),
    # A screen of 65535x65535.
    update(rect(0, 0, 65535, 65535, -223, b"")),
], ids=["raw-outside", "zlib-length", "zlib-inflate", "cursor", "cut-text", "ext-clipboard",
        "desktop-size"])
def test_other_oversized_vnc_messages_are_refused_within_the_bound(message):
    closed, peak = _run_vnc(message)
    assert closed and closed[0]
    assert peak < bound(len(greeting(*SCREEN)) + len(message), SCREEN[0] * SCREEN[1]), peak


# ---- SPICE -----------------------------------------------------------------------------------

SURFACE = (64, 48)


def _display() -> SpiceDisplay:
    display = SpiceDisplay(lambda rects: None, lambda fb: None)
    display.handle(314, struct.pack("<IIIII", 0, *SURFACE, 32, 1))
    return display


def _lz4_match_bomb(block_size: int) -> bytes:
    """One LZ4 block: 4 literal bytes, then a match whose length is a chain of 255s."""
    chain = block_size - 1 - 4 - 2 - 1
    return (bytes([0x4F]) + b"\x01\x02\x03\x04" + struct.pack("<H", 4)
            + b"\xff" * chain + b"\x00")


def _lz4_image(width: int, height: int, fmt: int, block: bytes) -> bytes:
    data = bytes((1, fmt)) + struct.pack(">I", len(block)) + block
    return image_header(109, width, height) + struct.pack("<I", len(data)) + data


@pytest.mark.parametrize("fmt", [8, 7], ids=["32-bit", "24-bit"])
def test_spice_lz4_image_larger_than_every_surface_is_refused_before_inflating(fmt):
    # 64 KiB of LZ4 that expands about 255 times, for an image of the largest
    # size the client accepts, drawn on a 64x48 surface.
    width, height = 8192, MAX_PIXELS // 8192
    image = _lz4_image(width, height, fmt, _lz4_match_bomb(64 << 10))
    message = draw_copy(base(0, 0, 8, 8), image, (0, 0, 8, 8))[6:]
    display = _display()
    result, peak = peak_allocation(lambda: display.handle(304, message))
    assert isinstance(result, ProtocolError), repr(result)
    assert peak < bound(len(message), SURFACE[0] * SURFACE[1]), peak


def test_spice_lz4_image_as_large_as_its_surface_still_draws():
    width, height = SURFACE
    pixels = width * height * 4
    literals = bytes(range(256)) * (pixels // 256)
    block = (bytes([0xF0]) + b"\xff" * ((pixels - 15) // 255) + bytes([(pixels - 15) % 255])
             + literals)
    message = draw_copy(base(0, 0, width, height), _lz4_image(width, height, 8, block),
                        (0, 0, width, height))[6:]
    display = _display()
    display.handle(304, message)
    assert bytes(display.primary.data) == literals


def test_spice_cursor_and_clip_counts_are_checked_before_use():
    display = _display()
    # A clip list of 2**32-1 rectangles in a 40-byte message.
    message = (struct.pack("<Iiiii", 0, 0, 0, 8, 8) + b"\x01" + struct.pack("<I", 0xFFFFFFFF)
               + b"\x00" * 16)
    result, peak = peak_allocation(lambda: display.handle(302, message))
    assert isinstance(result, ProtocolError)
    assert peak < bound(len(message), SURFACE[0] * SURFACE[1])


# ---- clipboard -------------------------------------------------------------------------------


def test_extended_clipboard_announcing_4_gib_is_refused_before_inflating():
    payload = zlib.compress(struct.pack("!I", 0xFFFFFFFF) + b"\0" * 100_000)
    result, peak = peak_allocation(
        lambda: clip.parse_provide(clip.ACTION_PROVIDE | clip.FORMAT_TEXT, payload))
    assert isinstance(result, ProtocolError)
    assert peak < bound(len(payload), 0)


def test_extended_clipboard_inflates_at_most_its_stated_limit():
    # About 1 KiB that inflates to far more text than the clipboard takes.
    text = b"a" * (8 * clip.MAX_TEXT)
    payload = zlib.compress(struct.pack("!I", clip.MAX_TEXT) + text, 9)
    result, peak = peak_allocation(
        lambda: clip.parse_provide(clip.ACTION_PROVIDE | clip.FORMAT_TEXT, payload))
    assert isinstance(result, str) and len(result) == clip.MAX_TEXT
    # The text itself, its bytes and one copy: the clipboard's own stated limit.
    assert peak < bound(len(payload), 0) + 4 * clip.MAX_TEXT
