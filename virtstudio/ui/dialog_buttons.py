"""The button row of dialogs that create something: an OK button named for the act, Cancel."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton


def act_and_cancel(dialog: QDialog, verb: str = "Create") -> tuple[QDialogButtonBox, QPushButton]:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    act = buttons.button(QDialogButtonBox.StandardButton.Ok)
    act.setText(verb)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons, act
