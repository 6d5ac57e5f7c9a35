"""Snapshot, clone and migrate dialogs on libvirt's test driver: bad input, the tree, errors."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox

from tests.helpers import wait_for
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobState

NS = "http://libvirt.org/schemas/domain/test/1.0"


def _domain(name: str, state: int, disk_format: str = "qcow2", mac: str = "01") -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory unit='MiB'>256</memory>"
        "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='{disk_format}'/>"
        f"<source file='/images/{name}.{disk_format}'/><target dev='vda' bus='virtio'/></disk>"
        "<disk type='file' device='cdrom'><source file='/iso/install.iso'/>"
        "<target dev='sda' bus='sata'/><readonly/></disk>"
        f"<interface type='network'><source network='default'/>"
        f"<mac address='52:54:00:00:00:{mac}'/></interface>"
        f"</devices><test:runstate>{state}</test:runstate></domain>")


def _fixture(path, *domains: str):
    path.write_text(f"<node xmlns:test='{NS}'>{''.join(domains)}"
                    "<network><name>default</name><bridge name='vsbr9'/></network></node>")
    return f"test://{path}"


@pytest.fixture
def window(make_main_window, qtbot, tmp_path):
    window = make_main_window(Inventory(stats_interval=0))
    source = window.inventory.add(_fixture(
        tmp_path / "a.xml", _domain("web", 5), _domain("db", 1, mac="02"),
        _domain("plain", 5, "raw", mac="03")))
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 3, timeout=10000)
    window.source = source
    return window


def _dialogs(window):
    found = []
    window.confirm_requested.connect(found.append)
    return found


def _type(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_clone_dialog_checks_the_name_as_you_type(window, qtbot):
    assert window.select_domain("web")
    dialogs = _dialogs(window)
    window.toolbar.widgetForAction(window.machine_actions.clone_action).click()
    dialog = dialogs[-1]
    assert dialog.clone_button.isEnabled()  # the suggested name is fine
    for bad, says in (("my clone", "spaces or slashes"), ("a/b", "spaces or slashes"),
                      ("db", "has a machine called db already"), ("", "Enter a name"),
                      ("-x", "starting with a letter")):
        _type(qtbot, dialog.name_edit, bad)
        assert says in dialog.error.text(), bad
        assert not dialog.clone_button.isEnabled()
        qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
        assert dialog.isVisible()  # Enter does nothing while the name is wrong
    _type(qtbot, dialog.name_edit, "web2")
    assert dialog.error.text() == "" and dialog.clone_button.isEnabled()
    combo = dialog.findChild(QComboBox, "mode_vda")
    combo.setCurrentIndex(combo.findText("Linked clone (qcow2 overlay)"))
    assert "web2-vda.qcow2 on /images/web.qcow2" in dialog.plan.text()
    assert "read-only base" in dialog.plan.text()
    assert not dialog.findChild(QComboBox, "mode_sda").isEnabled()  # the CD is shared
    dialog.reject()


def test_clone_is_refused_for_a_running_machine(window, qtbot):
    from virtstudio.ui.clone_dialog import CloneDialog

    assert window.select_domain("db")
    assert not window.machine_actions.clone_action.isEnabled()
    dialog = CloneDialog(window.source, window.source.find_domain_by_name("db"), window)
    qtbot.addWidget(dialog)
    assert "Shut db down first" in dialog.error.text()
    assert not dialog.clone_button.isEnabled()


def test_snapshot_dialog_refuses_bad_names_and_impossible_kinds(window, qtbot):
    from virtstudio.ui.snapshot_dialog import SnapshotDialog

    web = window.source.find_domain_by_name("web")
    dialog = SnapshotDialog(web, ["before"], window)
    qtbot.addWidget(dialog)
    dialog.show()
    for bad, says in (("a b", "spaces or slashes"), ("x/y", "spaces or slashes"),
                      ("before", "has a snapshot called before already")):
        _type(qtbot, dialog.name_edit, bad)
        assert says in dialog.error.text()
        assert not dialog.take_button.isEnabled()
    memory = dialog.kind_buttons[next(k for k in dialog.kind_buttons
                                      if k.name == "EXTERNAL_MEMORY")]
    assert not memory.isEnabled() and "shut off" in memory.toolTip()
    _type(qtbot, dialog.name_edit, "after")
    assert dialog.take_button.isEnabled()
    plain = SnapshotDialog(window.source.find_domain_by_name("plain"), [], window)
    qtbot.addWidget(plain)
    internal = plain.kind_buttons[next(k for k in plain.kind_buttons if k.name == "INTERNAL")]
    assert not internal.isEnabled() and "need qcow2 disks" in internal.toolTip()


def _panel_names(panel):
    names = []

    def walk(item, depth):
        names.append(("  " * depth) + item.text(0))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)

    for i in range(panel.tree.topLevelItemCount()):
        walk(panel.tree.topLevelItem(i), 0)
    return names


def _take(window, qtbot, name):
    panel = window.details.snapshots
    dialogs = _dialogs(window)
    qtbot.mouseClick(panel.take_button, Qt.MouseButton.LeftButton)
    dialog = dialogs[-1]
    internal = next(b for k, b in dialog.kind_buttons.items() if k.name == "INTERNAL")
    qtbot.mouseClick(internal, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.name_edit, name)
    qtbot.mouseClick(dialog.take_button, Qt.MouseButton.LeftButton)
    # Other reloads (the machine's own refresh) may land first: wait for the result itself.
    qtbot.waitUntil(lambda: any(s.name == name and s.current for s in panel.snapshots),
                    timeout=20000)


def test_snapshot_tree_marks_the_current_one_and_delete_asks(window, qtbot):
    assert window.select_domain("web")
    panel = window.details.snapshots
    window.details.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.take_button.isEnabled(), timeout=20000)
    _take(window, qtbot, "first")
    _take(window, qtbot, "second")
    assert _panel_names(panel) == ["first", "  second  (current)"]
    assert panel.tree.topLevelItem(0).child(0).font(0).bold()
    assert not panel.revert_button.isEnabled()  # nothing chosen yet
    assert panel.select("first")
    dialogs = _dialogs(window)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=20000)
    box = dialogs[-1]
    assert isinstance(box, QMessageBox) and "first" in box.windowTitle()
    assert "can no longer return to it" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    go = next(b for b in box.buttons() if b.text() == "Delete Snapshot")
    qtbot.mouseClick(go, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _panel_names(panel) == ["second  (current)"], timeout=20000)

    # A snapshot made by another tool shows after Refresh (libvirt sends no event for it).
    window.source.call(lambda conn: conn.lookupByName("web").snapshotCreateXML(
        "<domainsnapshot><name>by-virsh</name></domainsnapshot>", 0)).result(timeout=60)
    qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _panel_names(panel) == ["second", "  by-virsh  (current)"],
                    timeout=20000)


def _add_host(window, qtbot, path, *domains):
    host = window.inventory.add(_fixture(path, *domains))
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED and bool(host.domains),
                    timeout=10000)
    return host


def test_migrate_dialog_validation_and_the_job_error(window, qtbot, tmp_path):
    assert window.select_domain("db")
    dialogs = _dialogs(window)
    window.machine_actions.show_migrate()
    dialog = dialogs[-1]
    assert "Choose the host" in dialog.error.text() and not dialog.move_button.isEnabled()
    dialog.reject()

    _add_host(window, qtbot, tmp_path / "b.xml", _domain("db", 5))
    window.machine_actions.show_migrate()
    dialog = dialogs[-1]
    dialog.host_combo.setCurrentIndex(1)
    assert "has a machine called db already" in dialog.error.text()
    assert not dialog.move_button.isEnabled()
    dialog.reject()

    third = _add_host(window, qtbot, tmp_path / "c.xml", _domain("mail", 5))
    window.machine_actions.show_migrate()
    dialog = dialogs[-1]
    dialog.host_combo.setCurrentIndex(dialog.host_combo.findData(third))
    assert dialog.error.text() == "" and dialog.move_button.isEnabled()
    assert dialog.live_check.isChecked()  # db runs: live by default
    jobs_before = len(window.runner.jobs)
    qtbot.mouseClick(dialog.move_button, Qt.MouseButton.LeftButton)
    job = wait_for(lambda: window.runner.jobs[jobs_before:] and window.runner.jobs[-1],
                   timeout=30)
    wait_for(lambda: job.state.finished, timeout=15)
    assert job.state is JobState.FAILED
    assert "not supported" in job.error.message  # the test driver cannot migrate
    assert window.source.find_domain_by_name("db") is not None  # nothing moved
    qtbot.waitUntil(lambda: any(isinstance(w, QMessageBox) and "Move db" in w.windowTitle()
                                for w in QApplication.topLevelWidgets() if w.isVisible()),
                    timeout=20000)
