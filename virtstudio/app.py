"""Entry point: parse options, build the core, open the main window."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from virtstudio.cli import parse_args


def _choose_hosts(args: object, saved: list[tuple[str, bool]]) -> tuple[list[str], bool]:
    """Return (URIs to open now, whether to look for a local daemon first)."""
    if args.connect:
        return list(dict.fromkeys(args.connect)), False
    if args.demo:
        return [], False
    autoconnect = [] if args.no_autoconnect else [uri for uri, auto in saved if auto]
    if autoconnect:
        return autoconnect, False
    return [], True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Qt's GLib dispatcher and libvirt's event thread fight over GLib's
    # default context; Qt's own dispatcher avoids that.  Must precede QApplication.
    os.environ["QT_NO_GLIB"] = "1"

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from virtstudio.core import thread_guard
    from virtstudio.core.demo import DEMO_NAME, demo_uri
    from virtstudio.core.errors import VirtStudioError
    from virtstudio.core.inventory import Inventory
    from virtstudio.core.jobs import JobRunner
    from virtstudio.core.local_probe import LocalAccess, probe_local_access
    from virtstudio.core.runtime import tune_gc, tune_thread_switching
    from virtstudio.network.host_links import HostNetwork
    from virtstudio.network.nic_vlan import NicVlanApplier
    from virtstudio.sandbox.manager import SandboxManager, default_data_dir
    from virtstudio.sandbox.store import ProfileStore
    from virtstudio.ui import gc_on_gui_thread
    from virtstudio.ui.bridge import relay
    from virtstudio.ui.main_window import MainWindow
    from virtstudio.ui.settings import ConnectionSettings
    from virtstudio.ui.uri_confirm import open_start_hosts

    if args.debug or os.environ.get("VIRTSTUDIO_DEBUG_THREADS") == "1":
        thread_guard.install()
        thread_guard.set_gui_thread(threading.current_thread())

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("VirtStudio")
    app.setOrganizationName("VirtStudio")
    app.setDesktopFileName("org.virtstudio.VirtStudio")

    inventory = Inventory()
    runner = JobRunner()
    settings = ConnectionSettings()
    sandbox_manager = SandboxManager(default_data_dir())
    profile_store = ProfileStore(default_data_dir())
    host_network = HostNetwork()
    try:
        host_network.start()
    except Exception:  # netlink unavailable: the Networks page shows libvirt's only
        logging.getLogger(__name__).warning("host interfaces unavailable", exc_info=True)
        host_network = None
    # VLANs recorded for VM NICs go onto their taps each time a machine starts.
    vlan_applier = NicVlanApplier(runner)
    inventory.connection_added.connect(vlan_applier.watch)
    window = MainWindow(inventory, runner, settings, (sandbox_manager, profile_store),
                        host_network)
    tune_gc()
    tune_thread_switching()
    gc_on_gui_thread.install()

    def add_demo() -> None:
        try:
            inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
        except VirtStudioError as exc:
            window.statusBar().showMessage(exc.message)

    # The app needs no root: only the privileged helper does, one change at a time.
    window.root_banner.setVisible(os.geteuid() == 0)
    # Shown first: a status message set on a hidden window ends up under the summary.
    window.restore_layout()
    window.show()

    saved = [(s.uri, s.autoconnect) for s in settings.load()]
    uris, probe = _choose_hosts(args, saved)
    if args.demo:
        add_demo()
    # A URI that runs a program or names a socket or key is shown and confirmed first.
    open_start_hosts(window, inventory, settings, uris, from_command_line=bool(args.connect),
                     on_error=lambda message: print(f"virtstudio: {message}", file=sys.stderr))
    if probe:
        # The window shows at once; the local daemon or the demo host follows.
        from virtstudio.core.signal import Signal

        answered = Signal("local libvirtd answered")

        def on_probe(access: LocalAccess) -> None:
            if access.uri is not None:
                inventory.add(access.uri)
            if access.is_system:
                window.statusBar().showMessage("Connected to the local libvirt daemon.", 5000)
            elif access.uri is not None:
                window.statusBar().showMessage(
                    "No access to the system libvirt daemon: showing your own machines "
                    f"({access.uri}).", 15000)
            else:
                window.statusBar().showMessage(
                    "No local libvirt daemon answered: showing the demo host.", 15000)
                add_demo()
            if not access.is_system and os.geteuid() != 0:
                window.show_first_run(access)

        relay(answered, on_probe, window)
        window.statusBar().showMessage("Looking for a local libvirt daemon…")
        probe_local_access(answered.emit)

    if args.screenshot:
        _schedule_screenshot(window, inventory, Path(args.screenshot))

    # Let Ctrl+C in the terminal close the app: Python only sees the signal
    # when the interpreter runs, so wake it up now and then.
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    wake = QTimer()
    wake.start(250)
    wake.timeout.connect(lambda: None)

    try:
        return app.exec()
    finally:
        runner.shutdown()
        sandbox_manager.stop_all()
        if host_network is not None:
            host_network.stop()
        inventory.shutdown(wait=False)


def _schedule_screenshot(window: object, inventory: object, path: Path) -> None:
    from virtstudio.ui.screenshot import schedule_screenshot

    schedule_screenshot(window, inventory, path)


if __name__ == "__main__":
    raise SystemExit(main())
