"""Edit a sandbox profile, with the permissions it grants spelled out as you change them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.profile import SandboxProfile
from virtstudio.ui.plain_text import html, plain_label

_NETWORK = (("none", "No network"), ("internet", "Internet (user-mode networking)"),
            ("bridge", "Own network on a bridge"))
_DISPLAY = (("none", "No windows"), ("x11", "X11"), ("wayland", "Wayland"))


class _PathList(QWidget):
    def __init__(self, title: str, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget(objectName=object_name)
        self.list.setMaximumHeight(70)
        self.edit = QLineEdit(placeholderText="/path/to/folder", objectName=f"{object_name}Edit")
        add = QPushButton("Add")
        browse = QPushButton("Browse…")
        remove = QPushButton("Remove")
        add.clicked.connect(self._add_typed)
        browse.clicked.connect(self._browse)
        remove.clicked.connect(lambda: [self.list.takeItem(self.list.row(i))
                                        for i in self.list.selectedItems()])
        self.edit.returnPressed.connect(self._add_typed)
        row = QHBoxLayout()
        for w in (self.edit, add, browse, remove):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(title))
        layout.addWidget(self.list)
        layout.addLayout(row)
        self.changed = self.list.model().rowsInserted

    def _add_typed(self) -> None:
        text = self.edit.text().strip()
        if text:
            self.list.addItem(text)
            self.edit.clear()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to grant")
        if folder:
            self.list.addItem(folder)

    def paths(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def set_paths(self, paths: list[str]) -> None:
        self.list.clear()
        self.list.addItems(paths)


class ProfileEditor(QDialog):
    def __init__(self, profile: SandboxProfile | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original = profile
        self.setWindowTitle(f"Edit Profile — {profile.name}" if profile else "New Profile")
        self.setMinimumWidth(620)
        self.name_edit = QLineEdit(objectName="profileName")
        self.description_edit = QLineEdit(objectName="profileDescription")
        self.private_home = QCheckBox("A private home folder of its own", objectName="privateHome")
        self.read_only = _PathList("Folders it may read:", "readOnlyList")
        self.read_write = _PathList("Folders it may read and change:", "readWriteList")
        self.network = QComboBox(objectName="networkCombo")
        for key, label in _NETWORK:
            self.network.addItem(label, key)
        self.bridge_edit = QLineEdit(objectName="bridgeEdit", placeholderText="br0")
        self.display = QComboBox(objectName="displayCombo")
        for key, label in _DISPLAY:
            self.display.addItem(label, key)
        self.sound = QCheckBox("Sound", objectName="soundCheck")
        self.dbus = QCheckBox("Filtered session bus (D-Bus), only to:", objectName="dbusCheck")
        self.dbus_names = QLineEdit(objectName="dbusNames",
                                    placeholderText="org.freedesktop.Notifications, …")
        self.memory = QSpinBox(objectName="memoryLimit", maximum=1 << 20, suffix=" MiB",
                               specialValueText="No limit", singleStep=256)
        self.cpu = QSpinBox(objectName="cpuLimit", maximum=400, suffix=" %",
                            specialValueText="No limit", singleStep=25)
        self.processes = QSpinBox(objectName="processLimit", maximum=100000,
                                  specialValueText="No limit", singleStep=16)
        self.summary = QLabel(objectName="permissionSummary", wordWrap=True)
        self.error = plain_label(objectName="profileError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")

        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Description:", self.description_edit)
        form.addRow("", self.private_home)
        form.addRow(self.read_only)
        form.addRow(self.read_write)
        net_row = QHBoxLayout()
        net_row.addWidget(self.network)
        net_row.addWidget(QLabel("Bridge:"))
        net_row.addWidget(self.bridge_edit)
        form.addRow("Network:", net_row)
        form.addRow("Windows:", self.display)
        form.addRow("", self.sound)
        form.addRow(self.dbus, self.dbus_names)
        form.addRow("Memory:", self.memory)
        form.addRow("CPU:", self.cpu)
        form.addRow("Processes:", self.processes)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("<b>What this profile grants</b>"))
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        self._load(profile or SandboxProfile(name=""))
        for signal in (self.name_edit.textChanged, self.description_edit.textChanged,
                       self.bridge_edit.textChanged, self.dbus_names.textChanged,
                       self.network.currentIndexChanged, self.display.currentIndexChanged,
                       self.private_home.toggled, self.sound.toggled, self.dbus.toggled,
                       self.memory.valueChanged, self.cpu.valueChanged,
                       self.processes.valueChanged, self.read_only.changed,
                       self.read_write.changed, self.read_only.list.model().rowsRemoved,
                       self.read_write.list.model().rowsRemoved):
            signal.connect(self._validate)
        self._validate()

    def _load(self, p: SandboxProfile) -> None:
        self.name_edit.setText(p.name)
        self.description_edit.setText(p.description)
        self.private_home.setChecked(p.private_home)
        self.read_only.set_paths(p.read_only)
        self.read_write.set_paths(p.read_write)
        self.network.setCurrentIndex(self.network.findData(p.network))
        self.bridge_edit.setText(p.bridge)
        self.display.setCurrentIndex(self.display.findData(p.display))
        self.sound.setChecked(p.sound)
        self.dbus.setChecked(p.dbus == "filtered")
        self.dbus_names.setText(", ".join(p.dbus_talk))
        self.memory.setValue(p.memory_mb)
        self.cpu.setValue(p.cpu_percent)
        self.processes.setValue(p.max_processes)

    def profile(self) -> SandboxProfile:
        names = [n.strip() for n in self.dbus_names.text().split(",") if n.strip()]
        return SandboxProfile(
            name=self.name_edit.text().strip(),
            description=self.description_edit.text().strip(),
            private_home=self.private_home.isChecked(),
            read_only=self.read_only.paths(), read_write=self.read_write.paths(),
            network=self.network.currentData(), bridge=self.bridge_edit.text().strip(),
            display=self.display.currentData(), sound=self.sound.isChecked(),
            dbus="filtered" if self.dbus.isChecked() else "none",
            dbus_talk=names if self.dbus.isChecked() else [],
            memory_mb=self.memory.value(), cpu_percent=self.cpu.value(),
            max_processes=self.processes.value())

    def _validate(self, *_: object) -> None:
        self.bridge_edit.setEnabled(self.network.currentData() == "bridge")
        self.dbus_names.setEnabled(self.dbus.isChecked())
        profile = self.profile()
        try:
            profile.validate()
            message = ""
        except VirtStudioError as exc:
            message = exc.message
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setText(message)
        self.save_button.setEnabled(not message)
        self.summary.setText("<br>".join(f"• {html(line)}" for line in profile.permissions()))

    def accept(self) -> None:
        if self.save_button.isEnabled():
            super().accept()
