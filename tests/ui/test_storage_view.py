"""The Storage view on the demo host: new volumes validated as you type, safe deletion."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from virtstudio.core.demo import DEMO_NAME, demo_uri
from virtstudio.ui.volume_dialog import NewVolumeDialog


@pytest.fixture
def storage(make_main_window, qtbot):
    window = make_main_window()
    host = window.inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    qtbot.waitUntil(lambda: len(host.pools) == 5 and len(host.domains) > 20, timeout=20000)
    top = window.host_model.index(0, 0)
    window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
    assert window.pages.currentWidget() is window.storage_page
    return window


def select_pool(window, name):
    model = window.pool_model
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))


def select_volume(window, name):
    model = window.volume_model
    row = next(r for r in range(model.rowCount()) if model.volume_at(r).name == name)
    window.volume_view.setCurrentIndex(model.index(row, 0))


def test_new_volume_dialog_validates_and_creates(storage, qtbot):
    window = storage
    select_pool(window, "default")
    before = window.volume_model.rowCount()
    qtbot.mouseClick(window.new_volume_button, Qt.MouseButton.LeftButton)
    dialog = window.findChildren(NewVolumeDialog)[0]
    assert not dialog.create_button.isEnabled()
    qtbot.keyClicks(dialog.name_edit, "my disk")
    qtbot.keyClicks(dialog.size_edit, "abc")
    assert not dialog.create_button.isEnabled()
    assert "no spaces" in dialog.error.text() or "not a size" in dialog.error.text()
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "scratch.qcow2")
    assert "not a size" in dialog.error.text()
    dialog.size_edit.clear()
    qtbot.keyClicks(dialog.size_edit, "900G")
    dialog.prealloc_combo.setCurrentIndex(dialog.prealloc_combo.findData("full"))
    assert "does not fit" in dialog.error.text() and not dialog.create_button.isEnabled()
    dialog.prealloc_combo.setCurrentIndex(dialog.prealloc_combo.findData("off"))
    assert dialog.create_button.isEnabled()
    assert "more than it holds" in dialog.summary.text()  # thin: overcommit is allowed
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.volume_model.rowCount() == before + 1, timeout=20000)
    names = [window.volume_model.volume_at(r).name for r in range(before + 1)]
    assert "scratch.qcow2" in names


def test_linked_clone_choice_lists_qcow2_volumes(storage):
    window = storage
    select_pool(window, "default")
    dialog = window.show_new_volume()
    labels = [dialog.backing_combo.itemText(i) for i in range(dialog.backing_combo.count())]
    assert "Linked clone of ubuntu-template.qcow2" in labels
    dialog.backing_combo.setCurrentIndex(labels.index("Linked clone of ubuntu-template.qcow2"))
    dialog.name_edit.setText("ubuntu-clone.qcow2")
    assert dialog.create_button.isEnabled()  # size defaults to the base's
    assert dialog.spec().backing_path.endswith("ubuntu-template.qcow2")


def ask(window, qtbot, button):
    boxes = []
    window.confirm_requested.connect(boxes.append)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(boxes), timeout=20000)  # worked out on the host's worker first
    return boxes[-1]


def test_volume_in_use_is_not_deleted(storage, qtbot):
    window = storage
    select_pool(window, "default")
    select_volume(window, "web-frontend-01.qcow2")
    dialog = ask(window, qtbot, window.delete_volume_button)
    from PySide6.QtWidgets import QLabel

    refused = dialog.findChild(QLabel, "deleteRefused")
    assert refused.isVisible() and "web-frontend-01 (disk vda)" in refused.text()
    assert not dialog.delete_button.isEnabled()
    names = [window.volume_model.volume_at(r).name
             for r in range(window.volume_model.rowCount())]
    assert "web-frontend-01.qcow2" in names


def test_unused_volume_is_deleted_after_confirmation(storage, qtbot):
    window = storage
    select_pool(window, "iso-library")
    select_volume(window, "debian-12.8.0-amd64-netinst.iso")
    dialog = ask(window, qtbot, window.delete_volume_button)
    assert "Deleted for good" in dialog.lost.text()
    assert "debian-12.8.0-amd64-netinst.iso" in dialog.lost.text()
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.volume_model.rowCount() == 3, timeout=20000)
