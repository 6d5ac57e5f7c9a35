"""Deliver core signals to Qt code on the GUI thread.

Core signals fire on worker threads.  A Relay is a QObject living on the GUI
thread; it re-emits each core emission as a Qt signal connected to its own
slot, so Qt queues the call to the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from virtstudio.core.signal import Signal as CoreSignal


class Relay(QObject):
    fired = Signal(object)

    def __init__(self, core_signal: CoreSignal, slot: Callable[..., Any],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._core_signal = core_signal
        self._slot = slot
        self.fired.connect(self._deliver)
        core_signal.connect(self._forward)

    def _forward(self, *args: Any) -> None:
        try:
            self.fired.emit(args)
        except RuntimeError:
            # The Qt side was destroyed (window closed, app quitting): stop listening.
            self._core_signal.disconnect(self._forward)

    @Slot(object)
    def _deliver(self, args: tuple[Any, ...]) -> None:
        self._slot(*args)

    def detach(self) -> None:
        self._core_signal.disconnect(self._forward)


def relay(core_signal: CoreSignal, slot: Callable[..., Any], parent: QObject) -> Relay:
    """Call ``slot`` on the GUI thread each time ``core_signal`` fires."""
    return Relay(core_signal, slot, parent)
