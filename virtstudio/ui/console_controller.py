"""Decides which console the details pane shows, and opens detached console windows."""

from __future__ import annotations

from concurrent.futures import Future

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QWidget

from virtstudio.console.remote_display import TunneledDisplay
from virtstudio.console.remote_viewer import open_in_remote_viewer, remote_viewer_path
from virtstudio.console.session import ConsoleSession
from virtstudio.console.ssh_tunnel import TunnelPool, shared_pool
from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.inventory import Inventory
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.ui.bridge import relay
from virtstudio.ui.console_view import ConsolePane

RECONNECT_DELAY_MS = 2000


def console_problem(host: HostConnection, domain: Domain) -> str:
    """Why the domain's screen cannot be shown now, or "" when it can."""
    if host.state is not ConnectionState.CONNECTED:
        return f"{host.name} is not connected."
    if not domain.state.is_active:
        return f"{domain.name} is {domain.state.label.lower()}. Start it to see its screen."
    if not console_kinds(domain):
        return f"{domain.name} has no graphical display."
    parsed = uri_mod.parse(host.uri)
    if parsed.is_test:
        return "The demo host has no real screens to show."
    if parsed.is_remote and parsed.transport != "ssh":
        return (f"Consoles of machines on hosts reached over {parsed.transport or 'the network'}"
                " are not available yet; connect to the host over SSH (qemu+ssh://) instead.")
    return ""


def console_kinds(domain: Domain) -> list[str]:
    """The displays VirtStudio's own clients can show, in the domain's order."""
    return [g.kind for g in domain.summary.graphics if g.kind in ("vnc", "spice")]


def console_session(host: HostConnection, domain: Domain, preferred: str | None = None,
                    tunnels: TunnelPool | None = None) -> ConsoleSession:
    """A session on the ``preferred`` display if the domain has one, else VNC, else SPICE.

    Local displays come straight from libvirt; remote ones through the host's one
    SSH connection (``tunnels``, the application's pool unless given).
    """
    kinds = [g.kind for g in domain.summary.graphics]
    usable = console_kinds(domain)
    kind = preferred if preferred in usable else ("vnc" if "vnc" in usable else "spice")
    index = kinds.index(kind)
    if uri_mod.parse(host.uri).is_remote:
        opener = TunneledDisplay(host, domain.uuid, index, tunnels or shared_pool())
        return ConsoleSession(opener, protocol=kind)
    return ConsoleSession.for_domain(host, domain.uuid, index, protocol=kind)


def viewer_possible(host: HostConnection, domain: Domain) -> bool:
    """Whether remote-viewer could open the domain's screen (installed, running, real host)."""
    return (remote_viewer_path() is not None and host.state is ConnectionState.CONNECTED
            and domain.state.is_active and bool(console_kinds(domain))
            and not uri_mod.parse(host.uri).is_test)


class ConsoleController(QObject):
    def __init__(self, pane: ConsolePane, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pane = pane
        self.key: tuple[str, str] | None = None
        self.detached: dict[tuple[str, str], QWidget] = {}
        self._current: tuple[HostConnection, Domain] | None = None
        self.visible = False
        self.protocols: dict[tuple[str, str], str] = {}  # the user's pick per machine
        self.viewer_failed = CoreSignal("remote-viewer failed")
        self._viewer_relay = relay(self.viewer_failed, self._on_viewer_failed, self)
        pane.detach_requested.connect(self.detach)
        pane.session_closed.connect(self._on_closed)
        pane.protocol_chosen.connect(self._on_protocol)
        pane.viewer_requested.connect(self.open_remote_viewer)
        pane.picture_incomplete.connect(self._on_incomplete)

    def follow_hosts(self, inventory: Inventory) -> None:
        """Close a host's console tunnel when the host leaves ``inventory``."""
        shared_pool().follow(inventory)

    def show(self, host: HostConnection | None, domain: Domain | None, visible: bool) -> None:
        """Show ``domain``'s console when the console tab is ``visible``; stop it otherwise."""
        self._current = (host, domain) if host is not None and domain is not None else None
        self.visible = visible
        if host is None or domain is None or not visible:
            self.key = None
            self.pane.detach_session()
            self.pane.show_message("Select a running machine to see its screen.")
            self.pane.offer_viewer(False)
            return
        key = (host.uri, domain.uuid)
        self.pane.set_protocols(console_kinds(domain), self._protocol(key, domain))
        self.pane.offer_viewer(False)
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
            # Neither client shows it here (e.g. a remote host): remote-viewer may.
            self.pane.offer_viewer(viewer_possible(host, domain))
            return
        session = self.pane.session
        if key == self.key and session is not None and session.state in ("connecting",
                                                                          "connected"):
            return
        self.key = key
        self.pane.attach(console_session(host, domain, self.protocols.get(key)))

    def _protocol(self, key: tuple[str, str], domain: Domain) -> str:
        kinds = console_kinds(domain)
        chosen = self.protocols.get(key)
        return chosen if chosen in kinds else ("vnc" if "vnc" in kinds else "spice")

    def _on_protocol(self, protocol: str) -> None:
        if self._current is None:
            return
        host, domain = self._current
        key = (host.uri, domain.uuid)
        if self._protocol(key, domain) == protocol:
            return
        self.protocols[key] = protocol
        self.key = None  # reconnect over the chosen protocol
        self.show(host, domain, self.visible)

    def open_remote_viewer(self) -> Future | None:
        """Open the current machine's display in remote-viewer (password over stdin)."""
        if self._current is None:
            return None
        host, domain = self._current
        kind = self._protocol((host.uri, domain.uuid), domain)
        future = host.call(open_in_remote_viewer, domain.uuid, host.uri, kind)

        def done(f: Future) -> None:
            exc = f.exception()
            if exc is not None:
                self.viewer_failed.emit(str(exc))

        future.add_done_callback(done)
        return future

    def _on_incomplete(self, _what: str) -> None:
        if self._current is not None:
            self.pane.offer_viewer(viewer_possible(*self._current))

    def _on_viewer_failed(self, reason: str) -> None:
        self.pane.show_message(f"remote-viewer could not be opened: {reason}")

    def _on_closed(self, _session: ConsoleSession) -> None:
        # A dropped console comes back by itself while the machine still runs; if it
        # stopped, show() says so instead.
        self.key = None
        if self._current is not None:
            host, domain = self._current
            self.pane.offer_viewer(viewer_possible(host, domain))
            wanted = (host.uri, domain.uuid)
            QTimer.singleShot(RECONNECT_DELAY_MS, lambda: self._retry(wanted))

    def _retry(self, wanted: tuple[str, str]) -> None:
        current = self._current
        if current is None or (current[0].uri, current[1].uuid) != wanted:
            return  # the user has moved on to another machine
        if self.pane.session is not None and self.pane.session.state == "closed":
            self.show(current[0], current[1], self.visible)

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
        window.attach(console_session(host, domain, self.protocols.get(key)))
        window.show()

    def shutdown(self) -> None:
        self.pane.detach_session()
        for window in list(self.detached.values()):
            window.close()
