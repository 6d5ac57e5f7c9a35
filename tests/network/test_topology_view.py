"""The topology view follows netlink and libvirt live, and a machine dragged onto a network
is connected there after a confirmation."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QPoint, Qt

from tests.network.conftest import ip
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner
from virtstudio.ui.connect_dialog import ConnectDialog

MAC = "52:54:00:00:cc:01"


@pytest.fixture
def window(qtbot, host, tmp_path):
    from virtstudio.ui.main_window import MainWindow

    path = tmp_path / "h.xml"
    path.write_text(
        "<node><domain type='test'><name>topo-vm</name><memory>65536</memory>"
        "<os><type>hvm</type></os><devices><interface type='bridge'>"
        f"<source bridge='vs-tbr'/><mac address='{MAC}'/></interface></devices></domain>"
        "<network><name>lan</name><bridge name='vslan0'/><forward mode='nat'/>"
        "<ip address='10.78.0.1' netmask='255.255.255.0'/></network></node>",
        encoding="utf-8")
    inventory = Inventory(stats_interval=0)
    win = MainWindow(inventory, JobRunner(), host_network=host)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    conn = inventory.add(f"test://{path}")
    qtbot.waitUntil(lambda: len(conn.domains) == 1 and len(conn.networks) == 1, timeout=20000)
    win.pages.setCurrentWidget(win.network_page)
    win.network_page.setCurrentWidget(win.network_page.topology)
    yield win, conn
    win.runner.shutdown(wait=True)
    inventory.shutdown()


def edges(view):
    return {(e.a, e.b) for e in view.graph.edges}


def test_changes_show_within_a_second(window, qtbot, host):
    win, conn = window
    view = win.network_page.topology
    vm = f"vm:{conn.uri}:{conn.find_domain_by_name('topo-vm').uuid}"
    qtbot.waitUntil(lambda: vm in view.items_by_id, timeout=20000)
    # The machine's bridge is not on this computer yet: drawn as missing.
    assert "(not here)" in view.graph.nodes["link:vs-tbr"].label

    start = time.monotonic()
    ip("-n", host.netns, "link", "add", "vs-tbr", "type", "bridge")
    qtbot.waitUntil(lambda: "link:vs-tbr" in view.graph.nodes
                    and "(not here)" not in view.graph.nodes["link:vs-tbr"].label, timeout=20000)
    ip("-n", host.netns, "link", "add", "vs-tp", "type", "veth", "peer", "name", "vs-tpp")
    ip("-n", host.netns, "link", "set", "vs-tp", "master", "vs-tbr")
    qtbot.waitUntil(lambda: ("link:vs-tp", "link:vs-tbr") in edges(view), timeout=20000)
    assert (vm, "link:vs-tbr") in edges(view)
    assert view.items_by_id["link:vs-tp"].node.kind == "virtual"

    conn.call(lambda c: c.networkCreateXML(
        "<network><name>lab2</name><ip address='10.79.0.1' prefix='24'/></network>")).result(60)
    qtbot.waitUntil(lambda: f"net:{conn.uri}:lab2" in view.items_by_id, timeout=20000)
    ip("-n", host.netns, "link", "del", "vs-tp")
    qtbot.waitUntil(lambda: "link:vs-tp" not in view.items_by_id, timeout=20000)
    assert time.monotonic() - start < 5


def test_drag_a_machine_onto_a_network_connects_it(window, qtbot):
    win, conn = window
    view = win.network_page.topology
    dom = conn.find_domain_by_name("topo-vm")
    if dom.state.is_active:  # shut off, so the stored definition is what changes
        conn.call(lambda c: c.lookupByName("topo-vm").destroy()).result(60)
        qtbot.waitUntil(lambda: not conn.find_domain_by_name("topo-vm").state.is_active,
                        timeout=20000)
    vm, net = f"vm:{conn.uri}:{dom.uuid}", f"net:{conn.uri}:lan"
    qtbot.waitUntil(lambda: vm in view.items_by_id and net in view.items_by_id, timeout=20000)
    opened: list = []
    win.confirm_requested.connect(opened.append)

    source = view.node_rect(vm).center().toPoint()
    target = view.node_rect(net).center().toPoint()
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=source)
    for step in range(1, 11):  # a real drag passes through the points in between
        qtbot.mouseMove(viewport, source + (target - source) * step / 10)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=target)

    dialog = next(d for d in opened if isinstance(d, ConnectDialog))
    assert dialog.target.name == "lan" and "topo-vm" in dialog.question.text()
    assert not dialog.vlan_edit.isVisibleTo(dialog)  # VLANs are for host bridges
    # The card to move is chosen by its MAC (a new card is the other choice).
    assert [dialog.nic_combo.itemData(i) for i in range(dialog.nic_combo.count())] \
        == [MAC, None]
    assert dialog.chosen_mac() == MAC and MAC in dialog.nic_combo.currentText()
    # The node went back to its place: only the confirmed change moves it.
    assert view.items_by_id[vm].pos() == view.items_by_id[vm].home
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: conn.find_domain_by_name("topo-vm").summary.nics[0].source == "lan",
                    timeout=20000)
    nic = conn.find_domain_by_name("topo-vm").summary.nics[0]
    assert nic.kind == "network" and nic.mac == MAC
    qtbot.waitUntil(lambda: (vm, net) in edges(view), timeout=20000)


def test_drop_on_nothing_or_a_vlan_id_out_of_range_changes_nothing(window, qtbot):
    win, conn = window
    view = win.network_page.topology
    dom = conn.find_domain_by_name("topo-vm")
    vm = f"vm:{conn.uri}:{dom.uuid}"
    qtbot.waitUntil(lambda: vm in view.items_by_id, timeout=20000)
    opened: list = []
    win.confirm_requested.connect(opened.append)
    source = view.node_rect(vm).center().toPoint()
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=source)
    qtbot.mouseMove(viewport, source + QPoint(0, 400))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=source + QPoint(0, 400))
    assert not opened and view.items_by_id[vm].pos() == view.items_by_id[vm].home

    bridge = view.graph.nodes["link:vs-tbr"]
    dialog = win.network_page.ask_connect(view.items_by_id[vm].node, bridge)
    for bad in ("0", "4095"):
        dialog.vlan_edit.clear()
        qtbot.keyClicks(dialog.vlan_edit, bad)
        assert "outside 1-4094" in dialog.error.text() and not dialog.ok_button.isEnabled()
    dialog.reject()
    assert not win.runner.jobs


def test_drag_onto_a_bridge_with_a_vlan_records_it(window, qtbot, host):
    from virtstudio.network.nic_vlan import nic_vlans

    win, conn = window
    view = win.network_page.topology
    dom = conn.find_domain_by_name("topo-vm")
    if dom.state.is_active:
        conn.call(lambda c: c.lookupByName("topo-vm").destroy()).result(60)
        qtbot.waitUntil(lambda: not conn.find_domain_by_name("topo-vm").state.is_active,
                        timeout=20000)
    ip("-n", host.netns, "link", "add", "vs-other", "type", "bridge")
    vm = f"vm:{conn.uri}:{dom.uuid}"
    qtbot.waitUntil(lambda: "link:vs-other" in view.items_by_id and vm in view.items_by_id,
                    timeout=20000)
    opened: list = []
    win.confirm_requested.connect(opened.append)
    source = view.node_rect(vm).center().toPoint()
    target = view.node_rect("link:vs-other").center().toPoint()
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=source)
    for step in range(1, 11):
        qtbot.mouseMove(viewport, source + (target - source) * step / 10)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=target)
    dialog = next(d for d in opened if isinstance(d, ConnectDialog))
    assert dialog.target.name == "vs-other" and dialog.vlan_edit.isVisibleTo(dialog)
    qtbot.keyClicks(dialog.vlan_edit, "30")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: conn.find_domain_by_name("topo-vm").summary.nics[0].source
                    == "vs-other", timeout=20000)
    qtbot.waitUntil(lambda: nic_vlans(conn.find_domain_by_name("topo-vm").xml) == {MAC: 30},
                    timeout=20000)
    qtbot.waitUntil(lambda: (vm, "link:vs-other") in edges(view), timeout=20000)
    line = next(e for e in view.edge_items
                if e.a.node.id == vm and e.b.node.id == "link:vs-other")
    assert line.caption.text() == "VLAN 30"  # drawn on the edge


def test_a_hidden_topology_catches_up_when_shown(window, qtbot):
    win, conn = window
    page = win.network_page
    view = page.topology
    qtbot.waitUntil(lambda: f"net:{conn.uri}:lan" in view.items_by_id, timeout=20000)
    page.setCurrentIndex(0)  # another tab: the graph waits rather than laying out unseen
    assert not view.isVisible()
    conn.call(lambda c: c.networkCreateXML(
        "<network><name>later</name><ip address='10.81.0.1' prefix='24'/></network>")
    ).result(60)
    qtbot.waitUntil(lambda: any(n.name == "later" for n in conn.networks.values()),
                    timeout=20000)
    page.setCurrentWidget(view)
    qtbot.waitUntil(lambda: f"net:{conn.uri}:later" in view.items_by_id, timeout=20000)
