"""The Networks page against the real libvirtd: NAT and isolated networks made in the dialog,
the lab guest booted on one (its tap on the right bridge, its DHCP lease in the page, its
node in the topology), and a recorded VLAN put on its tap when it starts."""

from __future__ import annotations

import os
import random
from pathlib import Path

import libvirt
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton

from tests.helpers import off_gui_thread
from tests.integration.conftest import _remove_domain
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import SerialConsole, lab_domain_xml
from tests.qt_events import drain_posted_events
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.network.nic_vlan import NicVlanApplier, set_nic_vlan
from virtstudio.ui.network_dialog import NetworkDialog

TAG = os.getpid() % 1000


def _cleanup(names: list[str], domains: list[str]) -> None:
    for name in domains:
        _remove_domain(name)
    raw = libvirt.open(SYSTEM_URI)
    for name in names:
        try:
            net = raw.networkLookupByName(name)
        except libvirt.libvirtError:
            continue
        if net.isActive():
            net.destroy()
        net.undefine()


@pytest.fixture
def page(make_main_window, qtbot, system_libvirtd):
    window = make_main_window(Inventory(stats_interval=0))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    top = window.host_model.index(0, 0)
    qtbot.waitUntil(lambda: window.host_model.rowCount(top) == 3, timeout=60000)
    window.host_view.setCurrentIndex(window.host_model.index(2, 0, top))
    assert window.pages.currentWidget() is window.network_page
    made: list[str] = []
    domains: list[str] = []
    yield window, conn, made, domains
    off_gui_thread(_cleanup, made, domains)


def _create(qtbot, tab, opened, name, mode, address, bridge):
    qtbot.mouseClick(tab.new_button, Qt.MouseButton.LeftButton)
    dialog = [d for d in opened if isinstance(d, NetworkDialog)][-1]
    qtbot.keyClicks(dialog.name_edit, name)
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData(mode))
    dialog.bridge_edit.setCurrentText(bridge)
    qtbot.keyClicks(dialog.ipv4_edit, address)
    dialog.autostart_check.setChecked(False)
    assert dialog.ok_button.isEnabled(), dialog.error.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)


def _free_subnet(conn) -> int:
    used = {n.ipv4.split(".")[2] for n in conn.networks.values() if n.ipv4.startswith("192.168.")}
    rng = random.Random(os.getpid())
    while True:
        third = rng.randrange(100, 250)
        if str(third) not in used and str(third + 1) not in used:
            return third


