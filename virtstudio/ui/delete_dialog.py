"""Delete a machine: say exactly what goes, let the user pick the disks."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from virtstudio.core.domain_actions import DiskChoice
from virtstudio.core.entities import Domain
from virtstudio.ui.plain_text import plain_tooltip


class DeleteVmDialog(QDialog):
    def __init__(self, domain: Domain, choices: list[DiskChoice],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Delete {domain.name}?")
        self.setMinimumWidth(520)
        self._checks: list[tuple[QCheckBox, DiskChoice]] = []
        layout = QVBoxLayout(self)

        lead = (f"<b>Delete the virtual machine {escape(domain.name)}?</b><br>"
                "Its definition, its snapshot metadata and any saved state are removed. "
                "This cannot be undone.")
        if domain.state.is_active:
            lead += "<br><b>It is running and will be forced off first.</b>"
        intro = QLabel(lead, wordWrap=True, objectName="deleteIntro")
        layout.addWidget(intro)

        if choices:
            layout.addWidget(QLabel("Also delete these disks (their data is lost):"))
        for choice in choices:
            text = f"{choice.target}: {choice.source}"
            if not choice.removable:
                text += f"  — kept: {choice.why_not}"
            check = QCheckBox(text)
            check.setObjectName(f"disk_{choice.target}")
            check.setChecked(choice.removable and choice.checked)
            check.setEnabled(choice.removable)
            if not choice.removable:
                check.setToolTip(
                    plain_tooltip(f"This disk is kept because it is {choice.why_not}."))
            layout.addWidget(check)
            self._checks.append((check, choice))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = buttons.addButton("Delete",
                                               QDialogButtonBox.ButtonRole.DestructiveRole)
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.setAutoDefault(False)
        cancel = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        self.delete_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def disks_to_remove(self) -> list[str]:
        return [c.source for check, c in self._checks if check.isChecked() and c.removable]
