"""Qt models over real test-driver hosts: consistent, fine-grained, never reset on events."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from virtstudio.core.connection import ConnectionState
from virtstudio.core.entities import DomainState
from virtstudio.core.fixtures import write_fixture
from virtstudio.core.inventory import Inventory
from virtstudio.ui.host_model import HostRole, HostTreeModel
from virtstudio.ui.network_model import NetworkListModel
from virtstudio.ui.pool_model import PoolListModel
from virtstudio.ui.vm_model import VmColumn, VmFilterProxy, VmListModel, VmRole

FAIL = QAbstractItemModelTester.FailureReportingMode.Fatal


class ResetWatch:
    def __init__(self, model):
        self.resets = 0
        model.modelAboutToBeReset.connect(self._count)

    def _count(self):
        self.resets += 1


@pytest.fixture
def inventory():
    inv = Inventory(stats_interval=0.2)
    yield inv
    inv.shutdown()


@pytest.fixture
def fixture_uri(tmp_path):
    return f"test://{write_fixture(tmp_path / 'h.xml', 600)}"


def test_vm_model_population_events_and_removal(qtbot, inventory, fixture_uri, tmp_path):
    model = VmListModel(inventory)
    QAbstractItemModelTester(model, FAIL)
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(VmColumn.NAME)
    QAbstractItemModelTester(proxy, FAIL)
    watch = ResetWatch(model)
    inserts = []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append(last - first + 1))

    host = inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: model.rowCount() == 600, timeout=20000)
    assert sum(inserts) == 600 and len(inserts) < 20  # batches, not one row at a time
    other = inventory.add(f"test://{write_fixture(tmp_path / 'o.xml', 5)}")
    qtbot.waitUntil(lambda: model.rowCount() == 605, timeout=20000)

    # An event: pause one machine; only that row changes.
    dom = next(d for d in host.domains.values() if d.state is DomainState.RUNNING)
    changed = []
    model.dataChanged.connect(lambda tl, br, *_: changed.append((tl.row(), br.row())))
    host.call(lambda c: c.lookupByUUIDString(dom.uuid).suspend()).result(60)
    row = model.row_of(host.uri, dom.uuid)
    # The row's data may read the new state before its dataChanged is delivered: wait for both.
    qtbot.waitUntil(lambda: (row, row) in changed, timeout=20000)
    assert model.index(row, VmColumn.STATE).data() == "Paused"

    # Statistics arrive as one span over the statistics columns.
    qtbot.waitUntil(lambda: any(br - tl > 10 for tl, br in changed), timeout=20000)

    # Removing a host removes its rows, leaves the others.
    inventory.remove(host)
    qtbot.waitUntil(lambda: model.rowCount() == 5, timeout=20000)
    assert {model.host_at(r) for r in range(5)} == {other}
    assert watch.resets == 0


def test_vm_filter_and_sort(qtbot, inventory, fixture_uri):
    model = VmListModel(inventory)
    proxy = VmFilterProxy()
    proxy.setSourceModel(model)
    host = inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: model.rowCount() == 600, timeout=20000)
    proxy.sort(VmColumn.MEMORY, Qt.SortOrder.DescendingOrder)
    mems = [proxy.index(r, 0).data(VmRole.DOMAIN).summary.current_memory_kib
            for r in range(proxy.rowCount())]
    assert mems == sorted(mems, reverse=True)
    proxy.set_text("db paused")
    names = [proxy.index(r, 0).data(VmRole.DOMAIN) for r in range(proxy.rowCount())]
    assert names and all("db" in d.name and d.state is DomainState.PAUSED for d in names)
    proxy.set_text("")
    proxy.set_host("test:///elsewhere")
    assert proxy.rowCount() == 0
    proxy.set_host(host.uri)
    assert proxy.rowCount() == 600


def test_host_tree(qtbot, inventory, fixture_uri, tmp_path):
    model = HostTreeModel(inventory)
    QAbstractItemModelTester(model, FAIL)
    watch = ResetWatch(model)
    host = inventory.add(fixture_uri, name="Lab")
    bad = inventory.add(f"test://{tmp_path}/missing.xml")
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=20000)
    qtbot.waitUntil(lambda: bad.state is ConnectionState.FAILED, timeout=20000)
    top = model.index(0, 0)
    assert top.data() == "Lab"
    assert top.data(HostRole.HOST) is host
    sections = [model.index(r, 0, top) for r in range(model.rowCount(top))]
    qtbot.waitUntil(lambda: sections[0].data() == "Virtual machines (600)", timeout=20000)
    assert [s.data(HostRole.SECTION) for s in sections] == ["vms", "storage", "networks"]
    qtbot.waitUntil(lambda: sections[1].data() == "Storage (3)"
                    and sections[2].data() == "Networks (3)", timeout=20000)
    failed = model.index(1, 0)
    assert failed.data().endswith("— Failed")
    assert "does not exist" in failed.data(Qt.ItemDataRole.ToolTipRole)
    inventory.remove(bad)
    assert model.rowCount() == 1 and watch.resets == 0


def test_pool_and_network_tables(qtbot, inventory, fixture_uri):
    host = inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED and bool(host.networks),
                    timeout=20000)
    pools = PoolListModel()
    nets = NetworkListModel()
    QAbstractItemModelTester(pools, FAIL)
    QAbstractItemModelTester(nets, FAIL)
    pools.set_host(host)
    nets.set_host(host)
    assert pools.rowCount() == 3 and nets.rowCount() == 3
    assert pools.index(0, 1).data() == "dir"
    assert nets.index(0, 2).data() == "NAT"
    net = nets.network_at(0)
    watch = ResetWatch(nets)
    host.call(lambda c: c.networkLookupByName(net.name).destroy()).result(60)
    qtbot.waitUntil(lambda: nets.index(0, 1).data() == "Inactive", timeout=20000)
    assert watch.resets == 0
