"""New Pool: a type, then the fields that type needs, checked as you type.

For the types libvirt can discover (LVM volume groups, NFS exports, iSCSI
targets) a Find button asks the host and fills the fields from the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import describe
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.storage.pools import (
    DISCOVERY,
    POOL_TYPES,
    SOURCE_FORMATS,
    TYPE_FIELDS,
    TYPE_LABELS,
    FoundSource,
    PoolSpec,
    check_pool_spec,
)
from virtstudio.ui.bridge import relay
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label

Discover = Callable[[str, str], Future[list[FoundSource]]]
_BUILD_NOTES = {
    "dir": "Creates the folder.",
    "fs": "Writes a new file system on the device (refused if it has one).",
    "logical": "Makes a volume group on the disks (refused if they hold data).",
    "disk": "Writes a new partition table on the disk (refused if it has one).",
    "netfs": "Creates the mount point.",
}


class NewPoolDialog(QDialog):
    def __init__(self, existing_names: set[str], discover: Discover | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New Storage Pool")
        self.setMinimumWidth(520)
        self._existing = existing_names
        self._discover = discover
        self._spec: PoolSpec | None = None
        self.type_combo = QComboBox(objectName="poolType")
        for pool_type in POOL_TYPES:
            self.type_combo.addItem(f"{pool_type}: {TYPE_LABELS[pool_type]}", pool_type)
        self.name_edit = QLineEdit(objectName="poolName", placeholderText="vm-images")
        self.fields: dict[str, QLineEdit | QComboBox] = {}
        self.type_form = QFormLayout()
        self.find_button = QPushButton("Find on host…", objectName="poolFind")
        self.find_button.clicked.connect(self.find_sources)
        self.found_combo = QComboBox(objectName="poolFound")
        self.found_combo.activated.connect(self._use_found)
        self.found_combo.hide()
        find_row = QHBoxLayout()
        find_row.addWidget(self.find_button)
        find_row.addWidget(self.found_combo, 1)
        self.build_check = QCheckBox("Build it now", objectName="poolBuild")
        self.start_check = QCheckBox("Start it now", objectName="poolStart", checked=True)
        self.autostart_check = QCheckBox("Start with the host", objectName="poolAutostart")
        self.note = plain_label(objectName="poolNote", wordWrap=True)
        self.error = plain_label(objectName="poolError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        form = QFormLayout()
        form.addRow("Type:", self.type_combo)
        form.addRow("Name:", self.name_edit)
        self.buttons, self.create_button = act_and_cancel(self)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(self.type_form)
        layout.addLayout(find_row)
        for check in (self.build_check, self.start_check, self.autostart_check):
            layout.addWidget(check)
            check.toggled.connect(self._validate)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.found = CoreSignal("sources found")
        relay(self.found, self._show_found, self)
        self.name_edit.textChanged.connect(self._validate)
        self.type_combo.currentIndexChanged.connect(self._type_changed)
        self._type_changed()

    @property
    def pool_type(self) -> str:
        return self.type_combo.currentData()

    def set_type(self, pool_type: str) -> None:
        self.type_combo.setCurrentIndex(self.type_combo.findData(pool_type))

    def _type_changed(self, *_: object) -> None:
        while self.type_form.rowCount():
            self.type_form.removeRow(0)
        self.fields = {}
        for info in TYPE_FIELDS[self.pool_type]:
            if info.key == "source_format":
                widget: QLineEdit | QComboBox = QComboBox()
                widget.addItems(SOURCE_FORMATS[self.pool_type])
                widget.currentIndexChanged.connect(self._validate)
            else:
                widget = QLineEdit(placeholderText=info.placeholder)
                widget.textChanged.connect(self._validate)
            widget.setObjectName(f"pool_{info.key}")
            self.fields[info.key] = widget
            self.type_form.addRow(info.label, widget)
        discoverable = self.pool_type in DISCOVERY and self._discover is not None
        self.find_button.setVisible(discoverable)
        self.found_combo.clear()
        self.found_combo.hide()
        can_build = self.pool_type in _BUILD_NOTES
        self.build_check.setEnabled(can_build)
        self.build_check.setChecked(self.pool_type == "dir")
        self._validate()

    def field_text(self, key: str) -> str:
        widget = self.fields.get(key)
        if widget is None:
            return ""
        return (widget.currentText() if isinstance(widget, QComboBox) else widget.text()).strip()

    def _validate(self, *_: object) -> None:
        values = {key: self.field_text(key) for key in self.fields}
        spec = PoolSpec(self.pool_type, self.name_edit.text().strip(), **values)
        problem = check_pool_spec(spec, self._existing)
        self.error.setText(problem)
        self.create_button.setEnabled(not problem)
        self._spec = None if problem else spec
        notes = []
        if self.build_check.isChecked() and self.build_check.isEnabled():
            notes.append(_BUILD_NOTES[self.pool_type])
        if self.pool_type == "disk" and not self.build_check.isChecked():
            notes.append("The disk must already have a partition table.")
        self.note.setText(" ".join(notes))

    def find_sources(self) -> None:
        if self._discover is None:
            return
        server = self.field_text("source_host").split(" ")[0] if "source_host" in self.fields \
            else ""
        if DISCOVERY[self.pool_type] and not server:
            self.error.setText("Enter the server first; then Find asks it what it offers.")
            return
        self.find_button.setEnabled(False)
        self.find_button.setText("Looking…")
        future = self._discover(self.pool_type, server)
        pool_type = self.pool_type

        def done(fut: Future[list[FoundSource]]) -> None:
            try:
                self.found.emit(pool_type, fut.result(), "")
            except Exception as exc:
                self.found.emit(pool_type, [], describe(exc).message)

        future.add_done_callback(done)

    def _show_found(self, pool_type: str, found: list[FoundSource], error: str) -> None:
        self.find_button.setEnabled(True)
        self.find_button.setText("Find on host…")
        if pool_type != self.pool_type:
            return
        self.found_combo.clear()
        if error or not found:
            self.error.setText(f"Nothing found: {error}" if error else "Nothing found.")
            return
        for source in found:
            self.found_combo.addItem(source.label, source)
        self.found_combo.show()
        self._use_found(0)

    def _use_found(self, index: int) -> None:
        source = self.found_combo.itemData(index)
        if source is None:
            return
        for key, value in source.values.items():
            widget = self.fields.get(key)
            if isinstance(widget, QLineEdit):
                widget.setText(value)

    def spec(self) -> PoolSpec | None:
        return self._spec

    def options(self) -> dict[str, bool]:
        return {"build": self.build_check.isChecked() and self.build_check.isEnabled(),
                "start": self.start_check.isChecked(),
                "autostart": self.autostart_check.isChecked()}

    def accept(self) -> None:
        if self._spec is not None:
            super().accept()
