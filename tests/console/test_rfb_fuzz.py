"""Fuzzing the RFB client: any bytes from a server end in a clean close, fast and bounded.

Hypothesis generates both unstructured streams and well-framed updates whose
rectangle payloads are random, so every decoder sees hostile input.  The only
acceptable outcome is ``run()`` returning with a reason: no other exception,
no hang, no framebuffer beyond the stated bound, and no more memory at peak
(tracemalloc) than tests/console/alloc_bound.py allows for the bytes sent.
"""

from __future__ import annotations

import asyncio
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console.alloc_bound import bound, peak_allocation
from tests.console.fake_server import greeting, run_client
from virtstudio.console.framebuffer import MAX_PIXELS

ENCODINGS = [0, 1, 6, 7, 16, -223, -239, -258, -261, -308, 5, 99]
FUZZ = settings(max_examples=1000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _ends_cleanly(data: bytes, *, handshake: bool) -> None:
    client, _, closed = asyncio.run(run_client(data, handshake=handshake, timeout=5.0))
    assert len(closed) == 1 and isinstance(closed[0], str)
    fb = client.framebuffer
    assert fb is None or fb.width * fb.height <= MAX_PIXELS


@FUZZ
@given(st.binary(max_size=4096))
def test_random_streams_after_the_handshake(data):
    _ends_cleanly(data, handshake=False)


@FUZZ
@given(st.binary(max_size=512))
def test_random_handshakes(data):
    try:
        asyncio.run(run_client(b"RFB 003.008\n" + data, timeout=5.0))
    except Exception as exc:  # the handshake may refuse, but only in words
        from virtstudio.console.framebuffer import ProtocolError

        assert isinstance(exc, ProtocolError), repr(exc)


def _compressible(draw, size):
    raw = draw(st.binary(max_size=size))
    if draw(st.booleans()):
        body = zlib.compress(raw)
        return struct.pack("!I", len(body)) + body
    return raw


@st.composite
def framed_updates(draw):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        rects = []
        for _ in range(draw(st.integers(1, 3))):
            x, y = draw(st.integers(0, 70)), draw(st.integers(0, 50))
            w, h = draw(st.integers(0, 80)), draw(st.integers(0, 60))
            encoding = draw(st.sampled_from(ENCODINGS))
            rects.append(struct.pack("!HHHHi", x, y, w, h, encoding)
                         + _compressible(draw, 600))
        parts.append(struct.pack("!BxH", 0, len(rects)) + b"".join(rects))
    return greeting() + b"".join(parts)


# Screens in these streams: the 64x48 greeting, or a DesktopSize of at most 80x60.
LARGEST_SCREEN = 80 * 60


def _within_bound(data: bytes) -> list:
    result, peak = peak_allocation(lambda: asyncio.run(run_client(data, timeout=5.0)))
    assert not isinstance(result, BaseException), repr(result)
    assert peak < bound(len(data), LARGEST_SCREEN), peak
    return result[2]


@FUZZ
@given(framed_updates())
def test_framed_updates_with_hostile_payloads(data):
    closed = _within_bound(data)
    assert len(closed) == 1


@st.composite
def zrle_tiles(draw):
    """ZRLE tile streams with real structure: every subencoding, and runs of any length."""
    tiles = b""
    for _ in range(draw(st.integers(1, 4))):
        sub = draw(st.sampled_from([0, 1, 2, 5, 16, 17, 127, 128, 129, 130, 140, 255]))
        tiles += bytes([sub])
        palette = sub if 2 <= sub <= 16 else sub - 128 if sub >= 130 else 1
        tiles += draw(st.binary(min_size=3 * palette, max_size=3 * palette))
        for _ in range(draw(st.integers(0, 6))):
            if sub >= 130:
                tiles += bytes([draw(st.integers(0, 255))])
            elif sub == 128:
                tiles += draw(st.binary(min_size=3, max_size=3))
            # A run length: up to thousands of 255s (as many as a 64x48 rectangle
            # may inflate to), then its last byte.
            chain = draw(st.one_of(st.integers(0, 20), st.integers(1000, 9000)))
            tiles += b"\xff" * chain + bytes([draw(st.integers(0, 254))])
    body = zlib.compress(tiles, 9)
    w, h = draw(st.sampled_from([(64, 48), (64, 48), (1, 1), (17, 5), (64, 1)]))
    message = struct.pack("!BxHHHHHiI", 0, 1, 0, 0, w, h, 16, len(body)) + body
    return greeting() + message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zrle_tiles())
def test_zrle_runs_never_allocate_past_their_tile(data):
    closed = _within_bound(data)
    assert len(closed) == 1
