"""Fuzzing the RFB client: any bytes from a server end in a clean close, fast and bounded.

Hypothesis generates both unstructured streams and well-framed updates whose
rectangle payloads are random, so every decoder sees hostile input.  The only
acceptable outcome is ``run()`` returning with a reason: no other exception,
no hang, and no framebuffer beyond the stated bound.
"""

from __future__ import annotations

import asyncio
import resource
import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


@FUZZ
@given(framed_updates())
def test_framed_updates_with_hostile_payloads(data):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _, _, closed = asyncio.run(run_client(data, timeout=5.0))
    assert len(closed) == 1
    # A few rectangles of garbage must never cost more than a few MiB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024