def test_networks_from_the_dialog_and_a_guest_on_one(page, qtbot, lab_images):
    window, conn, made, domains = page
    tab = window.network_page.virtual
    opened: list = []
    window.confirm_requested.connect(opened.append)
    subnet = _free_subnet(conn)
    nat, iso = f"vstest-dnat-{os.getpid()}", f"vstest-diso-{os.getpid()}"
    nat_br, iso_br = f"vsdn{TAG}", f"vsdi{TAG}"
    made += [nat, iso]
    _create(qtbot, tab, opened, nat, "nat", f"192.168.{subnet}.1/24", nat_br)
    _create(qtbot, tab, opened, iso, "isolated", f"192.168.{subnet + 1}.1/24", iso_br)

    def net(name):
        return next((n for n in conn.networks.values() if n.name == name), None)

    # bool(): pytest-qt takes a None answer for "passed".
    qtbot.waitUntil(lambda: bool(net(nat) and net(nat).active and net(iso) and net(iso).active),
                    timeout=60000)
    assert net(nat).forward_mode == "nat" and net(iso).forward_mode == "isolated"
    assert Path(f"/sys/class/net/{nat_br}/bridge").is_dir()
    assert Path(f"/sys/class/net/{iso_br}/bridge").is_dir()

    # Editing a running network, then restarting it as offered, applies the new settings.
    qtbot.waitUntil(lambda: tab.select(iso), timeout=60000)  # the list follows the host
    opened.clear()
    qtbot.mouseClick(tab.edit_button, Qt.MouseButton.LeftButton)
    dialog = opened[-1]
    dialog.dhcp_start.setText(f"192.168.{subnet + 1}.50")
    dialog.dhcp_end.setText(f"192.168.{subnet + 1}.60")
    assert dialog.ok_button.isEnabled(), dialog.error.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    offer = opened[-1]
    assert f"Restart {iso} now?" in offer.windowTitle()
    qtbot.mouseClick(offer.findChild(QAbstractButton, "confirmButton"),
                     Qt.MouseButton.LeftButton)
    live = f"<range start='192.168.{subnet + 1}.50' end='192.168.{subnet + 1}.60'"
    qtbot.waitUntil(lambda: live in off_gui_thread(
        lambda: libvirt.open(SYSTEM_URI).networkLookupByName(iso).XMLDesc(0)).replace(
            '"', "'"), timeout=60000)
    qtbot.waitUntil(lambda: bool(net(iso) and net(iso).active), timeout=60000)

    # The guest, persistent so its VLAN is recorded before it starts.
    name = f"vstest-netui-{os.getpid()}"
    domains.append(name)
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).defineXML(
        lab_domain_xml(name, lab_images, graphics=(), networks=(nat,))))
    qtbot.waitUntil(lambda: conn.find_domain_by_name(name) is not None, timeout=60000)
    guest = conn.find_domain_by_name(name)
    mac = guest.summary.nics[0].mac
    applier = NicVlanApplier(window.runner)
    applier.watch(conn)
    recorded = set_nic_vlan(window.runner, conn, guest, mac, 10)
    qtbot.waitUntil(lambda: recorded.state.finished, timeout=60000)
    assert recorded.state.value == "Done", recorded.log_text()

    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).lookupByName(name).create())
    qtbot.waitUntil(lambda: bool(conn.find_domain_by_name(name).summary.nics[0].target_dev),
                    timeout=60000)
    tap = conn.find_domain_by_name(name).summary.nics[0].target_dev
    assert Path(f"/sys/class/net/{tap}/master").resolve().name == nat_br

    # The start event put (or, on a kernel without VLAN filtering, tried to put) the tap
    # into VLAN 10; this host's kernel lacks it, the kernel lab covers the real thing.
    applied = None

    def apply_job():
        return next((j for j in window.runner.jobs if j.title == f"Apply VLANs of {name}"),
                    None)

    qtbot.waitUntil(lambda: (applied := apply_job()) is not None and applied.state.finished,
                    timeout=60000)
    applied = apply_job()
    assert f"VLAN 10 on {tap}" in applied.log_text()
    if Path(f"/sys/class/net/{nat_br}/bridge/vlan_filtering").exists():
        assert applied.state.value == "Done", applied.log_text()
    else:
        assert "does not support" in applied.error.message

    # Deleting the network the guest runs on is refused; nothing changes.
    qtbot.waitUntil(lambda: tab.select(nat), timeout=60000)
    opened.clear()
    qtbot.mouseClick(tab.delete_button, Qt.MouseButton.LeftButton)
    assert f"in use by {name}" in opened[-1].text()
    opened[-1].close()
    assert net(nat).active

    # The guest asks for an address: its lease shows in the page.
    console = off_gui_thread(lambda: SerialConsole(
        libvirt.open(SYSTEM_URI).lookupByName(name)))
    try:
        off_gui_thread(console.send, "\n")
        off_gui_thread(console.wait_for, "lab# ", 30)
        off_gui_thread(console.send, "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10"
                       " -s /bin/true; echo DHCP-DONE\n")
        off_gui_thread(console.wait_for, "DHCP-DONE\r", 60)
    finally:
        off_gui_thread(console.close)

    # Each reading of the leases is one emission; the tab's relay, connected first, has
    # posted it to the GUI thread by the time this listener hears it.
    readings: list = []
    tab._leases_read.connect(lambda *reading: readings.append(reading))

    def lease_macs():
        count = len(readings)
        tab.refresh_leases()
        qtbot.waitUntil(lambda: len(readings) > count, timeout=30000)
        drain_posted_events(qtbot)  # the table shows this reading
        return {tab.leases.item(r, 0).text() for r in range(tab.leases.rowCount())}

    qtbot.waitUntil(lambda: mac in lease_macs(), timeout=60000)
    row = next(r for r in range(tab.leases.rowCount()) if tab.leases.item(r, 0).text() == mac)
    assert tab.leases.item(row, 1).text().startswith(f"192.168.{subnet}.")

    # The topology draws the guest on its network (once shown: hidden, it only notes
    # that it is stale).
    view = window.network_page.topology
    window.network_page.setCurrentWidget(view)
    qtbot.waitUntil(lambda: (f"vm:{conn.uri}:{guest.uuid}", f"net:{conn.uri}:{nat}")
                    in {(e.a, e.b) for e in view.graph.edges}, timeout=60000)
