"""A confirmation box whose safe choice is the default."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from virtstudio.ui.plain_text import make_plain


def confirm_box(parent: QWidget, title: str, text: str, verb: str,
                then: Callable[[], object], *, name: str = "confirmBox",
                other: tuple[str, str, Callable[[], object]] | None = None) -> QMessageBox:
    """Open (non-modal) a box that runs ``then`` only when ``verb`` is clicked.

    ``other`` adds a second way out, (label, object name, what it runs), beside
    Cancel; Cancel stays the default.
    """
    box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                      QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName(name)
    make_plain(box)  # the text names machines, files and URIs that come from elsewhere
    go = box.addButton(verb, QMessageBox.ButtonRole.AcceptRole)
    go.setObjectName("confirmButton")
    actions = {go: then}
    if other is not None:
        label, object_name, action = other
        button = box.addButton(label, QMessageBox.ButtonRole.ResetRole)
        button.setObjectName(object_name)
        actions[button] = action
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.buttonClicked.connect(lambda button: actions[button]() if button in actions else None)
    box.open()
    return box
