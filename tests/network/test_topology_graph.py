"""The topology graph from links, hosts and sandboxes: what connects to what."""

from __future__ import annotations

from pathlib import Path

from virtstudio.network.host_links import Link
from virtstudio.network.topology import Node, build_graph, connect_problem
from virtstudio.sandbox.manager import Sandbox
from virtstudio.sandbox.profile import SandboxProfile


def test_ports_vlans_and_sandboxes_become_edges():
    links = [Link(1, "lo", "loopback", "unknown"),
             Link(2, "eth0", "ether", "up", mac="02:00:00:00:00:01"),
             Link(3, "br0", "bridge", "up", mac="02:00:00:00:00:02"),
             Link(4, "eth0.10", "vlan", "up", mac="02:00:00:00:00:01", master=3, vlan_id=10,
                  parent=2),
             Link(5, "vs-dum", "dummy", "down", mac="02:00:00:00:00:05")]
    browser = SandboxProfile("browser", network="bridge", bridge="br-sb")
    sandboxes = [Sandbox(1, browser, ["/usr/bin/firefox"], Path("log"), state="running",
                         host_ifname="vsb1"),
                 Sandbox(2, browser, ["/usr/bin/old"], Path("log"), state="exited")]
    graph = build_graph(links, [], sandboxes)
    kinds = {node_id: node.kind for node_id, node in graph.nodes.items()}
    assert kinds == {"link:eth0": "nic", "link:br0": "bridge", "link:eth0.10": "vlan",
                     "link:vs-dum": "virtual", "sandbox:1": "sandbox",
                     "link:br-sb": "bridge"}  # lo is left out, the exited sandbox too
    edges = {(e.a, e.b, e.label) for e in graph.edges}
    assert ("link:eth0.10", "link:br0", "port") in edges
    assert ("link:eth0.10", "link:eth0", "VLAN 10") in edges
    assert ("sandbox:1", "link:br-sb", "vsb1") in edges
    assert "VLAN 10" in graph.nodes["link:eth0.10"].label
    assert "(not here)" in graph.nodes["link:br-sb"].label


def test_what_a_machine_may_be_dropped_on():
    vm = Node("vm:qemu:///system:u1", "vm", "web", "qemu:///system", "web", "u1")
    remote = Node("vm:r:u2", "vm", "db", "qemu+ssh://root@kvm1/system", "db", "u2")
    net = Node("net:qemu:///system:lan", "network", "lan", "qemu:///system", "lan")
    bridge = Node("link:br0", "bridge", "br0", name="br0")
    assert connect_problem(vm, net) == "" and connect_problem(vm, bridge) == ""
    assert "another host" in connect_problem(remote, net)
    assert "runs elsewhere" in connect_problem(remote, bridge)
    assert "bridge or a virtual network" in connect_problem(vm, vm)
