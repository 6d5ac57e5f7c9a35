"""Deliver core signals to Qt code on the GUI thread.

Core signals fire on worker threads.  Emitting a Qt signal on a QObject that
the GUI thread is destroying at that moment crashes the process, so worker
threads never touch the receiving widgets or models: they emit on one
dispatcher that lives for the whole run, and the dispatcher hands each call to
its Relay on the GUI thread, where the Relay knows whether its owner is
still alive.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from virtstudio.core.signal import Signal as CoreSignal


class _Dispatcher(QObject):
    fired = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.fired.connect(self._deliver, Qt.ConnectionType.AutoConnection)

    @Slot(object, object)
    def _deliver(self, target: weakref.ref[Relay], args: tuple[Any, ...]) -> None:
        relay_ = target()
        if relay_ is not None:
            relay_.deliver(args)


_dispatcher: _Dispatcher | None = None
_dispatcher_lock = threading.Lock()


def _shared_dispatcher() -> _Dispatcher:
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = _Dispatcher()
            app = QCoreApplication.instance()
            if app is not None and QThread.currentThread() is not app.thread():
                _dispatcher.moveToThread(app.thread())
        return _dispatcher


class Relay:
    """Calls ``slot`` on the GUI thread for each emission of ``core_signal``.

    It stops listening when ``owner`` is destroyed or ``detach`` is called;
    emissions already queued then are dropped.  The owner keeps the relay
    alive; the core signal holds it only weakly, so a worker thread never
    drops the last reference to a Qt object (which would destroy it there).
    """

    def __init__(self, core_signal: CoreSignal, slot: Callable[..., Any],
                 owner: QObject) -> None:
        self._core_signal = core_signal
        self._slot = slot
        self._alive = True
        dispatcher = _shared_dispatcher()
        me = weakref.ref(self, lambda _ref: core_signal.disconnect(forward))

        def forward(*args: Any) -> None:
            try:
                dispatcher.fired.emit(me, args)
            except RuntimeError:
                pass  # Qt is already gone: the app is exiting and nobody is left to tell

        self._forward = forward
        self._kept_by: list[Relay] = owner.__dict__.setdefault("_virtstudio_relays", [])
        self._kept_by.append(self)
        owner.destroyed.connect(self._owner_destroyed)
        core_signal.connect(forward)

    def deliver(self, args: tuple[Any, ...]) -> None:
        if self._alive:
            self._slot(*args)

    def _owner_destroyed(self, *_: Any) -> None:
        self.detach()

    def detach(self) -> None:
        self._alive = False
        self._core_signal.disconnect(self._forward)
        if self in self._kept_by:
            self._kept_by.remove(self)


def relay(core_signal: CoreSignal, slot: Callable[..., Any], owner: QObject) -> Relay:
    """Call ``slot`` on the GUI thread each time ``core_signal`` fires, while ``owner`` lives."""
    return Relay(core_signal, slot, owner)
