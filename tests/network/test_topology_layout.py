"""The topology's layered layout: a network's machines sit together beside it, lines
between neighbouring columns cross as little as the graph allows, and nodes never overlap."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import wait_for
from virtstudio.core.demo import DEMO_NAME, demo_uri
from virtstudio.core.inventory import Inventory
from virtstudio.network.topology import Edge, Graph, Node, build_graph, layout


def crossings(graph: Graph, places: dict[str, tuple[int, float]]) -> int:
    """Pairs of straight lines between the same two columns that cross."""
    spans = []
    for edge in graph.edges:
        (ca, ra), (cb, rb) = places[edge.a], places[edge.b]
        if ca != cb:
            spans.append(((ca, ra), (cb, rb)) if ca < cb else ((cb, rb), (ca, ra)))
    count = 0
    for ((a1, ya1), (b1, yb1)), ((a2, ya2), (b2, yb2)) in itertools.combinations(spans, 2):
        if (a1, b1) == (a2, b2) and (ya1 - ya2) * (yb1 - yb2) < 0:
            count += 1
    return count


def alphabetical(graph: Graph) -> dict[str, tuple[int, float]]:
    """The old drawing: each column stacked from the top in name order."""
    used = sorted({n.column for n in graph.nodes.values()})
    rows: dict[int, int] = {}
    places = {}
    for node in sorted(graph.nodes.values(), key=lambda n: (n.column, n.label.casefold())):
        places[node.id] = (used.index(node.column), float(rows.get(node.column, 0)))
        rows[node.column] = rows.get(node.column, 0) + 1
    return places


def assert_no_overlap(graph: Graph, places: dict[str, tuple[int, float]]) -> None:
    by_column: dict[int, list[float]] = {}
    for column, row in places.values():
        by_column.setdefault(column, []).append(row)
    for rows in by_column.values():
        rows.sort()
        assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(rows))
    assert min(row for _, row in places.values()) == 0


def test_machines_of_one_network_sit_together_without_crossings():
    graph = Graph()
    nets = ["lan", "dmz", "lab"]
    for net in nets:
        graph.add(Node(f"net:{net}", "network", net))
    # Names interleave the networks, so name order alone would tangle every line.
    for i in range(12):
        vm = graph.add(Node(f"vm:{i}", "vm", f"vm-{i:02d}"))
        graph.link(vm, f"net:{nets[i % 3]}")
    graph.add(Node("link:eth0", "nic", "eth0"))  # nothing connects to it; it still shows
    places = layout(graph)

    assert crossings(graph, alphabetical(graph)) > 10
    assert crossings(graph, places) == 0
    assert_no_overlap(graph, places)
    assert set(places) == set(graph.nodes)
    order = sorted((n for n in graph.nodes if n.startswith("vm:")), key=lambda n: places[n][1])
    blocks = [nets[int(n.split(":")[1]) % 3] for n in order]
    assert [net for net, _ in itertools.groupby(blocks)] == sorted(set(blocks), key=blocks.index)
    for net in nets:  # each network is drawn level with the middle of its machines
        rows = [places[e.a][1] for e in graph.edges if e.b == f"net:{net}"]
        assert min(rows) <= places[f"net:{net}"][1] <= max(rows)
    assert places["vm:0"][0] == 0 and places["net:lan"][0] == 1 and places["link:eth0"][0] == 2


def test_a_machine_on_two_networks_sits_between_them():
    graph = Graph(nodes={}, edges=[])
    for net in ("a", "b"):
        graph.add(Node(f"net:{net}", "network", net))
    for i in range(4):
        graph.add(Node(f"vm:a{i}", "vm", f"a{i}"))
        graph.add(Node(f"vm:b{i}", "vm", f"b{i}"))
        graph.edges += [Edge(f"vm:a{i}", "net:a"), Edge(f"vm:b{i}", "net:b")]
    graph.add(Node("vm:both", "vm", "zz-both"))
    graph.edges += [Edge("vm:both", "net:a"), Edge("vm:both", "net:b")]
    places = layout(graph)
    assert_no_overlap(graph, places)
    a_rows = [places[f"vm:a{i}"][1] for i in range(4)]
    b_rows = [places[f"vm:b{i}"][1] for i in range(4)]
    both = places["vm:both"][1]
    assert max(a_rows) < both < min(b_rows) or max(b_rows) < both < min(a_rows)


@pytest.fixture
def two_hosts():
    inventory = Inventory(stats_interval=0)
    demo = inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    other = inventory.add("test:///default")
    wait_for(lambda: len(demo.domains) >= 20 and demo.networks and other.networks, timeout=10)
    yield demo, other
    inventory.shutdown(wait=True)


def test_the_demo_host_is_drawn_untangled_and_says_whose_each_node_is(two_hosts):
    demo, other = two_hosts
    graph = build_graph([], [demo])
    places = layout(graph)
    assert_no_overlap(graph, places)
    before, after = crossings(graph, alphabetical(graph)), crossings(graph, places)
    assert after < before / 2, (before, after)
    default = graph.nodes[f"net:{demo.uri}:default"]
    assert default.label.splitlines()[1] == "NAT"  # libvirt's "nat", in the words users know

    both = build_graph([], [demo, other])
    assert f"· {DEMO_NAME}" in both.nodes[f"net:{demo.uri}:default"].label
    assert f"· {other.name}" in both.nodes[f"net:{other.uri}:default"].label
    vm = next(n for n in both.nodes.values() if n.kind == "vm" and n.host_uri == other.uri)
    assert vm.label.splitlines()[-1] == other.name
