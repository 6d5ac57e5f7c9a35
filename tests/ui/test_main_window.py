"""The main window over test-driver hosts, driven as a user would."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from tests.qt_events import drain_hosts, drain_posted_events
from virtstudio.core.connection import ConnectionState
from virtstudio.core.entities import DomainState
from virtstudio.core.fixtures import write_fixture
from virtstudio.ui.vm_model import VmColumn, VmRole


@pytest.fixture
def fixture_uri(tmp_path):
    return f"test://{write_fixture(tmp_path / 'host.xml', 30)}"


def enabled_actions(window):
    return {a.value for a, q in window.vm_actions.items() if q.isEnabled()}


def click(qtbot, window, label):
    """Click the toolbar button of the action called ``label``, as a user would."""
    qaction = next(q for a, q in window.vm_actions.items() if a.value == label)
    button = window.toolbar.widgetForAction(qaction)
    assert button is not None and button.isEnabled(), f"{label} is not clickable"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _first_with_state(window, state):
    for row in range(window.vm_model.rowCount()):
        dom = window.vm_model.domain_at(row)
        if dom.state is state and dom.persistent:
            return dom
    raise AssertionError(f"no machine in state {state}")


def test_window_lists_hosts_and_machines(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    assert window.host_model.rowCount() == 1
    host_index = window.host_model.index(0, 0)
    assert window.host_model.rowCount(host_index) == 3
    assert "(30)" in window.host_model.index(0, 0, host_index).data()
    qtbot.waitUntil(lambda: "30 machines" in window.summary_label.text(), timeout=20000)


def test_filter_box_narrows_the_list(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    target = window.vm_model.domain_at(7).name
    qtbot.keyClicks(window.filter_edit, target)
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() >= 1, timeout=20000)
    names = {window.vm_proxy.index(r, 0).data(VmRole.DOMAIN).name
             for r in range(window.vm_proxy.rowCount())}
    assert target in names and len(names) < 30
    window.filter_edit.clear()
    assert window.vm_proxy.rowCount() == 30


def test_selection_shows_details_and_enables_actions(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    running = _first_with_state(window, DomainState.RUNNING)
    assert window.select_domain(running.name)
    assert window.details.domain is running
    assert running.name in window.details.xml_view.toPlainText()
    assert enabled_actions(window) == {"Pause", "Shut down", "Reboot", "Force off", "Delete"}


def test_toolbar_pause_and_resume(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    dom = _first_with_state(window, DomainState.RUNNING)
    window.select_domain(dom.name)
    click(qtbot, window, "Pause")
    qtbot.waitUntil(lambda: dom.state is DomainState.PAUSED, timeout=20000)
    qtbot.waitUntil(lambda: "Resume" in enabled_actions(window), timeout=20000)
    click(qtbot, window, "Resume")
    qtbot.waitUntil(lambda: dom.state is DomainState.RUNNING, timeout=20000)


def test_force_off_asks_first_and_cancel_changes_nothing(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    dom = _first_with_state(window, DomainState.RUNNING)
    window.select_domain(dom.name)
    boxes = []
    window.confirm_requested.connect(boxes.append)
    click(qtbot, window, "Force off")
    assert boxes and dom.name in boxes[0].text()
    qtbot.mouseClick(boxes[0].button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    # Whatever Cancel set off has reached the host's worker and come back by now.
    drain_hosts(qtbot, window.inventory.connections)
    assert window.runner.jobs == [] and dom.state is DomainState.RUNNING
    click(qtbot, window, "Force off")
    go = next(b for b in boxes[1].buttons() if b.text() == "Force Off")
    qtbot.mouseClick(go, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dom.state is DomainState.SHUTOFF, timeout=20000)


def test_delete_dialog_cancel_keeps_the_machine(make_main_window, qtbot, fixture_uri):
    window = make_main_window()
    window.inventory.add(fixture_uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 30, timeout=20000)
    dom = _first_with_state(window, DomainState.SHUTOFF)
    window.select_domain(dom.name)
    dialogs = []
    window.confirm_requested.connect(dialogs.append)
    click(qtbot, window, "Delete")
    # What goes is worked out on the host's worker before the dialog opens.
    qtbot.waitUntil(lambda: bool(dialogs), timeout=20000)
    assert dom.name in dialogs[0].windowTitle()
    dialogs[0].reject()
    drain_hosts(qtbot, window.inventory.connections)
    assert window.runner.jobs == [] and window.vm_model.rowCount() == 30
    click(qtbot, window, "Delete")
    qtbot.waitUntil(lambda: len(dialogs) == 2, timeout=20000)
    box = dialogs[1].findChild(QDialogButtonBox)
    delete = next(b for b in box.buttons() if b.text().replace("&", "") == "Delete")
    qtbot.mouseClick(delete, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 29, timeout=20000)


def test_failed_host_shows_its_reason(make_main_window, qtbot, tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<node><domain type='test'><name>x</name>")
    window = make_main_window()
    conn = window.inventory.add(f"test://{bad}")
    qtbot.waitUntil(lambda: conn.state is ConnectionState.FAILED, timeout=20000)
    text = window.host_model.index(0, 0).data()
    assert "Failed" in text
    tip = window.host_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert conn.error.message in tip
    assert window.vm_model.rowCount() == 0


def test_demo_host_is_labelled(make_main_window, qtbot):
    from virtstudio.core.demo import DEMO_NAME, demo_uri

    window = make_main_window()
    window.inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() >= 20, timeout=20000)
    assert window.demo_banner.isVisible()
    assert "Demo host" in window.windowTitle()
    assert window.host_model.index(0, 0).data().startswith("Demo host")
    hosts = {window.vm_model.index(r, VmColumn.HOST).data()
             for r in range(window.vm_model.rowCount())}
    assert hosts == {"Demo host"}
    # One host: no column repeating its name; a second host brings it back.
    assert window.vm_view.isColumnHidden(VmColumn.HOST)
    window.inventory.add("test:///default")
    qtbot.waitUntil(lambda: not window.vm_view.isColumnHidden(VmColumn.HOST), timeout=20000)


def test_add_connection_dialog_to_an_unreachable_host(make_main_window, qtbot, settings):
    window = make_main_window()
    dialog = window.show_add_connection()
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findText("Custom URI"))
    # Nothing listens on port 1 of this machine: the connection is refused at once.
    qtbot.keyClicks(dialog.uri_edit, "qemu+tcp://127.0.0.1:1/system")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.inventory.connections) == 1, timeout=20000)
    conn = window.inventory.connections[0]
    qtbot.waitUntil(lambda: conn.state is ConnectionState.LOST, timeout=20000)
    text = window.host_model.index(0, 0).data()
    assert "Connection lost, retrying in" in text
    tip = window.host_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "refused" in tip.lower() or "connect" in tip.lower()
    assert [s.uri for s in settings.load()] == ["qemu+tcp://127.0.0.1:1/system"]
    # Removing it stops the retries and forgets it.
    window.remove_connection(conn)
    assert window.host_model.rowCount() == 0 and settings.load() == []


def test_invalid_custom_uri_adds_nothing(make_main_window, qtbot, settings):
    window = make_main_window()
    dialog = window.show_add_connection()
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findText("Custom URI"))
    qtbot.keyClicks(dialog.uri_edit, "qemu:///nonsense")
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClick(dialog.uri_edit, Qt.Key.Key_Return)
    drain_posted_events(qtbot)
    assert window.inventory.connections == [] and settings.load() == []
