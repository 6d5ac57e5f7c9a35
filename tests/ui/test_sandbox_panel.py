"""The Sandboxes panel driven as a user would: new profile, drop a program, launch, stop."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from virtstudio.core.jobs import JobRunner
from virtstudio.sandbox.manager import SandboxManager
from virtstudio.sandbox.store import ProfileStore
from virtstudio.ui.sandbox_panel import SandboxColumn, SandboxPanel


@pytest.fixture
def panel(qtbot, tmp_path):
    manager = SandboxManager(tmp_path / "data", sample_interval=0.2)
    store = ProfileStore(tmp_path / "data")
    runner = JobRunner()
    widget = SandboxPanel(manager, store, runner)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    yield widget
    manager.stop_all()
    runner.shutdown(wait=True)


def drop_files(qtbot, target, paths):
    """Drag files from a file manager and drop them on ``target``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    viewport = target.viewport()
    pos = QPoint(viewport.width() // 2, viewport.height() // 2)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos.toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    assert drop.isAccepted()


def test_create_profile_drop_program_launch_and_stop(panel, qtbot, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    program = tools / "worker.sh"
    program.write_text("#!/bin/sh\necho started\nexec sleep 120\n")
    program.chmod(0o755)

    editor = panel.open_editor(None)
    assert not editor.save_button.isEnabled()  # no name yet
    qtbot.keyClicks(editor.name_edit, "My tools")
    qtbot.keyClicks(editor.read_only.edit, str(tools))
    qtbot.keyClick(editor.read_only.edit, Qt.Key.Key_Return)
    assert f"Can read {tools}" in editor.summary.text()
    assert "No network at all" in editor.summary.text()
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.current_profile() is not None
                    and panel.current_profile().name == "My tools", timeout=20000)

    drop_files(qtbot, panel.apps, [program])
    qtbot.waitUntil(lambda: panel.apps.count() == 1, timeout=20000)
    assert panel.apps.item(0).text() == "worker.sh"

    qtbot.mouseClick(panel.launch_button, Qt.MouseButton.LeftButton)
    model = panel.running_model
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=10000)
    qtbot.waitUntil(lambda: model.index(0, SandboxColumn.STATE).data() == "Running", timeout=20000)
    assert model.index(0, SandboxColumn.PROFILE).data() == "My tools"
    qtbot.waitUntil(lambda: model.index(0, SandboxColumn.PROCESSES).data() not in ("0", "—"),
                    timeout=20000)

    panel.running.setCurrentIndex(model.index(0, 0))
    qtbot.waitUntil(panel.stop_button.isEnabled, timeout=20000)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.index(0, SandboxColumn.STATE).data() == "Stopped",
                    timeout=10000)
    assert "started" in model.sandbox_at(0).log_text()


def test_dropping_a_program_the_profile_cannot_see_is_refused(panel, qtbot, tmp_path):
    program = tmp_path / "hidden.sh"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    panel.select_profile("Untrusted binary")
    qtbot.waitUntil(lambda: panel.current_profile().name == "Untrusted binary", timeout=20000)
    drop_files(qtbot, panel.apps, [program])
    boxes = panel.findChildren(QMessageBox, "errorBox")
    assert boxes and "grant its folder" in boxes[0].text()
    assert panel.apps.count() == 0


def test_desktop_file_drop_adds_its_command(panel, qtbot, tmp_path):
    entry = tmp_path / "calc.desktop"
    entry.write_text("[Desktop Entry]\nType=Application\nName=Calculator\n"
                     "Exec=/usr/bin/bc -q %F\n")
    panel.select_profile("Offline tool")
    drop_files(qtbot, panel.apps, [entry])
    qtbot.waitUntil(lambda: panel.apps.count() == 1, timeout=20000)
    app = panel.apps.item(0).data(Qt.ItemDataRole.UserRole)
    assert app.name == "Calculator" and app.command == ("/usr/bin/bc", "-q")


def test_installed_application_can_be_picked(panel, qtbot):
    combo = panel.installed
    if combo.count() < 2:
        pytest.skip("no .desktop entries installed on this machine")
    panel.select_profile("Offline tool")
    index = next(i for i in range(1, combo.count())
                 if combo.itemData(i).command[0].startswith("/usr/")
                 or "/" not in combo.itemData(i).command[0])
    name = combo.itemData(index).name
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    qtbot.waitUntil(lambda: panel.apps.count() >= 1, timeout=20000)
    assert name in [panel.apps.item(i).text() for i in range(panel.apps.count())]
    assert combo.currentIndex() == 0


def test_editor_offers_user_mode_internet_and_shows_paths_as_text(panel, qtbot, tmp_path):
    editor = panel.open_editor(None)
    combo = editor.network
    offered = {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}
    assert offered == {"none": "No network", "internet": "Internet (user-mode networking)",
                       "bridge": "Own network on a bridge"}
    combo.setCurrentIndex(combo.findData("internet"))
    assert "cannot reach this computer's own services" in editor.summary.text()
    odd = tmp_path / "<b>bold"
    odd.mkdir()
    qtbot.keyClicks(editor.read_only.edit, str(odd))
    qtbot.keyClick(editor.read_only.edit, Qt.Key.Key_Return)
    assert "&lt;b&gt;bold" in editor.summary.text()  # escaped, not markup
    editor.reject()


def test_denied_folder_names_the_problem_in_the_editor(panel, qtbot):
    editor = panel.open_editor(None)
    qtbot.keyClicks(editor.name_edit, "Greedy")
    qtbot.keyClicks(editor.read_write.edit, "//")
    qtbot.keyClick(editor.read_write.edit, Qt.Key.Key_Return)
    assert "whole file system" in editor.error.text()
    assert not editor.save_button.isEnabled()
    editor.reject()
