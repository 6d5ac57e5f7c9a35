"""The confirmation every drop opens: exactly what will be written, and nothing before Go.

A plan that would read a file the user has to vouch for (a backing file outside
every storage pool) gets one field per file; Go stays off until each holds
that file's name, typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.storage.drop_plans import DropPlan
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.typed_name_confirm import BackingFileConfirm, TypedNameField


@dataclass(frozen=True)
class DropChoice:
    """What the user may make of the dropped thing, and what it needs from them."""

    key: str
    label: str
    wants_name: bool = True
    wants_size: bool = False
    size_hint: str = ""


Planner = Callable[[str, str, str], DropPlan]  # (choice key, name, size text) -> plan


class DropConfirmDialog(QDialog):
    def __init__(self, title: str, choices: list[DropChoice], planner: Planner,
                 runner: JobRunner, default_name: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropConfirm")
        self.setWindowTitle(title)
        self.setMinimumWidth(520)
        self._planner = planner
        self._runner = runner
        self._choices = {c.key: c for c in choices}
        self.plan: DropPlan | None = None
        self.job: Job | None = None
        self.kind_combo = QComboBox(objectName="dropKind")
        for choice in choices:
            self.kind_combo.addItem(choice.label, choice.key)
        self.name_edit = QLineEdit(default_name, objectName="dropName")
        self.size_edit = QLineEdit(objectName="dropSize")
        self.writes = QLabel(objectName="dropWrites", wordWrap=True)
        self.reads_title = QLabel("<b>This will read:</b>")
        self.reads = QLabel(objectName="dropReads", wordWrap=True)
        self.reads.setTextFormat(Qt.TextFormat.PlainText)
        self.file_confirm = BackingFileConfirm("drop", "copy")
        self.file_confirm.changed.connect(self._update_go)
        self.error = plain_label(objectName="dropError", wordWrap=True)
        # A device that carries something is erased only after its name is typed here.
        self.erase_confirm = TypedNameField("dropTypeDevice", label_name="dropTypeLabel")
        self.erase_confirm.changed.connect(self._update_go)
        self.type_label, self.type_edit = self.erase_confirm.label, self.erase_confirm.edit
        self.error.setStyleSheet("color: #b3261e;")
        self.form = QFormLayout()
        self.form.addRow("Make:", self.kind_combo)
        self.form.addRow("Name:", self.name_edit)
        self.form.addRow("Size:", self.size_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.go_button = self.buttons.addButton("Go", QDialogButtonBox.ButtonRole.AcceptRole)
        self.go_button.setObjectName("dropGo")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(QLabel("<b>This will write:</b>"))
        layout.addWidget(self.writes)
        layout.addWidget(self.reads_title)
        layout.addWidget(self.reads)
        layout.addWidget(self.file_confirm)
        layout.addWidget(self.erase_confirm)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.kind_combo.currentIndexChanged.connect(self._replan)
        self.name_edit.textChanged.connect(self._replan)
        self.size_edit.textChanged.connect(self._replan)
        self._replan()

    @property
    def choice(self) -> DropChoice:
        return self._choices[self.kind_combo.currentData()]

    def choose(self, key: str) -> None:
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(key))

    def _replan(self, *_: object) -> None:
        choice = self.choice
        self.form.setRowVisible(self.kind_combo, len(self._choices) > 1)
        self.form.setRowVisible(self.name_edit, choice.wants_name)
        self.form.setRowVisible(self.size_edit, choice.wants_size)
        self.size_edit.setPlaceholderText(choice.size_hint)
        self.plan = None
        try:
            plan = self._planner(choice.key, self.name_edit.text().strip(),
                                 self.size_edit.text().strip())
        except VirtStudioError as exc:
            self.error.setText(exc.message)
            self.writes.clear()
        except Exception as exc:  # a probe (qemu-img, lsblk) failing is bad input too
            self.error.setText(describe(exc).message)
            self.writes.clear()
        else:
            self.plan = plan
            self.error.clear()
            self.writes.setText("<ul>" + "".join(f"<li>{escape(line, quote=False)}</li>"
                                                 for line in plan.writes) + "</ul>")
            self.go_button.setText(plan.verb)
        reads = self.plan.reads if self.plan is not None else ()
        self.reads.setText("\n".join(f"• {line}" for line in reads))
        self.reads_title.setVisible(bool(reads))
        self.reads.setVisible(bool(reads))
        self.file_confirm.show_paths(self.plan.confirm_names if self.plan is not None else ())
        wanted = self.plan.type_to_confirm if self.plan is not None else ""
        self.erase_confirm.ask(wanted, f"Type {wanted} to erase what it holds:" if wanted else "")
        self._update_go()

    @property
    def confirm_edits(self) -> dict[str, QLineEdit]:
        return self.file_confirm.edits

    def confirmed(self) -> set[str]:
        """The files whose names the user typed."""
        return self.file_confirm.confirmed()

    def _confirmed(self) -> bool:
        """Every file to read named, and the device to erase typed, where asked."""
        if self.plan is None or self.plan.missing_confirmations(self.confirmed()):
            return False
        return not self.plan.type_to_confirm or self.erase_confirm.confirmed()

    def _update_go(self, *_: object) -> None:
        self.go_button.setEnabled(self._confirmed())

    def accept(self) -> None:
        if self.plan is None or not self._confirmed():
            return
        try:
            self.job = self.plan.submit(self._runner, self.confirmed())
        except VirtStudioError as exc:
            self.error.setText(exc.message)
            return
        super().accept()
