"""Error messages: the plain sentence first, libvirt's detail behind a disclosure."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from virtstudio.core.errors import UserError
from virtstudio.ui.plain_text import make_plain


def error_box(parent: QWidget | None, title: str, error: UserError) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, error.message,
                      QMessageBox.StandardButton.Close, parent)
    box.setObjectName("errorBox")
    make_plain(box)  # the message often quotes names and libvirt's own words
    if error.detail:
        box.setDetailedText(error.detail)
    return box


def show_error(parent: QWidget | None, title: str, error: UserError) -> None:
    error_box(parent, title, error).exec()
