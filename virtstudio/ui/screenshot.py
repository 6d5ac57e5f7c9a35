"""--screenshot: save the main window once it shows what the picture promises.

The picture is taken when every open host has either failed or connected with
all of its machines read and inserted in the list, never after a fixed delay:
a host of thousands of machines takes longer to list than any delay one could
pick, and a picture of an empty list says nothing.  A ceiling keeps a host that
never settles from holding the command forever; the picture is then saved
anyway and the exit status says it is incomplete.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.inventory import Inventory

CEILING_S = 120.0
POLL_MS = 100
# A few statistics ticks give the sparklines something to show.
SETTLE_MS = 3000

_SETTLED_BADLY = (ConnectionState.FAILED, ConnectionState.LOST)


@dataclass(frozen=True)
class ScreenshotResult:
    path: Path
    saved: bool
    complete: bool  # every host settled before the ceiling
    machines: int  # rows the list held when the picture was taken
    hosts: int
    connected: int
    waited_s: float

    def summary(self) -> str:
        listed = f"{self.machines} machine{'s' if self.machines != 1 else ''} listed"
        hosts = f"{self.connected} of {self.hosts} host{'s' if self.hosts != 1 else ''} connected"
        if not self.saved:
            return f"The screenshot could not be saved to {self.path}."
        if not self.complete:
            return (f"Screenshot saved to {self.path} after {self.waited_s:.0f} s, before every "
                    f"host was listed: {listed}, {hosts}.")
        return f"Screenshot saved to {self.path}: {listed}, {hosts}."


def host_is_listed(host: HostConnection, model: object) -> bool:
    """True when ``host`` failed, or connected and every machine it read is in ``model``."""
    if host.state in _SETTLED_BADLY:
        return True
    if host.state is not ConnectionState.CONNECTED or not host.is_populated:
        return False
    return all(model.row_of(host.uri, uuid) >= 0 for uuid in list(host.domains))


def all_listed(inventory: Inventory, model: object) -> bool:
    hosts = inventory.connections
    return bool(hosts) and all(host_is_listed(h, model) for h in hosts)


def _quit_with(result: ScreenshotResult) -> None:
    stream = sys.stdout if result.saved and result.complete else sys.stderr
    print(result.summary(), file=stream, flush=True)
    QApplication.exit(0 if result.saved and result.complete else 1)


def schedule_screenshot(window: object, inventory: Inventory, path: Path, *,
                        ceiling_s: float = CEILING_S, settle_ms: int = SETTLE_MS,
                        done: Callable[[ScreenshotResult], None] = _quit_with) -> None:
    """Save ``window`` to ``path`` once every host is listed (or ``ceiling_s`` passed)."""
    started = time.monotonic()
    poll = QTimer(window)
    poll.setInterval(POLL_MS)

    def check() -> None:
        complete = all_listed(inventory, window.vm_model)
        if not complete and time.monotonic() - started < ceiling_s:
            return
        poll.stop()
        window.vm_view.setFocus()
        if window.vm_proxy.rowCount() and window.selected_domain() is None:
            window.vm_view.setCurrentIndex(window.vm_proxy.index(0, 0))
        QTimer.singleShot(settle_ms if complete else 0, lambda: save(complete))

    def save(complete: bool) -> None:
        # Hosts may have dropped while the sparklines filled: say what is drawn.
        complete = complete and all_listed(inventory, window.vm_model)
        hosts = inventory.connections
        saved = window.grab().save(str(path))
        done(ScreenshotResult(
            path=path, saved=saved, complete=complete,
            machines=window.vm_proxy.rowCount(), hosts=len(hosts),
            connected=sum(1 for h in hosts if h.state is ConnectionState.CONNECTED),
            waited_s=time.monotonic() - started))

    poll.timeout.connect(check)
    poll.start()
