"""VLANs need 802.1Q and bridge VLAN filtering, which only the kernel lab's kernel has.

Run inside it with `make test-kernel-lab` (part of `make test`).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import wait_for
from tests.network.conftest import ip
from virtstudio.core.errors import VirtStudioError

pytestmark = pytest.mark.kernel_lab


def ping(ns: str, address: str) -> bool:
    done = subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2",
                           address], capture_output=True, timeout=20)
    return done.returncode == 0


def test_vlan_interface_on_a_port(host):
    host.create_veth("vtrunk", "vtrunkp")
    wait_for(lambda: host.find("vtrunk") is not None, timeout=30)
    name = host.create_vlan("vtrunk", 10)
    link = wait_for(lambda: host.find(name), timeout=30)
    assert link.kind == "vlan" and link.vlan_id == 10 and name == "vtrunk.10"
    assert link.parent == host.find("vtrunk").index
    with pytest.raises(VirtStudioError, match="outside 1-4094"):
        host.create_vlan("vtrunk", 4095)


def test_vlan_aware_bridge_separates_vlans(host, netns):
    host.create_bridge("vsvbr", vlan_filtering=True)
    assert wait_for(lambda: host.find("vsvbr"), timeout=30).vlan_filtering
    peers = {}
    for port, vid, address in (("pa", 10, "10.10.0.1/24"), ("pb", 10, "10.10.0.2/24"),
                               ("pc", 20, "10.10.0.3/24")):
        ns = netns(port)
        host.create_veth(port, f"{port}x")
        wait_for(lambda p=port: host.find(p) is not None, timeout=30)
        host.add_port("vsvbr", port)
        host.set_port_vlans(port, pvid=vid)
        ip("-n", host.netns, "link", "set", f"{port}x", "netns", ns)
        ip("-n", ns, "addr", "add", address, "dev", f"{port}x")
        ip("-n", ns, "link", "set", f"{port}x", "up")
        peers[port] = ns
    assert ping(peers["pa"], "10.10.0.2"), "VLAN 10 to VLAN 10 must pass"
    assert not ping(peers["pa"], "10.10.0.3"), "VLAN 10 must not reach VLAN 20"
    assert not ping(peers["pc"], "10.10.0.2")
