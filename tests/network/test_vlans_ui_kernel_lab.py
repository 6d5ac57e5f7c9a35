"""VLAN actions through the interfaces tab, and a VM NIC's VLAN put on its tap, inside the
kernel lab (this host's kernel has neither 802.1Q nor bridge VLAN filtering).

A veth stands in for the VM's tap: libvirtd does not run inside the lab VM, and to the
bridge a tap and a veth are both plain ports.  Run with `make test-kernel-lab`.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from PySide6.QtCore import Qt

from tests.helpers import wait_for
from tests.network.conftest import ip
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner
from virtstudio.network.nic_vlan import NS, apply_running, nic_vlans
from virtstudio.privileged.client import run_privileged

pytestmark = pytest.mark.kernel_lab


def port_vlans(ns: str, port: str) -> dict[int, list[str]]:
    """VLAN id to flags (PVID, Egress Untagged) of ``port``, from iproute2's JSON."""
    done = subprocess.run(["ip", "netns", "exec", ns, "bridge", "-j", "vlan", "show", "dev",
                           port], capture_output=True, text=True, check=True, timeout=20)
    found: dict[int, list[str]] = {}
    for entry in json.loads(done.stdout or "[]"):
        for vlan in entry.get("vlans", []):
            found[vlan["vlan"]] = vlan.get("flags", [])
    return found


def ping(ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2",
                           address], capture_output=True, timeout=20).returncode == 0


@pytest.fixture
def tab(qtbot, host):
    from virtstudio.ui.main_window import MainWindow

    inventory = Inventory(stats_interval=0)
    window = MainWindow(inventory, JobRunner(), host_network=host)
    qtbot.addWidget(window)
    window.show()
    yield window.network_page.interfaces, host, window
    window.runner.shutdown(wait=True)
    inventory.shutdown()


def done(qtbot, window):
    qtbot.waitUntil(lambda: all(j.state.finished for j in window.runner.jobs), timeout=60000)
    failed = [j.log_text() for j in window.runner.jobs if j.state.value != "Done"]
    assert not failed, failed


def names(tab):
    return {tab.model.link_at(r).name for r in range(tab.model.rowCount())}


def test_vlan_aware_bridge_vlan_interface_dummy_and_port_vlans_from_the_tab(tab, qtbot):
    tab, host, window = tab
    click = lambda b: qtbot.mouseClick(b, Qt.MouseButton.LeftButton)  # noqa: E731
    qtbot.keyClicks(tab.bridge_name_edit, "vs-vbr")
    tab.vlan_aware_check.setChecked(True)
    click(tab.new_bridge_button)
    qtbot.keyClicks(tab.veth_name_edit, "vs-trunk")
    qtbot.keyClicks(tab.veth_peer_edit, "vs-trunkp")
    click(tab.new_veth_button)
    qtbot.keyClicks(tab.dummy_name_edit, "vs-dum")
    click(tab.new_dummy_button)
    # Generous timeouts: the kernel lab runs under TCG, several times slower than a host.
    done(qtbot, window)
    qtbot.waitUntil(lambda: {"vs-vbr", "vs-trunk", "vs-dum"} <= names(tab), timeout=10000)
    assert host.find("vs-dum").kind == "dummy"
    assert "vlan_filtering 1" in ip("-n", host.netns, "-d", "link", "show", "vs-vbr").stdout
    assert host.find("vs-vbr").vlan_filtering  # what "Make Permanent…" hands NetworkManager
    row = next(r for r in range(tab.model.rowCount()) if tab.model.link_at(r).name == "vs-vbr")
    assert tab.model.index(row, 1).data() == "bridge (VLAN-aware)"

    qtbot.waitUntil(lambda: tab.vlan_parent_combo.findText("vs-trunk") >= 0, timeout=10000)
    tab.vlan_parent_combo.setCurrentText("vs-trunk")
    qtbot.keyClicks(tab.vlan_id_edit, "10")
    click(tab.new_vlan_button)
    done(qtbot, window)
    vlan = wait_for(lambda: host.find("vs-trunk.10"), timeout=10.0)
    assert vlan.kind == "vlan" and vlan.vlan_id == 10

    assert tab.select("vs-trunkp")
    tab.port_bridge_combo.setCurrentText("vs-vbr")
    click(tab.add_port_button)
    done(qtbot, window)
    qtbot.waitUntil(lambda: host.find("vs-trunkp").master == host.find("vs-vbr").index,
                    timeout=10000)
    qtbot.keyClicks(tab.pvid_edit, "10")
    qtbot.keyClicks(tab.tagged_edit, "20, 30")
    click(tab.set_vlans_button)
    done(qtbot, window)
    wait_for(lambda: port_vlans(host.netns, "vs-trunkp").get(10), timeout=10.0)
    vlans = port_vlans(host.netns, "vs-trunkp")
    assert set(vlans) == {10, 20, 30}, vlans
    assert "PVID" in vlans[10] and "Egress Untagged" in vlans[10]
    assert "PVID" not in vlans[20]


def test_a_vm_nics_recorded_vlan_goes_onto_its_tap(host, netns):
    """The start-time path of nic_vlan, with a veth standing in for the VM's tap."""
    ns = host.netns
    host.create_bridge("vs-vmbr", vlan_filtering=True)
    peers = {}
    for port, address in (("vs-tap0", "10.30.0.1/24"), ("vs-p10", "10.30.0.2/24"),
                          ("vs-p20", "10.30.0.3/24")):
        side = netns(port)
        host.create_veth(port, f"{port}x")
        wait_for(lambda p=port: host.find(p) is not None, timeout=10.0)
        host.add_port("vs-vmbr", port)
        ip("-n", ns, "link", "set", f"{port}x", "netns", side)
        ip("-n", side, "addr", "add", address, "dev", f"{port}x")
        ip("-n", side, "link", "set", f"{port}x", "up")
        peers[port] = side
    host.set_port_vlans("vs-p10", pvid=10)
    host.set_port_vlans("vs-p20", pvid=20)
    mac = "52:54:00:00:dd:01"
    # As libvirt returns it after setMetadata(..., KEY, NS).
    domain_xml = (f"<domain type='kvm'><name>lab-vm</name><metadata>"
                  f"<v:nics xmlns:v='{NS}'><v:nic mac='{mac}' vlan='10'/></v:nics>"
                  "</metadata><devices><interface type='bridge'>"
                  f"<source bridge='vs-vmbr'/><mac address='{mac}'/><target dev='vs-tap0'/>"
                  "</interface></devices></domain>")
    assert nic_vlans(domain_xml) == {mac: 10}
    runner = JobRunner()
    try:
        job = runner.submit("apply", lambda j: apply_running(
            j, domain_xml, lambda port, vid: run_privileged("set_port_vlan", port=port,
                                                            pvid=vid, netns=ns)))
        wait_for(lambda: job.state.finished, timeout=60)
        assert job.state.value == "Done", job.log_text()
    finally:
        runner.shutdown(wait=True)
    vlans = port_vlans(ns, "vs-tap0")
    assert set(vlans) == {10} and "PVID" in vlans[10], vlans
    assert ping(peers["vs-tap0"], "10.30.0.2"), "the VM's VLAN 10 reaches VLAN 10"
    assert not ping(peers["vs-tap0"], "10.30.0.3"), "and not VLAN 20"
