"""Take Snapshot: a name, a note, and the kind, with the files it will create."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.entities import Domain
from virtstudio.machines.snapshots import (
    SnapshotKind,
    check_new_snapshot,
    kind_problems,
    planned_files,
)
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label, plain_tooltip

_KIND_HINTS = {
    SnapshotKind.INTERNAL: "Stored inside the qcow2 disks (and the memory too while it runs).",
    SnapshotKind.EXTERNAL_DISK: "The disks stay as they are; new writes go to new overlay "
                                "files beside them. The memory is not saved.",
    SnapshotKind.EXTERNAL_MEMORY: "Like disks only, and the memory is saved to a file, so a "
                                  "revert resumes exactly where the machine was.",
}


class SnapshotDialog(QDialog):
    def __init__(self, domain: Domain, existing: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.domain = domain
        self.existing = list(existing)
        self.setWindowTitle(f"Take a Snapshot of {domain.name}")
        self.setMinimumWidth(520)
        self.name_edit = QLineEdit(objectName="snapshotName",
                                   placeholderText="before-upgrade")
        self.description_edit = QLineEdit(objectName="snapshotDescription",
                                          placeholderText="optional note")
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Note:", self.description_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        self.files = plain_label(objectName="snapshotFiles", wordWrap=True)
        self.error = plain_label(objectName="snapshotError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        self.take_button: QPushButton | None = None
        self.kind_buttons: dict[SnapshotKind, QRadioButton] = {}
        group = QButtonGroup(self)
        problems = kind_problems(domain)
        for kind in SnapshotKind:
            button = QRadioButton(kind.value, objectName=f"kind_{kind.name.lower()}")
            hint = problems[kind] or _KIND_HINTS[kind]
            button.setToolTip(plain_tooltip(hint))
            button.setEnabled(not problems[kind])
            group.addButton(button)
            layout.addWidget(button)
            note = QLabel(escape(hint), wordWrap=True)
            note.setContentsMargins(24, 0, 0, 4)
            note.setEnabled(not problems[kind])
            layout.addWidget(note)
            self.kind_buttons[kind] = button
            button.toggled.connect(self._validate)
        for kind in (SnapshotKind.EXTERNAL_MEMORY, SnapshotKind.INTERNAL,
                     SnapshotKind.EXTERNAL_DISK):
            if not problems[kind]:
                self.kind_buttons[kind].setChecked(True)
                break
        layout.addWidget(self.files)
        layout.addWidget(self.error)
        buttons, self.take_button = act_and_cancel(self, "Take Snapshot")
        self.take_button.setObjectName("takeButton")
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(self._validate)
        self._validate()

    def kind(self) -> SnapshotKind | None:
        return next((k for k, b in self.kind_buttons.items() if b.isChecked()), None)

    def name(self) -> str:
        return self.name_edit.text().strip()

    def description(self) -> str:
        return self.description_edit.text().strip()

    def problem(self) -> str:
        kind = self.kind()
        if kind is None:
            return "No kind of snapshot is possible for this machine now."
        return check_new_snapshot(self.domain, self.existing, self.name(), kind)

    def _validate(self, *_: object) -> None:
        problem = self.problem()
        self.error.setText(problem)
        if self.take_button is not None:
            self.take_button.setEnabled(not problem)
        kind = self.kind()
        files = planned_files(self.domain, self.name(), kind) if kind and not problem else []
        self.files.setText("Creates: " + ", ".join(files) if files else "")

    def accept(self) -> None:
        if not self.problem():
            super().accept()
