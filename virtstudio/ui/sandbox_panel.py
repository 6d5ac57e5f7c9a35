"""The Sandboxes panel: profiles, the applications that use them, and what is running."""

from __future__ import annotations

import enum
import shlex
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import UserError, VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes, format_percent
from virtstudio.sandbox.desktop_entry import installed_apps, read_desktop_file
from virtstudio.sandbox.manager import Sandbox, SandboxManager
from virtstudio.sandbox.store import ProfileStore, SandboxApp
from virtstudio.ui.bridge import relay
from virtstudio.ui.error_dialog import error_box
from virtstudio.ui.plain_text import html, make_plain, plain_label, plain_tooltip
from virtstudio.ui.profile_editor import ProfileEditor

Index = QModelIndex | QPersistentModelIndex
SANDBOX_ROLE = Qt.ItemDataRole.UserRole + 1


class SandboxColumn(enum.IntEnum):
    PROGRAM = 0
    PROFILE = 1
    STATE = 2
    CPU = 3
    MEMORY = 4
    PROCESSES = 5
    STARTED = 6


_HEADERS = ("Program", "Profile", "State", "CPU", "Memory", "Processes", "Started")
_STATES = {"starting": "Starting", "running": "Running", "exited": "Exited",
           "stopped": "Stopped", "killed": "Killed (memory limit)"}


class RunningSandboxModel(QAbstractTableModel):
    def __init__(self, manager: SandboxManager, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Sandbox] = []
        relay(manager.started, self._on_started, self)
        relay(manager.changed, self._on_changed, self)
        relay(manager.exited, self._on_changed, self)
        for sandbox in manager.sandboxes:
            self._on_started(sandbox)

    def _on_started(self, sandbox: Sandbox) -> None:
        if sandbox in self._rows:
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, sandbox)
        self.endInsertRows()

    def _on_changed(self, sandbox: Sandbox) -> None:
        if sandbox in self._rows:
            row = self._rows.index(sandbox)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(SandboxColumn) - 1))

    def sandbox_at(self, row: int) -> Sandbox | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(SandboxColumn)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        sandbox = self.sandbox_at(index.row()) if index.isValid() else None
        if sandbox is None:
            return None
        if role == SANDBOX_ROLE:
            return sandbox
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [" ".join(sandbox.command), *sandbox.warnings]
            lines += [f"{p.pid} {p.name}: {format_percent(p.cpu_percent)}, "
                      f"{format_bytes(p.rss_bytes)}" for p in sandbox.processes]
            return plain_tooltip(*lines)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        col = SandboxColumn(index.column())
        live = sandbox.running
        if col is SandboxColumn.PROGRAM:
            return Path(sandbox.command[0]).name
        if col is SandboxColumn.PROFILE:
            return sandbox.profile.name
        if col is SandboxColumn.STATE:
            text = _STATES.get(sandbox.state, sandbox.state)
            if not live and sandbox.exit_code is not None and sandbox.state == "exited":
                text += f" ({sandbox.exit_code})"
            return text
        if col is SandboxColumn.CPU:
            return format_percent(sandbox.cpu_percent) if live else "—"
        if col is SandboxColumn.MEMORY:
            return format_bytes(sandbox.memory_bytes) if live else "—"
        if col is SandboxColumn.PROCESSES:
            return str(len(sandbox.processes)) if live else "—"
        return time.strftime("%H:%M:%S", time.localtime(sandbox.started))


class AppDropList(QListWidget):
    """The selected profile's applications; accepts dropped programs and .desktop files."""

    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)


