"""Folders in the sidebar: a tree under each host's Virtual machines, kept in step with
the machines' metadata row by row, and a click narrows the machine list to a folder."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester

from virtstudio.core.connection import ConnectionState
from virtstudio.core.demo import DEMO_NAME, demo_uri
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines import groups as g
from virtstudio.ui.host_model import HostRole, HostTreeModel

FAIL = QAbstractItemModelTester.FailureReportingMode.Fatal


def children(model, parent: QModelIndex) -> list[str]:
    return [model.index(r, 0, parent).data() for r in range(model.rowCount(parent))]


def child(model, parent: QModelIndex, name: str) -> QModelIndex:
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        if index.data().split(" (")[0] == name:
            return index
    raise AssertionError(f"no {name} under {parent.data()}: {children(model, parent)}")


@pytest.fixture
def demo():
    inventory = Inventory(stats_interval=0)
    runner = JobRunner()
    host = inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    yield inventory, runner, host
    runner.shutdown(wait=True)
    inventory.shutdown(wait=True)


def refile(qtbot, runner, host, name: str, folder: str) -> None:
    dom = host.find_domain_by_name(name)
    job = g.save_groups(runner, host, dom, g.Groups(folder, g.groups_of(dom).tags))
    qtbot.waitUntil(lambda: job.state.finished, timeout=10000)
    assert job.state is JobState.DONE, job.log_text()


def test_the_tree_follows_the_metadata_without_a_reset(qtbot, demo):
    inventory, runner, host = demo
    model = HostTreeModel(inventory)
    QAbstractItemModelTester(model, FAIL)
    resets, inserted, removed = [], [], []
    model.modelAboutToBeReset.connect(lambda: resets.append(1))
    model.rowsInserted.connect(lambda parent, first, last: inserted.append(parent.data()))
    model.rowsRemoved.connect(lambda parent, first, last: removed.append(parent.data()))
    vms = model.index(0, 0, model.index(0, 0))
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED
                    and model.rowCount(vms) == 6, timeout=20000)
    assert children(model, vms) == ["archive (2)", "ci (3)", "desktops (4)", "lab (2)",
                                    "prod (10)", "templates (3)"]
    prod = child(model, vms, "prod")
    assert children(model, prod) == ["db (3)", "infra (4)", "web (3)"]
    assert children(model, child(model, vms, "lab")) == ["k8s (2)"]
    web = child(model, prod, "web")
    assert web.data(HostRole.FOLDER) == "prod/web" and web.data(HostRole.SECTION) == "folder"
    assert web.data(HostRole.HOST) is host and web.parent() == prod

    refile(qtbot, runner, host, "db-replica", "prod/analytics")
    qtbot.waitUntil(lambda: children(model, child(model, vms, "prod"))
                    == ["analytics (1)", "db (2)", "infra (4)", "web (3)"], timeout=20000)
    assert child(model, vms, "prod").data() == "prod (10)"
    # Both archived machines leave the folder: only its row goes.
    for name in ("legacy-erp", "old-crm"):
        refile(qtbot, runner, host, name, "")
    qtbot.waitUntil(lambda: "archive (2)" not in children(model, vms)
                    and not any(c.startswith("archive") for c in children(model, vms)),
                    timeout=20000)
    refile(qtbot, runner, host, "laptop-dev", "desktops/dev/old")
    qtbot.waitUntil(lambda: children(model, child(model, child(model, vms, "desktops"), "dev"))
                    == ["old (1)"], timeout=20000)
    assert not resets
    assert any(p and p.startswith("prod (") for p in inserted)
    assert any(p and p.startswith("Virtual machines") for p in removed)

    inventory.remove(host)
    assert model.rowCount() == 0 and not resets


def test_clicking_a_folder_narrows_the_machine_list(qtbot, make_main_window):
    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    host = inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    tree, model = window.host_view, window.host_model
    vms = model.index(0, 0, model.index(0, 0))
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED
                    and model.rowCount(vms) == 6 and window.vm_proxy.rowCount() == 27,
                    timeout=20000)

    def click(index: QModelIndex) -> None:
        tree.scrollTo(index)
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton,
                         pos=tree.visualRect(index).center())

    def shown() -> set[str]:
        proxy = window.vm_proxy
        return {proxy.index(r, 0).data() for r in range(proxy.rowCount())}

    tree.expand(vms)
    prod = child(model, vms, "prod")
    click(prod)
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() == 10, timeout=20000)
    assert window.pages.currentWidget() is window.vm_page
    tree.expand(prod)
    click(child(model, prod, "web"))
    qtbot.waitUntil(lambda: shown() == {"web-frontend-01", "web-frontend-02", "api-gateway"},
                    timeout=20000)
    tips = [window.vm_proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole)
            for r in range(window.vm_proxy.rowCount())]
    assert all("Folder: prod/web" in tip and "Tags: web" in tip for tip in tips)
    # The filter box narrows further within the folder.
    qtbot.keyClicks(window.filter_edit, "api")
    qtbot.waitUntil(lambda: shown() == {"api-gateway"}, timeout=20000)
    window.filter_edit.clear()
    click(vms)
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() == 27, timeout=20000)


def drag_machine_onto(qtbot, window, name: str, target: QModelIndex):
    """Drag a machine's row from the list and drop it on a sidebar row: the list makes the
    drag's data from its selection, the tree gets enter, move and drop events."""
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    assert window.select_domain(name)
    view = window.vm_view
    mime = view.model().mimeData(view.selected_rows())  # what the view's drag carries
    tree = window.host_view
    tree.scrollTo(target)
    pos = tree.visualRect(target).center()
    viewport = tree.viewport()
    copy, left, none = (Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton,
                        Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(pos, copy, mime, left, none)
    QApplication.sendEvent(viewport, enter)
    move = QDragMoveEvent(pos, copy, mime, left, none)
    QApplication.sendEvent(viewport, move)
    if not move.isAccepted():
        return False
    drop = QDropEvent(pos.toPointF(), copy, mime, left, none)
    QApplication.sendEvent(viewport, drop)
    return drop.isAccepted()


def test_a_machine_dropped_on_a_folder_is_filed_there(qtbot, make_main_window, tmp_path):
    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    host = inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    other_path = tmp_path / "other.xml"
    other_path.write_text("<node><domain type='test'><name>elsewhere</name><memory>65536"
                          "</memory><os><type>hvm</type></os></domain></node>")
    other = inventory.add(f"test://{other_path}", name="Other")
    model = window.host_model
    vms = model.index(0, 0, model.index(0, 0))
    qtbot.waitUntil(lambda: model.rowCount(vms) == 6
                    and window.vm_proxy.sourceModel().rowCount() == 28
                    and other.state is ConnectionState.CONNECTED, timeout=20000)
    window.host_view.expandAll()

    assert drag_machine_onto(qtbot, window, "fedora-workstation", child(model, vms, "lab"))
    qtbot.waitUntil(lambda: g.groups_of(host.find_domain_by_name("fedora-workstation")).folder
                    == "lab", timeout=20000)
    assert g.groups_of(host.find_domain_by_name("fedora-workstation")).tags == ()
    qtbot.waitUntil(lambda: child(model, vms, "lab").data() == "lab (3)", timeout=20000)
    # Tags stay with the machine; dropping on Virtual machines takes it out of its folder.
    assert drag_machine_onto(qtbot, window, "db-primary", vms)
    qtbot.waitUntil(lambda: g.groups_of(host.find_domain_by_name("db-primary"))
                    == g.Groups("", ("db", "backup")), timeout=20000)
    # Another host's machine cannot be filed in this host's folders: refused, nothing runs.
    window.host_view.setCurrentIndex(model.index(1, 0))
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() == 1, timeout=20000)
    before = len(window.runner.jobs)
    assert not drag_machine_onto(qtbot, window, "elsewhere", child(model, vms, "lab"))
    assert len(window.runner.jobs) == before
    assert g.groups_of(other.find_domain_by_name("elsewhere")).empty


