"""A confirmation box whose safe choice is the default."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from virtstudio.ui.plain_text import make_plain


def confirm_box(parent: QWidget, title: str, text: str, verb: str,
                then: Callable[[], object]) -> QMessageBox:
    """Open (non-modal) a box that runs ``then`` only when ``verb`` is clicked."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                      QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("confirmBox")
    make_plain(box)  # the text names machines, files and URIs that come from elsewhere
    go = box.addButton(verb, QMessageBox.ButtonRole.AcceptRole)
    go.setObjectName("confirmButton")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.buttonClicked.connect(lambda button: then() if button is go else None)
    box.open()
    return box