class SandboxPanel(QWidget):
    def __init__(self, manager: SandboxManager, store: ProfileStore, runner: JobRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sandboxPanel")
        self.manager = manager
        self.store = store
        self.runner = runner

        self.profiles = QListWidget(objectName="profileList")
        self.profiles.currentItemChanged.connect(self._profile_selected)
        new = QPushButton("New…", objectName="newProfileButton")
        self.edit_button = QPushButton("Edit…", objectName="editProfileButton")
        self.delete_button = QPushButton("Delete", objectName="deleteProfileButton")
        import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export…")
        new.clicked.connect(lambda: self.open_editor(None))
        self.edit_button.clicked.connect(lambda: self.open_editor(self.current_profile()))
        self.delete_button.clicked.connect(self._delete_profile)
        import_button.clicked.connect(self._import)
        self.export_button.clicked.connect(self._export)
        profile_buttons = QHBoxLayout()
        for b in (new, self.edit_button, self.delete_button, import_button, self.export_button):
            profile_buttons.addWidget(b)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("<b>Profiles</b>"))
        left_layout.addWidget(self.profiles)
        left_layout.addLayout(profile_buttons)
        self.permissions = QLabel(objectName="profilePermissions", wordWrap=True)
        self.permissions.setAlignment(Qt.AlignmentFlag.AlignTop)
        left_layout.addWidget(self.permissions)

        self.apps = AppDropList()
        self.apps.setObjectName("appList")
        self.apps.dropped.connect(self.add_dropped)
        self.apps.itemDoubleClicked.connect(lambda _item: self.launch_selected())
        self.command_edit = QLineEdit(objectName="commandEdit",
                                      placeholderText="Command line, e.g. gimp --new-instance")
        self.command_edit.returnPressed.connect(self._add_command)
        add_command = QPushButton("Add")
        add_command.clicked.connect(self._add_command)
        self.launch_button = QPushButton("Launch", objectName="launchButton")
        self.launch_button.clicked.connect(self.launch_selected)
        remove_app = QPushButton("Remove")
        remove_app.clicked.connect(self._remove_app)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.addWidget(QLabel("<b>Applications</b> — drop programs or .desktop "
                                       "files here"))
        middle_layout.addWidget(self.apps)
        self.installed = QComboBox(objectName="installedApps")
        self.installed.addItem("Add an installed application…")
        for entry in installed_apps():
            self.installed.addItem(entry.name, entry)
        self.installed.activated.connect(self._add_installed)
        middle_layout.addWidget(self.installed)
        row = QHBoxLayout()
        row.addWidget(self.command_edit)
        row.addWidget(add_command)
        middle_layout.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(self.launch_button)
        row2.addWidget(remove_app)
        row2.addStretch(1)
        middle_layout.addLayout(row2)

        self.running_model = RunningSandboxModel(manager, self)
        self.running = QTreeView(objectName="runningSandboxes")
        self.running.setModel(self.running_model)
        self.running.setRootIsDecorated(False)
        self.running.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.running.header().setSectionResizeMode(SandboxColumn.PROGRAM,
                                                   QHeaderView.ResizeMode.Stretch)
        self.stop_button = QPushButton("Stop", objectName="stopSandboxButton")
        self.stop_button.clicked.connect(self._stop_selected)
        self.log_button = QPushButton("Show Output", objectName="sandboxLogButton")
        self.log_button.clicked.connect(self._show_log)
        self.running.selectionModel().selectionChanged.connect(self._update_buttons)
        self.running_model.dataChanged.connect(self._update_buttons)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Running sandboxes</b>"))
        header.addStretch(1)
        header.addWidget(self.stop_button)
        header.addWidget(self.log_button)
        bottom_layout.addLayout(header)
        bottom_layout.addWidget(self.running)
        if not manager.cgroups.kind:
            note = plain_label(manager.cgroups.reason, wordWrap=True, objectName="limitsNote")
            bottom_layout.addWidget(note)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(left)
        top.addWidget(middle)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(top)
        outer.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(outer)

        relay(store.changed, self._reload_profiles, self)
        self._reload_profiles()
        self._update_buttons()

    # ---- profiles ------------------------------------------------------------------

    def current_profile(self) -> Any:
        item = self.profiles.currentItem()
        return self.store.find(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def select_profile(self, name: str) -> None:
        for i in range(self.profiles.count()):
            if self.profiles.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.profiles.setCurrentRow(i)
                return

    def _reload_profiles(self) -> None:
        current = self.profiles.currentItem()
        keep = current.data(Qt.ItemDataRole.UserRole) if current else None
        self.profiles.blockSignals(True)
        self.profiles.clear()
        for profile in self.store.profiles:
            label = f"{profile.name}  (built-in)" if profile.builtin else profile.name
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, profile.name)
            item.setToolTip(plain_tooltip(profile.description))
            self.profiles.addItem(item)
        self.profiles.blockSignals(False)
        self.select_profile(keep or self.store.profiles[0].name)
        self._profile_selected()

    def _profile_selected(self, *_: object) -> None:
        profile = self.current_profile()
        self.apps.clear()
        if profile is None:
            self.permissions.clear()
            return
        self.permissions.setText("<br>".join(f"• {html(line)}" for line in profile.permissions()))
        self.delete_button.setEnabled(not profile.builtin)
        for app in self.store.apps_of(profile.name):
            item = QListWidgetItem(app.name)
            item.setToolTip(plain_tooltip(shlex.join(app.command)))
            item.setData(Qt.ItemDataRole.UserRole, app)
            self.apps.addItem(item)
        if self.apps.count():
            self.apps.setCurrentRow(0)
        self._update_buttons()

    def open_editor(self, profile: Any) -> ProfileEditor:
        editor = ProfileEditor(profile, self)
        original = profile.name if profile is not None else None

        def save() -> None:
            try:
                self.store.save(editor.profile(), replacing=original)
            except VirtStudioError as exc:
                self._error("The profile was not saved", exc)
                return
            self.select_profile(editor.profile().name)

        editor.accepted.connect(save)
        editor.open()
        return editor

    def _delete_profile(self) -> None:
        profile = self.current_profile()
        if profile is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, f"Delete {profile.name}?",
                          f"The profile {profile.name} and its list of applications are "
                          "removed. Its private home folder is kept.",
                          QMessageBox.StandardButton.Cancel, self)
        make_plain(box)
        go = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.buttonClicked.connect(lambda b: self.store.delete(profile.name) if b is go else None)
        box.open()

    def _import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a profile", "",
                                              "Sandbox profiles (*.json)")
        if path:
            try:
                self.select_profile(self.store.import_file(Path(path)).name)
            except VirtStudioError as exc:
                self._error("The profile was not imported", exc)

    def _export(self) -> None:
        profile = self.current_profile()
        if profile is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the profile",
                                              f"{profile.name}.json", "Sandbox profiles (*.json)")
        if path:
            self.store.export(profile.name, Path(path))

    # ---- applications ---------------------------------------------------------------

    def add_dropped(self, paths: list[Path]) -> None:
        profile = self.current_profile()
        if profile is None:
            return
        for path in paths:
            try:
                if path.suffix == ".desktop":
                    entry = read_desktop_file(path)
                    app = SandboxApp(entry.name, entry.command, profile.name)
                else:
                    self.manager.resolve_program(str(path), profile)
                    app = SandboxApp(path.name, (str(path),), profile.name)
                self.store.add_app(app)
            except VirtStudioError as exc:
                self._error(f"{path.name} was not added", exc)
        self._profile_selected()

    def _add_installed(self, index: int) -> None:
        entry = self.installed.itemData(index)
        profile = self.current_profile()
        self.installed.setCurrentIndex(0)
        if entry is None or profile is None:
            return
        try:
            self.manager.resolve_program(entry.command[0], profile)
        except VirtStudioError as exc:
            self._error(f"{entry.name} was not added", exc)
            return
        self.store.add_app(SandboxApp(entry.name, entry.command, profile.name))
        self._profile_selected()

    def _add_command(self) -> None:
        profile = self.current_profile()
        text = self.command_edit.text().strip()
        if profile is None or not text:
            return
        try:
            argv = shlex.split(text)
            self.manager.resolve_program(argv[0], profile)
        except ValueError:
            self._error("The command was not added",
                        VirtStudioError("The command line has an unclosed quote."))
            return
        except VirtStudioError as exc:
            self._error("The command was not added", exc)
            return
        self.store.add_app(SandboxApp(Path(argv[0]).name, tuple(argv), profile.name))
        self.command_edit.clear()
        self._profile_selected()

    def _remove_app(self) -> None:
        item = self.apps.currentItem()
        if item is not None:
            self.store.remove_app(item.data(Qt.ItemDataRole.UserRole))
            self._profile_selected()

    def launch_selected(self) -> Job | None:
        profile = self.current_profile()
        item = self.apps.currentItem()
        if profile is None or item is None:
            return None
        app: SandboxApp = item.data(Qt.ItemDataRole.UserRole)
        manager = self.manager
        # bwrap's set-up is quick but not instant: keep it off the GUI thread.
        return self.runner.submit(f"Launch {app.name} in “{profile.name}”",
                                  lambda job: manager.launch(profile, list(app.command)),
                                  host="This computer", target=app.name)

    # ---- running ---------------------------------------------------------------------

    def selected_sandbox(self) -> Sandbox | None:
        rows = self.running.selectionModel().selectedRows()
        return self.running_model.sandbox_at(rows[0].row()) if rows else None

    def _update_buttons(self, *_: object) -> None:
        sandbox = self.selected_sandbox()
        self.stop_button.setEnabled(sandbox is not None and sandbox.running)
        self.log_button.setEnabled(sandbox is not None)
        self.launch_button.setEnabled(self.apps.count() > 0)

    def _stop_selected(self) -> None:
        sandbox = self.selected_sandbox()
        if sandbox is not None:
            self.manager.stop(sandbox)
            self._update_buttons()

    def _show_log(self) -> None:
        sandbox = self.selected_sandbox()
        if sandbox is None:
            return
        view = QPlainTextEdit(objectName="sandboxLog", readOnly=True)
        view.setWindowTitle(f"Output of {sandbox.title}")
        view.setPlainText(sandbox.log_text() or "(no output yet)")
        view.resize(640, 360)
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.setParent(self, Qt.WindowType.Window)
        view.show()

    def _error(self, title: str, exc: VirtStudioError) -> None:
        error_box(self, title, UserError(exc.message, exc.detail)).open()
