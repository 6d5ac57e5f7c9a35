"""Clone a machine: a new name and, per disk, a full copy or a linked clone."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.machines.clone import DiskMode, check_clone, clone_disks, new_disk_path
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label, plain_tooltip


class CloneDialog(QDialog):
    def __init__(self, host: HostConnection, domain: Domain,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.domain = domain
        self.setWindowTitle(f"Clone {domain.name}")
        self.setMinimumWidth(560)
        self.name_edit = QLineEdit(f"{domain.name}-clone", objectName="cloneName")
        form = QFormLayout()
        form.addRow("New name:", self.name_edit)
        self.mode_combos: dict[str, QComboBox] = {}
        for disk in clone_disks(domain):
            combo = QComboBox(objectName=f"mode_{disk.target}")
            for mode in disk.modes:
                combo.addItem(mode.value, mode)
            combo.setEnabled(len(disk.modes) > 1)
            combo.setToolTip(plain_tooltip(disk.source))
            combo.currentIndexChanged.connect(self._validate)
            form.addRow(plain_label(f"{disk.target} ({disk.source}):"), combo)
            self.mode_combos[disk.target] = combo
        self.plan = QLabel(objectName="clonePlan", wordWrap=True)
        self.error = plain_label(objectName="cloneError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        buttons, self.clone_button = act_and_cancel(self, "Clone")
        self.clone_button.setObjectName("cloneButton")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The clone gets a new UUID and new MAC addresses.",
                                wordWrap=True))
        layout.addLayout(form)
        layout.addWidget(self.plan)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(self._validate)
        self._validate()

    def name(self) -> str:
        return self.name_edit.text().strip()

    def modes(self) -> dict[str, DiskMode]:
        return {target: combo.currentData() for target, combo in self.mode_combos.items()}

    def problem(self) -> str:
        # Leading or trailing spaces are a typing slip, but still not part of a valid name.
        if self.name_edit.text() != self.name():
            return "A machine name cannot contain spaces or slashes."
        return check_clone(self.host, self.domain, self.name(), self.modes())

    def _validate(self, *_: object) -> None:
        problem = self.problem()
        self.error.setText(problem)
        self.clone_button.setEnabled(not problem)
        lines = []
        if not problem:
            modes = self.modes()
            for disk in clone_disks(self.domain):
                mode = modes.get(disk.target, disk.default)
                if mode is DiskMode.SHARE:
                    lines.append(f"{escape(disk.target)}: shares {escape(disk.source)}")
                    continue
                path = escape(new_disk_path(disk, self.name(), mode))
                if mode is DiskMode.LINKED:
                    lines.append(
                        f"{escape(disk.target)}: new overlay {path} on {escape(disk.source)}, "
                        "which "
                        f"becomes a read-only base; {escape(self.domain.name)} moves onto a "
                        "new overlay of its own so the base never changes")
                else:
                    lines.append(f"{escape(disk.target)}: full copy to {path}")
        self.plan.setText("<br>".join(lines))

    def accept(self) -> None:
        if not self.problem():
            super().accept()
