"""Live migration of the lab guest between the system libvirtd and a second QEMU daemon.

The second daemon (tests/lab/qemu_daemon.py) runs on this machine with private
QEMU state and a host UUID of its own, so libvirt treats it as another host;
the disk images under /var/lib/libvirt/images play the part of shared storage.
"""

from __future__ import annotations

import os

import libvirt
import pytest
from PySide6.QtCore import Qt

from tests.helpers import off_gui_thread, wait_for
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import SerialConsole, lab_domain_xml, wait_for_prompt
from tests.lab.qemu_daemon import PrivateQemuDaemon, qemu_daemon_unavailable
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines.migrate import MigrateOptions, migrate_domain

pytestmark = pytest.mark.skipif(bool(qemu_daemon_unavailable()),
                                reason=qemu_daemon_unavailable() or "available")
BOOT_S = 150
ADDRESS = "tcp://127.0.0.1"  # this machine's name resolves to loopback: say where to go


@pytest.fixture
def second_daemon():
    daemon = off_gui_thread(PrivateQemuDaemon)
    off_gui_thread(daemon.start)
    yield daemon
    off_gui_thread(daemon.close)


def _remove_everywhere(name: str, uris: list[str]) -> None:
    for uri in uris:
        try:
            conn = libvirt.open(uri)
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()


@pytest.fixture
def running_guest(request, lab_images, second_daemon):
    name = f"vstest-migrate-{request.node.name[5:20].replace('_', '-')}-{os.getpid()}"

    def boot() -> None:
        dom = libvirt.open(SYSTEM_URI).defineXML(
            lab_domain_xml(name, lab_images, graphics=("vnc",)))
        dom.create()
        wait_for_prompt(dom, BOOT_S)

    try:
        off_gui_thread(boot, timeout=BOOT_S + 60)
        yield name
    finally:
        off_gui_thread(_remove_everywhere, name, [SYSTEM_URI, second_daemon.uri])


def _answers_on_serial(uri: str, name: str) -> bool:
    dom = libvirt.open(uri).lookupByName(name)
    with SerialConsole(dom, force=True) as console:
        console.send("\necho MOVED-$((40+2))\n")
        return "MOVED-42" in console.wait_for("MOVED-42", 60)


def _state_on(uri: str, name: str) -> int | None:
    try:
        return libvirt.open(uri).lookupByName(name).state()[0]
    except libvirt.libvirtError:
        return None


def test_live_migration_from_the_dialog(make_main_window, qtbot, second_daemon,
                                        running_guest, system_libvirtd):
    window = make_main_window(Inventory(stats_interval=0.5))
    source = window.inventory.add(system_libvirtd)
    same = window.inventory.add(f"{system_libvirtd}?socket=/run/libvirt/libvirt-sock")
    destination = window.inventory.add(second_daemon.uri)
    qtbot.waitUntil(lambda: all(h.state is ConnectionState.CONNECTED
                                for h in (source, same, destination)), timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(running_guest), timeout=60000)
    dialogs = []
    window.confirm_requested.connect(dialogs.append)
    qtbot.mouseClick(window.toolbar.widgetForAction(window.machine_actions.migrate_action),
                     Qt.MouseButton.LeftButton)
    dialog = dialogs[-1]
    dialog.host_combo.setCurrentIndex(dialog.host_combo.findData(same))
    assert "reach the same host" in dialog.error.text()
    assert not dialog.move_button.isEnabled()
    dialog.host_combo.setCurrentIndex(dialog.host_combo.findData(destination))
    qtbot.keyClicks(dialog.address_edit, "127.0.0.1")
    assert "tcp://host" in dialog.error.text() and not dialog.move_button.isEnabled()
    dialog.address_edit.clear()
    qtbot.keyClicks(dialog.address_edit, ADDRESS)
    assert dialog.error.text() == "" and dialog.live_check.isChecked()
    # 32 MiB/s: a few seconds for the guest's memory, so progress is sampled on any machine.
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).lookupByName(running_guest)
                   .migrateSetMaxSpeed(32, 0))
    count = len(window.runner.jobs)
    qtbot.mouseClick(dialog.move_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.runner.jobs) > count, timeout=60000)
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=240000)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert any("MiB sent" in line for _t, line in job.log_lines)  # progress from jobStats

    assert off_gui_thread(_state_on, second_daemon.uri, running_guest) \
        == libvirt.VIR_DOMAIN_RUNNING
    assert off_gui_thread(_state_on, SYSTEM_URI, running_guest) is None  # moved, not copied
    assert off_gui_thread(_answers_on_serial, second_daemon.uri, running_guest)
    qtbot.waitUntil(lambda: destination.find_domain_by_name(running_guest) is not None
                    and source.find_domain_by_name(running_guest) is None, timeout=60000)


def test_cancel_aborts_the_migration_and_the_guest_stays(second_daemon, running_guest,
                                                         system_libvirtd):
    source = HostConnection(system_libvirtd, stats_interval=0)
    destination = HostConnection(second_daemon.uri, stats_interval=0)
    runner = JobRunner()
    try:
        for host in (source, destination):
            host.open().result(timeout=60)
        domain = wait_for(lambda: source.find_domain_by_name(running_guest), timeout=60)
        # A slow link (1 MiB/s) keeps the copy going long enough to cancel it.
        libvirt.open(SYSTEM_URI).lookupByName(running_guest).migrateSetMaxSpeed(1, 0)
        job = migrate_domain(runner, source, domain, destination,
                             MigrateOptions(address=ADDRESS))
        wait_for(lambda: (job.progress or 0) > 0 or job.state.finished, timeout=120)
        assert job.cancel()
        wait_for(lambda: job.state.finished, timeout=120)
        assert job.state is JobState.CANCELLED, (job.error, job.log_text())
        assert _state_on(SYSTEM_URI, running_guest) == libvirt.VIR_DOMAIN_RUNNING
        assert _state_on(second_daemon.uri, running_guest) is None
        assert _answers_on_serial(SYSTEM_URI, running_guest)
    finally:
        runner.shutdown(wait=True)
        source.shutdown()
        destination.shutdown()
