"""The interfaces tab driven through its widgets, inside a network namespace of the test's own:
bridges, veths, dummies, ports; bad input gets a message and changes nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QMessageBox

from tests.network.conftest import ip
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner
from virtstudio.network.nm_persist import NOT_RUNNING

USED_BRIDGE = "vs-used0"


def fixture_with_vm_on(path, bridge: str) -> str:
    """A test-driver host with one running machine whose NIC sits on ``bridge``."""
    path.write_text(
        "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
        "<domain type='test'><name>bridged-vm</name><memory>65536</memory>"
        "<os><type>hvm</type></os><devices><interface type='bridge'>"
        f"<source bridge='{bridge}'/><mac address='52:54:00:00:aa:01'/></interface>"
        "</devices><test:runstate>1</test:runstate></domain></node>", encoding="utf-8")
    return f"test://{path}"


@pytest.fixture
def tab(qtbot, host, tmp_path):
    from virtstudio.ui.main_window import MainWindow

    inventory = Inventory(stats_interval=0)
    window = MainWindow(inventory, JobRunner(), host_network=host)
    qtbot.addWidget(window)
    window.show()
    conn = inventory.add(fixture_with_vm_on(tmp_path / "h.xml", USED_BRIDGE))
    qtbot.waitUntil(lambda: len(conn.domains) == 1, timeout=20000)
    opened: list = []
    window.confirm_requested.connect(opened.append)
    page = window.network_page
    page.setCurrentWidget(page.interfaces)
    yield page.interfaces, host, opened, window
    window.runner.shutdown(wait=True)
    inventory.shutdown()


def names(tab):
    return {tab.model.link_at(r).name for r in range(tab.model.rowCount())}


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


def links_caught_up(qtbot, tab, host, marker: str) -> None:
    """Add a bridge and wait for the tab to list it: the host's link changes reach the tab
    in order, so any change made before it has reached the tab too."""
    ip("-n", host.netns, "link", "add", marker, "type", "bridge")
    qtbot.waitUntil(lambda: marker in names(tab), timeout=10000)


def refused(opened, fragment):
    box = opened[-1]
    assert isinstance(box, QMessageBox) and fragment in box.text(), box.text()
    box.close()


def test_bridges_veths_dummies_and_ports(tab, qtbot):
    tab, host, opened, window = tab
    assert "runtime-only" in tab.findChild(QLabel, "runtimeOnlyNote").text()
    type_into(qtbot, tab.bridge_name_edit, "vs-br1")
    click(qtbot, tab.new_bridge_button)
    type_into(qtbot, tab.veth_name_edit, "vs-v1")
    type_into(qtbot, tab.veth_peer_edit, "vs-v1p")
    click(qtbot, tab.new_veth_button)
    qtbot.waitUntil(lambda: all(j.state.finished for j in window.runner.jobs), timeout=20000)
    assert [j.state.value for j in window.runner.jobs] == ["Done"] * 2, [
        j.log_text() for j in window.runner.jobs]
    qtbot.waitUntil(lambda: {"vs-br1", "vs-v1", "vs-v1p"} <= names(tab), timeout=20000)
    assert host.find("vs-v1").kind == "veth"  # dummies need a module: see the kernel lab

    assert tab.select("vs-v1")
    qtbot.waitUntil(lambda: tab.port_bridge_combo.findText("vs-br1") >= 0, timeout=20000)
    tab.port_bridge_combo.setCurrentText("vs-br1")
    click(qtbot, tab.add_port_button)
    bridge = host.find("vs-br1")
    qtbot.waitUntil(lambda: host.find("vs-v1").master == bridge.index, timeout=20000)
    qtbot.waitUntil(lambda: "port of vs-br1" in tab.selected_label.text(), timeout=20000)
    assert tab.remove_port_button.isEnabled()
    click(qtbot, tab.remove_port_button)
    qtbot.waitUntil(lambda: host.find("vs-v1").master == 0, timeout=20000)

    assert tab.select("vs-br1")
    click(qtbot, tab.delete_button)
    click(qtbot, opened[-1].findChild(QAbstractButton, "confirmButton"))
    qtbot.waitUntil(lambda: "vs-br1" not in names(tab), timeout=20000)
    qtbot.waitUntil(lambda: all(j.state.finished for j in window.runner.jobs), timeout=20000)
    failed = [j for j in window.runner.jobs if j.state.value != "Done"]
    assert not failed, [j.log_text() for j in failed]


def test_bad_input_gets_a_message_and_changes_nothing(tab, qtbot):
    tab, host, opened, window = tab
    ip("-n", host.netns, "link", "add", USED_BRIDGE, "type", "bridge")
    qtbot.waitUntil(lambda: USED_BRIDGE in names(tab), timeout=20000)
    before = set(names(tab))

    type_into(qtbot, tab.bridge_name_edit, USED_BRIDGE)
    click(qtbot, tab.new_bridge_button)
    refused(opened, "exists already")
    type_into(qtbot, tab.bridge_name_edit, "a-name-much-too-long")
    click(qtbot, tab.new_bridge_button)
    refused(opened, "not a usable interface name")
    assert tab.bridge_name_edit.text() == "a-name-much-too-long"  # kept for correcting

    tab.vlan_parent_combo.setCurrentText(USED_BRIDGE)
    for bad in ("0", "4095", "ten"):
        type_into(qtbot, tab.vlan_id_edit, bad)
        click(qtbot, tab.new_vlan_button)
        refused(opened, "1-4094" if bad != "ten" else "not a VLAN id")

    type_into(qtbot, tab.veth_name_edit, "vs-same")
    type_into(qtbot, tab.veth_peer_edit, "vs-same")
    click(qtbot, tab.new_veth_button)
    refused(opened, "different names")

    # A running machine's NIC is on the bridge: deleting it is refused.
    assert tab.select(USED_BRIDGE)
    click(qtbot, tab.delete_button)
    refused(opened, "in use by bridged-vm")
    links_caught_up(qtbot, tab, host, "vs-mark")
    assert set(names(tab)) == before | {"vs-mark"} and not window.runner.jobs


def test_default_route_interface_needs_explicit_confirmation(tab, qtbot):
    tab, host, opened, window = tab
    ip("-n", host.netns, "link", "add", "vs-up", "type", "veth", "peer", "name", "vs-upp")
    ip("-n", host.netns, "addr", "add", "10.99.0.2/24", "dev", "vs-up")
    ip("-n", host.netns, "link", "set", "vs-up", "up")
    ip("-n", host.netns, "link", "set", "vs-upp", "up")
    ip("-n", host.netns, "route", "add", "default", "via", "10.99.0.1", "dev", "vs-up", "onlink")
    qtbot.waitUntil(lambda: "vs-up" in names(tab), timeout=20000)
    assert tab.select("vs-up")
    click(qtbot, tab.delete_button)
    click(qtbot, opened[-1].findChild(QAbstractButton, "confirmButton"))  # delete?
    warning = opened[-1]
    assert "default route" in warning.text()
    warning.reject()  # Cancel: nothing changes
    links_caught_up(qtbot, tab, host, "vs-mark")
    assert "vs-up" in names(tab) and not window.runner.jobs
    click(qtbot, tab.delete_button)
    click(qtbot, opened[-1].findChild(QAbstractButton, "confirmButton"))
    click(qtbot, opened[-1].findChild(QAbstractButton, "confirmButton"))  # change anyway
    qtbot.waitUntil(lambda: "vs-up" not in names(tab), timeout=20000)


def test_make_permanent_says_networkmanager_is_not_running(tab, qtbot):
    tab, host, _opened, window = tab
    qtbot.waitUntil(lambda: "not running" in tab.nm_label.text(), timeout=20000)
    ip("-n", host.netns, "link", "add", "vs-keep", "type", "bridge")
    qtbot.waitUntil(lambda: "vs-keep" in names(tab), timeout=20000)
    assert tab.select("vs-keep") and tab.permanent_button.isEnabled()
    click(qtbot, tab.permanent_button)
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=20000)
    assert job.state.value == "Failed" and job.error.message == NOT_RUNNING
