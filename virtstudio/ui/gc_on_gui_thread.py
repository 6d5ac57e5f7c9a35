"""Run Python's cyclic garbage collector on the GUI thread only.

A collection runs on whichever thread happens to allocate past the
threshold.  When that is a worker thread and the garbage holds a Qt object,
Qt destroys the object on the wrong thread: its timers stay registered with
the GUI thread's dispatcher and the next one to fire crashes the process.
So automatic collection is switched off and a GUI-thread timer collects the
generations whose thresholds were passed, as the interpreter would have.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_INTERVAL_MS = 250


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(_INTERVAL_MS)

    def collect_due(self) -> None:
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return


_installed: GuiThreadCollector | None = None


def install() -> GuiThreadCollector:
    """Switch automatic collection off; collect on the calling (GUI) thread from now on."""
    global _installed
    if _installed is None:
        _installed = GuiThreadCollector()
    return _installed
