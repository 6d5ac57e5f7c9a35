"""The network topology as a graph: this computer's interfaces, libvirt networks, machines
and sandboxes, with what connects to what.  Plain data, rebuilt from the live stores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.network.host_links import Link
from virtstudio.network.nic_vlan import nic_vlans

# Left to right: what uses the network, libvirt's networks, bridges, the rest, the wire.
COLUMNS = ("vm", "sandbox", "network", "bridge", "vlan", "virtual", "nic")


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # one of COLUMNS
    label: str
    host_uri: str = ""  # for machines and networks
    name: str = ""  # the libvirt name, or the interface name
    uuid: str = ""

    @property
    def column(self) -> int:
        return COLUMNS.index(self.kind)


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    label: str = ""


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, a: str, b: str, label: str = "") -> None:
        self.edges.append(Edge(a, b, label))


def _link_kind(link: Link) -> str:
    if link.kind == "bridge":
        return "bridge"
    if link.kind == "vlan":
        return "vlan"
    if link.kind in ("ether", "") and link.mac:
        return "nic"
    return "virtual"  # veth, dummy, tun/tap, vxlan, ...


def link_id(name: str) -> str:
    return f"link:{name}"


def build_graph(links: Iterable[Link], hosts: Iterable[HostConnection],
                sandboxes: Iterable[object] = ()) -> Graph:
    graph = Graph()
    links = [link for link in links if link.kind != "loopback"]
    by_index = {link.index: link for link in links}
    names = {link.name for link in links}
    hosts = list(hosts)
    taps = {nic.target_dev for h in hosts for d in list(h.domains.values())
            for nic in d.summary.nics if nic.target_dev and d.state.is_active}
    for link in links:
        if link.name in taps:
            continue  # a machine's tap is drawn as the machine's own edge
        kind = _link_kind(link)
        label = f"{link.name}\nVLAN {link.vlan_id}" if kind == "vlan" else link.name
        graph.add(Node(link_id(link.name), kind, label, name=link.name))
    for link in links:
        if link.name in taps:
            continue
        master = by_index.get(link.master)
        if master is not None:
            graph.link(link_id(link.name), link_id(master.name), "port")
        parent = by_index.get(link.parent)
        if link.kind == "vlan" and parent is not None:
            graph.link(link_id(link.name), link_id(parent.name), f"VLAN {link.vlan_id}")

    def bridge_node(name: str) -> str:
        if name not in names:
            graph.add(Node(link_id(name), "bridge", f"{name}\n(not here)", name=name))
        return link_id(name)

    for host in hosts:
        local = not uri_mod.parse(host.uri).is_remote
        net_ids = {}
        for net in list(host.networks.values()):
            node = Node(f"net:{host.uri}:{net.name}", "network",
                        f"{net.name}\n{net.forward_mode}{'' if net.active else ' (off)'}",
                        host.uri, net.name, net.uuid)
            net_ids[net.name] = graph.add(node)
            if local and net.bridge and (net.bridge in names or net.forward_mode == "bridge"):
                graph.link(node.id, bridge_node(net.bridge), "bridge")
        for dom in list(host.domains.values()):
            state = "" if dom.state.is_active else " (off)"
            vm = graph.add(Node(f"vm:{host.uri}:{dom.uuid}", "vm", f"{dom.name}{state}",
                                host.uri, dom.name, dom.uuid))
            vlans = nic_vlans(dom.xml)
            for nic in dom.summary.nics:
                if nic.kind == "network" and nic.source in net_ids:
                    graph.link(vm, net_ids[nic.source], nic.target_dev)
                elif nic.kind == "bridge" and nic.source and local:
                    vid = vlans.get(nic.mac.lower())
                    label = " ".join(x for x in (nic.target_dev, vid and f"VLAN {vid}") if x)
                    graph.link(vm, bridge_node(nic.source), label)
    for sandbox in sandboxes:
        profile = getattr(sandbox, "profile", None)
        if not getattr(sandbox, "running", False) or profile is None:
            continue
        node = graph.add(Node(f"sandbox:{sandbox.id}", "sandbox", sandbox.title,
                              name=profile.name))
        if profile.network == "bridge" and profile.bridge:
            graph.link(node, bridge_node(profile.bridge), getattr(sandbox, "host_ifname", ""))
    return graph


def connect_problem(vm: Node, target: Node) -> str:
    """Why ``vm`` cannot be connected to ``target``, or ""."""
    if vm.kind != "vm":
        return "Only machines can be connected by dragging."
    if target.kind == "network":
        if target.host_uri != vm.host_uri:
            return f"{target.name} is a network of another host than {vm.name}'s."
        return ""
    if target.kind == "bridge":
        if uri_mod.parse(vm.host_uri).is_remote:
            return f"{target.name} is a bridge of this computer; {vm.name} runs elsewhere."
        return ""
    return "Drop a machine on a bridge or a virtual network."
