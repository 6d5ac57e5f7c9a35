"""Decides which console the details pane shows, and opens detached console windows."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QWidget

from virtstudio.console.session import ConsoleSession
from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.ui.console_view import ConsolePane

RECONNECT_DELAY_MS = 2000


def console_problem(host: HostConnection, domain: Domain) -> str:
    """Why the domain's screen cannot be shown now, or "" when it can."""
    if host.state is not ConnectionState.CONNECTED:
        return f"{host.name} is not connected."
    if not domain.state.is_active:
        return f"{domain.name} is {domain.state.label.lower()}. Start it to see its screen."
    kinds = [g.kind for g in domain.summary.graphics]
    if "vnc" not in kinds:
        if "spice" in kinds:
            return (f"{domain.name} has only a SPICE display; this version shows VNC "
                    "displays. Add a VNC display in its hardware to use the console here.")
        return f"{domain.name} has no graphical display."
    parsed = uri_mod.parse(host.uri)
    if parsed.is_remote or parsed.is_test:
        return ("Consoles of machines on remote hosts are not available yet in this version."
                if parsed.is_remote else "The demo host has no real screens to show.")
    return ""


class ConsoleController(QObject):
    def __init__(self, pane: ConsolePane, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pane = pane
        self.key: tuple[str, str] | None = None
        self.detached: dict[tuple[str, str], QWidget] = {}
        self._current: tuple[HostConnection, Domain] | None = None
        self.visible = False
        pane.detach_requested.connect(self.detach)
        pane.session_closed.connect(self._on_closed)

    def show(self, host: HostConnection | None, domain: Domain | None, visible: bool) -> None:
        """Show ``domain``'s console when the console tab is ``visible``; stop it otherwise."""
        self._current = (host, domain) if host is not None and domain is not None else None
        self.visible = visible
        if host is None or domain is None or not visible:
            self.key = None
            self.pane.detach_session()
            self.pane.show_message("Select a running machine to see its screen.")
            return
        key = (host.uri, domain.uuid)
        if key in self.detached:
            self.key = None
            self.pane.detach_session()
            self.pane.show_message(f"The console of {domain.name} is open in its own window.")
            return
        problem = console_problem(host, domain)
        if problem:
            self.key = None
            self.pane.detach_session()
            self.pane.show_message(problem)
            return
        session = self.pane.session
        if key == self.key and session is not None and session.state in ("connecting",
                                                                          "connected"):
            return
        self.key = key
        self.pane.attach(self._session(host, domain))

    def _on_closed(self, _session: ConsoleSession) -> None:
        # A dropped console comes back by itself while the machine still runs; if it
        # stopped, show() says so instead.
        self.key = None
        if self._current is not None:
            host, domain = self._current
            wanted = (host.uri, domain.uuid)
            QTimer.singleShot(RECONNECT_DELAY_MS, lambda: self._retry(wanted))

    def _retry(self, wanted: tuple[str, str]) -> None:
        current = self._current
        if current is None or (current[0].uri, current[1].uuid) != wanted:
            return  # the user has moved on to another machine
        if self.pane.session is not None and self.pane.session.state == "closed":
            self.show(current[0], current[1], self.visible)

    @staticmethod
    def _session(host: HostConnection, domain: Domain) -> ConsoleSession:
        index = [g.kind for g in domain.summary.graphics].index("vnc")
        return ConsoleSession.for_domain(host, domain.uuid, index)

    def detach(self) -> None:
        if self._current is None:
            return
        host, domain = self._current
        key = (host.uri, domain.uuid)
        window = ConsolePane()
        window.setWindowTitle(f"{domain.name} — Console")
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.detach_button.hide()
        window.setParent(self.pane.window(), Qt.WindowType.Window)
        window.resize(900, 560)
        window.destroyed.connect(lambda *_: self.detached.pop(key, None))
        self.detached[key] = window
        self.pane.detach_session()
        self.key = None
        self.pane.show_message(f"The console of {domain.name} is open in its own window.")
        window.attach(self._session(host, domain))
        window.show()

    def shutdown(self) -> None:
        self.pane.detach_session()
        for window in list(self.detached.values()):
            window.close()
