"""A small thread-safe observer, the core's stand-in for Qt signals.

Callbacks run in the thread that emits.  The UI layer connects Qt signals
to these and lets Qt queue the delivery to the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Signal:
    def __init__(self, name: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        with self._lock:
            self._slots = [*self._slots, slot]

    def disconnect(self, slot: Callable[..., Any]) -> None:
        with self._lock:
            self._slots = [s for s in self._slots if s != slot]

    def emit(self, *args: Any) -> None:
        # A failing listener must not stop the others nor the emitter's thread.
        for slot in self._slots:
            try:
                slot(*args)
            except Exception:
                log.exception("listener of %s failed", self.name or "signal")
