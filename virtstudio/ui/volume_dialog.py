"""New Volume: a name, a size, thin or allocated, optionally a linked clone of another."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.units import format_bytes
from virtstudio.storage.sizes import parse_size
from virtstudio.storage.volumes import VolumeSpec, check_spec
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label

_PREALLOC = (("off", "Thin: space is used as data is written"),
             ("metadata", "Thin, with qcow2 metadata written now"),
             ("falloc", "Reserve all the space now (fast)"),
             ("full", "Write all the space now (slow)"))


class NewVolumeDialog(QDialog):
    def __init__(self, pool: StoragePool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.setWindowTitle(f"New Volume in {pool.name}")
        self.setMinimumWidth(460)
        self.name_edit = QLineEdit(objectName="volumeName", placeholderText="disk.qcow2")
        self.size_edit = QLineEdit(objectName="volumeSize", placeholderText="20G")
        self.format_combo = QComboBox(objectName="volumeFormat")
        self.format_combo.addItems(["qcow2", "raw"])
        self.prealloc_combo = QComboBox(objectName="volumePrealloc")
        for key, label in _PREALLOC:
            self.prealloc_combo.addItem(label, key)
        self.backing_combo = QComboBox(objectName="volumeBacking")
        self.backing_combo.addItem("None: an empty disk", None)
        for volume in pool.volumes:
            if volume.format == "qcow2":
                self.backing_combo.addItem(f"Linked clone of {volume.name}", volume)
        self.summary = QLabel(objectName="volumeSummary", wordWrap=True)
        self.error = plain_label(objectName="volumeError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Size:", self.size_edit)
        form.addRow("Format:", self.format_combo)
        form.addRow("Space:", self.prealloc_combo)
        form.addRow("Based on:", self.backing_combo)
        self.buttons, self.create_button = act_and_cancel(self)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        for edit in (self.name_edit, self.size_edit):
            edit.textChanged.connect(self._validate)
        for combo in (self.format_combo, self.prealloc_combo, self.backing_combo):
            combo.currentIndexChanged.connect(self._validate)
        self._spec: VolumeSpec | None = None
        self._validate()

    def _validate(self, *_: object) -> None:
        backing = self.backing_combo.currentData()
        if backing is not None:
            self.format_combo.setCurrentText("qcow2")
            if not self.size_edit.text().strip():
                self.size_edit.setPlaceholderText(format_bytes(backing.capacity))
        self._spec = None
        try:
            text = self.size_edit.text().strip()
            if not text and backing is not None:
                size = backing.capacity
            else:
                size = parse_size(text) if text else 0
            spec = VolumeSpec(self.name_edit.text().strip(), size,
                              self.format_combo.currentText(),
                              self.prealloc_combo.currentData(),
                              backing.path if backing is not None else "",
                              backing.format if backing is not None else "")
            problem = "Enter a size." if not size else check_spec(spec, self.pool)
        except VirtStudioError as exc:
            problem = exc.message
            spec = None
        if not self.name_edit.text().strip():
            problem = "Enter a name for the volume."
        self.error.setText(problem)
        self.create_button.setEnabled(not problem)
        if not problem and spec is not None:
            self._spec = spec
            after = self.pool.promised + spec.size
            ratio = after / self.pool.capacity if self.pool.capacity else 0
            self.summary.setText(
                f"The pool will promise {format_bytes(after)} on {format_bytes(self.pool.capacity)}"
                f" ({ratio:.2f}x)." + (" That is more than it holds: thin volumes fill it as "
                                       "they are written." if ratio > 1 else ""))
        else:
            self.summary.clear()

    def spec(self) -> VolumeSpec | None:
        return self._spec

    def accept(self) -> None:
        if self._spec is not None:
            super().accept()
