"""Process-wide tuning for a long-running GUI with many small objects."""

from __future__ import annotations

import gc
import sys


def tune_gc() -> None:
    """Keep full garbage collections short and rare.

    A full collection walks every tracked object while holding the GIL, which
    stalls the GUI thread; with thousands of machines that took over 100 ms.
    Freezing what start-up created takes those objects out of every later
    collection, and a larger first threshold makes collections rarer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def tune_thread_switching() -> None:
    """Let the GUI thread win the GIL back quickly from busy worker threads.

    Every call from Qt's C++ back into Python (a model's ``data()``) must take
    the GIL again; with the default 5 ms switch interval a worker parsing a
    large host made each of those wait, and inserting rows took ten times longer.
    """
    sys.setswitchinterval(0.0005)
