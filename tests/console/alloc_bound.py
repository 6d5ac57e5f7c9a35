"""Peak memory a piece of decoding allocates, measured with tracemalloc.

The console decoders promise that what a server sends costs at most a stated
amount of memory: a small multiple of the bytes actually received, plus the
screens (surfaces) the message is allowed to create or draw on.  A compressed
run, block or length never multiplies into more than that.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Slack for the interpreter itself: an event loop, exceptions, small objects.
BASE_BYTES = 1 << 20
# Every received byte may be held a few times over (read buffer, a copy, a view).
PER_RECEIVED_BYTE = 8
# Each screen pixel may exist a few times while a message is decoded: the
# framebuffer, the decoded image, one row-order copy and a colour conversion.
PER_SCREEN_PIXEL = 16


def bound(received: int, screen_pixels: int) -> int:
    """The most one message (or stream) of ``received`` bytes may allocate."""
    return BASE_BYTES + PER_RECEIVED_BYTE * received + PER_SCREEN_PIXEL * screen_pixels


def peak_allocation(fn: Callable[[], T]) -> tuple[T | None, int]:
    """Run ``fn`` and return (its result, the peak bytes allocated while it ran).

    An exception from ``fn`` counts as a result: it is returned, not raised, so
    a refusal is measured like a success.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    try:
        result: T | None = fn()
    except Exception as exc:  # the caller decides which exceptions are acceptable
        result = exc  # type: ignore[assignment]
    _, peak = tracemalloc.get_traced_memory()
    if not was_tracing:
        tracemalloc.stop()
    return result, peak - start