def test_pressing_and_moving_the_mouse_starts_a_drag_of_the_machine(qtbot, make_main_window,
                                                                    monkeypatch):
    """The offscreen platform ends every drag at once, so this checks what the drag
    carries; the drop side is the test above."""
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    from virtstudio.ui.machine_list_view import MachineListView
    from virtstudio.ui.vm_model import machines_in

    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    host = inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() == 27, timeout=20000)
    carried = []
    real_drag = MachineListView.start_machine_drag

    def spy(view):
        carried.extend(machines_in(view.model().mimeData(view.selected_rows())))
        return real_drag(view)

    monkeypatch.setattr(MachineListView, "start_machine_drag", spy)
    view = window.vm_view
    assert window.select_domain("fedora-workstation")
    selected = view.selected_rows()[0]
    view.scrollTo(selected)
    row = view.visualRect(selected).center()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(view.viewport(), left, none, row)
    QTest.mouseMove(view.viewport(), row + QPoint(1, 0))  # a twitch is a click, not a drag
    assert not carried
    QTest.mouseMove(view.viewport(), row + QPoint(40, 5))
    QTest.mouseRelease(view.viewport(), left, none, row + QPoint(40, 5))
    assert carried == [(host.uri, host.find_domain_by_name("fedora-workstation").uuid)]
