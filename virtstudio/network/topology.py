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
COLUMN_TITLES = {"vm": "Machines", "sandbox": "Sandboxes", "network": "Virtual networks",
                 "bridge": "Bridges", "vlan": "VLANs", "virtual": "Other interfaces",
                 "nic": "Network cards"}
_MODE_WORDS = {"nat": "NAT", "route": "routed"}


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

    several_hosts = len(hosts) > 1
    for host in hosts:
        local = not uri_mod.parse(host.uri).is_remote
        # With several hosts open, say whose network or machine a node is.
        on_host = f" · {host.name}" if several_hosts else ""
        net_ids = {}
        for net in list(host.networks.values()):
            mode = _MODE_WORDS.get(net.forward_mode, net.forward_mode)
            node = Node(f"net:{host.uri}:{net.name}", "network",
                        f"{net.name}\n{mode}{'' if net.active else ' (off)'}{on_host}",
                        host.uri, net.name, net.uuid)
            net_ids[net.name] = graph.add(node)
            if local and net.bridge and (net.bridge in names or net.forward_mode == "bridge"):
                graph.link(node.id, bridge_node(net.bridge), "bridge")
        for dom in list(host.domains.values()):
            state = "" if dom.state.is_active else " (off)"
            vm = graph.add(Node(f"vm:{host.uri}:{dom.uuid}", "vm",
                                f"{dom.name}{state}{on_host and chr(10) + host.name}",
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


def layout(graph: Graph, sweeps: int = 8) -> dict[str, tuple[int, float]]:
    """Where each node goes: (column slot, row), rows in units of one node's height.

    A layered drawing in the manner of Sugiyama: only columns that hold nodes take
    a slot; each connected part of the graph is drawn on its own band, the largest
    first; within it nodes are ordered by the mean row of what they connect to
    (sweeping left and right a few times), so a network's machines sit together
    and lines cross little, and a short column is centred on its neighbours.  A
    node that connects to nothing takes the first free row of its column.
    """
    used = sorted({node.column for node in graph.nodes.values()})
    slot = {column: i for i, column in enumerate(used)}
    neighbours: dict[str, list[str]] = {node_id: [] for node_id in graph.nodes}
    for edge in graph.edges:
        if edge.a in neighbours and edge.b in neighbours and edge.a != edge.b:
            neighbours[edge.a].append(edge.b)
            neighbours[edge.b].append(edge.a)
    by_name = sorted(graph.nodes.values(), key=lambda n: (n.column, n.label.casefold()))
    parts = _connected_parts([n.id for n in by_name], neighbours)
    row: dict[str, float] = {}
    top = 0.0
    for part in sorted((p for p in parts if len(p) > 1), key=len, reverse=True):
        rows = _layered_rows(part, graph, neighbours, sweeps)
        for node_id, y in rows.items():
            row[node_id] = top + y
        top += max(rows.values()) + 2  # a blank row between parts
    taken: dict[int, list[float]] = {}
    for node_id in row:
        taken.setdefault(graph.nodes[node_id].column, []).append(row[node_id])
    alone: dict[int, list[str]] = {}
    for part in parts:
        if len(part) == 1:
            alone.setdefault(graph.nodes[part[0]].column, []).append(part[0])
    for column, ids in alone.items():
        _fill_free_rows(ids, sorted(taken.get(column, [])), row)
    return {node_id: (slot[graph.nodes[node_id].column], row[node_id]) for node_id in graph.nodes}


def _fill_free_rows(ids: list[str], taken: list[float], row: dict[str, float]) -> None:
    """Give each node the next whole row at least one row away from every taken one."""
    y, i = 0.0, 0
    for node_id in ids:
        while True:
            while i < len(taken) and taken[i] <= y - 1:
                i += 1
            if i < len(taken) and taken[i] < y + 1:
                y += 1  # too close to a taken row: try the next one
                continue
            break
        row[node_id] = y
        y += 1


def _connected_parts(ids: list[str], neighbours: dict[str, list[str]]) -> list[list[str]]:
    seen: set[str] = set()
    position = {node_id: i for i, node_id in enumerate(ids)}
    parts = []
    for start in ids:
        if start in seen:
            continue
        part, todo = [], [start]
        seen.add(start)
        while todo:
            node_id = todo.pop()
            part.append(node_id)
            for other in neighbours[node_id]:
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        parts.append(sorted(part, key=position.__getitem__))
    return parts


def _layered_rows(part: list[str], graph: Graph, neighbours: dict[str, list[str]],
                  sweeps: int) -> dict[str, float]:
    """Rows for one connected part, its top row at 0."""
    columns: dict[int, list[str]] = {}
    for node_id in part:  # ``part`` is in name order
        columns.setdefault(graph.nodes[node_id].column, []).append(node_id)
    row = {node_id: float(i) for ids in columns.values() for i, node_id in enumerate(ids)}

    def wanted(node_id: str) -> float:
        around = neighbours[node_id]
        return sum(row[n] for n in around) / len(around)

    order = sorted(columns)
    for sweep in range(sweeps):
        for column in order if sweep % 2 == 0 else reversed(order):
            ids = columns[column]
            want = {node_id: wanted(node_id) for node_id in ids}
            ids.sort(key=lambda n: (want[n], row[n]))
            _place(ids, want, row)
    top = min(row.values())
    return {node_id: y - top for node_id, y in row.items()}


def _place(ids: list[str], want: dict[str, float], row: dict[str, float]) -> None:
    """Rows as close to the wanted ones as the order and one row's spacing allow."""
    placed: list[float] = []
    for node_id in ids:
        placed.append(max(want[node_id], placed[-1] + 1) if placed else want[node_id])
    # Pushing down only would let a crowded column drift; centre the block on its wish.
    shift = sum(want[n] for n in ids) / len(ids) - sum(placed) / len(ids)
    for node_id, y in zip(ids, placed, strict=True):
        row[node_id] = y + shift


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
