"""New Pool dialog and pool actions on the demo host (libvirt's test driver)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit

from tests.ui.test_storage_view import select_pool
from virtstudio.core.demo import DEMO_NAME, demo_uri
from virtstudio.storage.pool_jobs import PoolAction
from virtstudio.ui.pool_dialog import NewPoolDialog
from virtstudio.ui.storage_page import DeletePoolDialog


@pytest.fixture
def storage(make_main_window, qtbot):
    window = make_main_window()
    host = window.inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    qtbot.waitUntil(lambda: len(host.pools) == 5, timeout=20000)
    top = window.host_model.index(0, 0)
    window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
    assert window.pages.currentWidget() is window.storage_page
    return window


def pool_names(window):
    model = window.pool_model
    return {model.pool_at(r).name: model.pool_at(r) for r in range(model.rowCount())}


def click_tool(qtbot, window, name):
    tools = window.storage_tools
    action = next(a for a in tools.toolbar.actions() if a.objectName() == name)
    button = tools.toolbar.widgetForAction(action)
    assert button.isEnabled(), name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_fields_follow_the_type_and_are_checked_as_you_type(storage, qtbot):
    dialog = storage.storage_tools.show_new_pool()
    assert list(dialog.fields) == ["target_path"]
    assert dialog.build_check.isChecked()  # a dir pool's folder is made by building
    qtbot.keyClicks(dialog.name_edit, "default")
    assert "has a pool called default" in dialog.error.text()
    assert not dialog.create_button.isEnabled()
    dialog.set_type("netfs")
    assert set(dialog.fields) == {"source_host", "source_dir", "source_format", "target_path"}
    assert isinstance(dialog.fields["source_format"], QComboBox)
    dialog.name_edit.setText("share")
    qtbot.keyClicks(dialog.fields["source_host"], "nas lan")
    assert "Enter the exported folder" in dialog.error.text()
    qtbot.keyClicks(dialog.fields["source_dir"], "/export")
    qtbot.keyClicks(dialog.fields["target_path"], "/mnt/share")
    assert "one server" in dialog.error.text()
    dialog.fields["source_host"].setText("nas_lan")
    assert "not a host name" in dialog.error.text()
    dialog.fields["source_host"].setText("nas.lan")
    assert dialog.error.text() == "" and dialog.create_button.isEnabled()
    dialog.set_type("iscsi")
    assert isinstance(dialog.fields["source_device"], QLineEdit)
    dialog.set_type("disk")
    assert "must already have a partition table" in dialog.note.text()
    dialog.build_check.setChecked(True)
    assert "new partition table" in dialog.note.text()
    dialog.reject()


def test_discovery_fills_the_fields(storage, qtbot):
    dialog = storage.storage_tools.show_new_pool()
    dialog.set_type("netfs")
    qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)
    assert "Enter the server first" in dialog.error.text()
    qtbot.keyClicks(dialog.fields["source_host"], "nas.lan")
    qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.found_combo.count() > 0, timeout=20000)
    assert dialog.fields["source_dir"].text().startswith("/")  # the test driver's export
    dialog.set_type("logical")
    qtbot.mouseClick(dialog.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.found_combo.count() > 0, timeout=20000)
    assert dialog.fields["source_name"].text()
    dialog.reject()


def test_create_a_dir_pool_through_the_dialog(storage, qtbot):
    window = storage
    click_tool(qtbot, window, "newPoolAction")
    dialog = window.findChildren(NewPoolDialog)[-1]
    qtbot.keyClicks(dialog.name_edit, "scratch")
    qtbot.keyClicks(dialog.fields["target_path"], "/srv/scratch")
    dialog.autostart_check.setChecked(True)
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "scratch" in pool_names(window), timeout=20000)
    qtbot.waitUntil(lambda: pool_names(window)["scratch"].active
                    and pool_names(window)["scratch"].autostart, timeout=20000)


def test_stop_start_autostart_and_delete(storage, qtbot):
    window = storage
    select_pool(window, "iso-library")
    tools = window.storage_tools
    assert not tools.actions[PoolAction.START].isEnabled()  # it runs already
    click_tool(qtbot, window, "poolStopAction")
    qtbot.waitUntil(lambda: not pool_names(window)["iso-library"].active, timeout=20000)
    qtbot.waitUntil(lambda: tools.actions[PoolAction.START].isEnabled(), timeout=20000)
    click_tool(qtbot, window, "poolStartAction")
    qtbot.waitUntil(lambda: pool_names(window)["iso-library"].active, timeout=20000)
    before = pool_names(window)["iso-library"].autostart
    click_tool(qtbot, window, "poolAutostartAction")
    qtbot.waitUntil(lambda: pool_names(window)["iso-library"].autostart is not before,
                    timeout=20000)

    boxes = []
    window.confirm_requested.connect(boxes.append)
    click_tool(qtbot, window, "deletePoolAction")
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)  # worked out on the host's worker first
    dialog = boxes[-1]
    assert isinstance(dialog, DeletePoolDialog)
    assert "volumes and data stay where they are" in dialog.text.text()
    qtbot.mouseClick(dialog.with_data, Qt.MouseButton.LeftButton)
    assert "Deleted for good: 4 volumes" in dialog.text.text()
    assert "debian-12.8.0-amd64-netinst.iso" in dialog.lost.text()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert "iso-library" in pool_names(window)  # cancelled: nothing changed
    click_tool(qtbot, window, "deletePoolAction")
    qtbot.waitUntil(lambda: len(boxes) == 2, timeout=20000)
    qtbot.mouseClick(boxes[-1].delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "iso-library" not in pool_names(window), timeout=20000)


def test_pool_in_use_keeps_its_data_and_names_the_machine(storage, qtbot):
    window = storage
    select_pool(window, "default")
    boxes = []
    window.confirm_requested.connect(boxes.append)
    click_tool(qtbot, window, "deletePoolAction")
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)
    dialog = boxes[-1]
    assert dialog.delete_button.isEnabled()  # the definition alone may go
    qtbot.mouseClick(dialog.with_data, Qt.MouseButton.LeftButton)
    assert dialog.refused.isVisible() and "web-frontend-01 (disk vda)" in dialog.refused.text()
    assert dialog.blocked.isVisible() and not dialog.delete_button.isEnabled()


def test_thin_panel_follows_the_selected_pool(storage, qtbot):
    window = storage
    thin = window.storage_tools.thin
    select_pool(window, "default")
    assert not thin.isVisibleTo(window)
    select_pool(window, "fast-nvme")  # a logical pool over vg_nvme, not on this computer
    assert thin.isVisibleTo(window) and thin.vg == "vg_nvme"
    with qtbot.waitSignal(thin.updated, timeout=10000):
        pass
    assert "The thin pools of vg_nvme could not be read" in thin.usage_label.text()
    assert thin.apply_autoextend() is None  # nothing to set without a thin pool
    thin.new_name.setText("disk1")
    thin.new_size.setText("10G")
    assert thin.create_volume() is None
    assert "has no thin pool" in thin.new_error.text()
    select_pool(window, "iso-library")
    assert not thin.isVisibleTo(window)
