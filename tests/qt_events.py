"""Proving that the GUI thread has handled everything queued so far, without sleeping.

Before asserting that something did *not* happen (no job, no message, no change) a test
needs to know the event loop got to it.  Signals from worker threads reach the GUI
thread as posted events (``virtstudio.ui.bridge`` relays them the same way), and Qt
delivers posted events in the order they were posted; so once a marker posted now has
been delivered, every event posted before it has been delivered too.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot

CEILING_MS = 10_000  # a loaded test machine can be slow; a healthy run takes milliseconds


class _Marker(QObject):
    poke = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.delivered = False
        self.poke.connect(self._hit, Qt.ConnectionType.QueuedConnection)

    @Slot()
    def _hit(self) -> None:
        self.delivered = True


def drain_posted_events(qtbot, timeout: int = CEILING_MS) -> None:
    """Return once every event posted to the GUI thread before this call is delivered."""
    marker = _Marker()
    marker.poke.emit()
    qtbot.waitUntil(lambda: marker.delivered, timeout=timeout)


def drain_hosts(qtbot, hosts, timeout: int = CEILING_MS) -> None:
    """Return once each host's worker has run all it was given so far, and the GUI thread
    has handled what that work posted back.

    A host's worker runs its calls in order, so a no-op call queued now finishes after
    them.  Two rounds: what the GUI did with the first round's results may itself have
    asked the workers for more.
    """
    for _ in range(2):
        calls = [host.call(lambda _conn: None) for host in hosts]
        qtbot.waitUntil(lambda calls=calls: all(c.done() for c in calls), timeout=timeout)
        drain_posted_events(qtbot, timeout)
