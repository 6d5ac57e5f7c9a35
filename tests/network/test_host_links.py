"""Host interfaces in network namespaces the tests make: live model, changes, refusals."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.helpers import Recorder, wait_for
from tests.network.conftest import ip
from virtstudio.core.errors import VirtStudioError


def test_model_follows_changes_made_outside_within_a_second(host):
    assert host.find("lo") is not None and host.find("lo").kind == "loopback"
    rec = Recorder(host.links_added, host.links_changed, host.links_removed)
    start = time.monotonic()
    ip("-n", host.netns, "link", "add", "br-out", "type", "bridge")
    wait_for(lambda: host.find("br-out") is not None, timeout=30)
    assert host.find("br-out").kind == "bridge"
    ip("-n", host.netns, "addr", "add", "10.66.0.1/24", "dev", "br-out")
    wait_for(lambda: "10.66.0.1/24" in host.find("br-out").addresses, timeout=30)
    ip("-n", host.netns, "link", "del", "br-out")
    wait_for(lambda: host.find("br-out") is None, timeout=30)
    assert time.monotonic() - start < 3.0
    assert rec.of("links added") and rec.of("links removed")


def test_bridge_with_two_veth_ports_passes_a_ping(host, netns):
    left, right = netns("left"), netns("right")
    host.create_bridge("vsbr0")
    assert not wait_for(lambda: host.find("vsbr0"), timeout=30).vlan_filtering
    for name, peer_ns, address in (("vl0", left, "10.88.0.2/24"),
                                   ("vr0", right, "10.88.0.3/24")):
        host.create_veth(name, f"{name}p")
        wait_for(lambda n=name: host.find(n) is not None, timeout=30)
        host.add_port("vsbr0", name)
        ip("-n", host.netns, "link", "set", f"{name}p", "netns", peer_ns)
        ip("-n", peer_ns, "addr", "add", address, "dev", f"{name}p")
        ip("-n", peer_ns, "link", "set", f"{name}p", "up")
    bridge = wait_for(lambda: host.find("vsbr0"), timeout=30)
    wait_for(lambda: host.find("vl0").master == bridge.index
             and host.find("vr0").master == bridge.index, timeout=30)
    # The first packets may meet ports that are still coming up: retry a little.
    for _attempt in range(10):
        ping = subprocess.run(["ip", "netns", "exec", left, "busybox", "ping", "-c", "1", "-W",
                               "2", "10.88.0.3"], capture_output=True, text=True, timeout=20)
        if ping.returncode == 0:
            break
    assert ping.returncode == 0, ping.stdout + ping.stderr
    host.remove_port("vl0")
    wait_for(lambda: host.find("vl0").master == 0, timeout=30)


@pytest.mark.parametrize(("name", "fragment"), [
    ("a-name-much-too-long", "not a usable interface name"),
    ("bad/name", "not a usable interface name"),
    ("", "not a usable interface name"),
])
def test_bad_names_change_nothing(host, name, fragment):
    before = set(host.links)
    with pytest.raises(VirtStudioError, match=fragment):
        host.create_bridge(name)
    assert set(host.links) == before


def test_duplicate_and_vlan_refusals(host):
    host.create_bridge("vsdup")
    wait_for(lambda: host.find("vsdup") is not None, timeout=30)
    with pytest.raises(VirtStudioError, match="exists already"):
        host.create_bridge("vsdup")
    for vid in (0, 4095, -3):
        with pytest.raises(VirtStudioError, match="outside 1-4094"):
            host.create_vlan("vsdup", vid)


def test_bridge_in_use_or_on_the_default_route_is_not_deleted(host):
    host.create_bridge("vsused")
    host.create_veth("vsup", "vsupp")
    wait_for(lambda: host.find("vsup") is not None, timeout=30)
    with pytest.raises(VirtStudioError, match="in use by web-01"):
        host.delete("vsused", in_use_by=["web-01"])
    host.add_address("vsup", "10.99.0.2/24")
    host.set_up("vsup")
    ip("-n", host.netns, "link", "set", "vsupp", "up")
    ip("-n", host.netns, "route", "add", "default", "via", "10.99.0.1", "dev", "vsup",
       "onlink")
    with pytest.raises(VirtStudioError, match="default route"):
        host.delete("vsup")
    assert host.find("vsup") is not None and host.find("vsused") is not None
    host.delete("vsup", confirmed=True)
    wait_for(lambda: host.find("vsup") is None, timeout=30)
    with pytest.raises(VirtStudioError, match="not an address"):
        host.add_address("vsused", "10.1.1.1/99")


def test_networks_page_lists_interfaces_live_and_creates_a_bridge(make_main_window, qtbot,
                                                                  host, tmp_path):
    from PySide6.QtCore import Qt

    from virtstudio.core.fixtures import write_fixture
    from virtstudio.core.inventory import Inventory
    from virtstudio.core.jobs import JobRunner
    from virtstudio.ui.main_window import MainWindow

    inventory = Inventory(stats_interval=0)
    window = MainWindow(inventory, JobRunner(), host_network=host)
    qtbot.addWidget(window)
    window.show()
    inventory.add(f"test://{write_fixture(tmp_path / 'h.xml', 3)}")
    qtbot.waitUntil(lambda: window.host_model.rowCount() == 1, timeout=20000)
    networks = window.host_model.index(2, 0, window.host_model.index(0, 0))
    window.host_view.setCurrentIndex(networks)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.network_page, timeout=20000)
    model = window.link_model

    def names():
        return {model.link_at(r).name for r in range(model.rowCount())}

    assert "lo" in names()
    interfaces = window.network_page.interfaces
    qtbot.keyClicks(interfaces.bridge_name_edit, "br-ui")
    qtbot.mouseClick(interfaces.new_bridge_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "br-ui" in names(), timeout=20000)
    ip("-n", host.netns, "link", "add", "br-cli", "type", "bridge")
    qtbot.waitUntil(lambda: "br-cli" in names(), timeout=20000)
    ip("-n", host.netns, "link", "del", "br-cli")
    qtbot.waitUntil(lambda: "br-cli" not in names(), timeout=20000)
    window.runner.shutdown(wait=True)
    inventory.shutdown()
