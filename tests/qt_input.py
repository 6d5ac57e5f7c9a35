"""Driving Qt widgets as a user does: clicks where they land, typing over old text."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QWidget


def click(qtbot, widget: QWidget) -> None:
    if isinstance(widget, QAbstractButton) and widget.isCheckable():
        # Radio buttons and check boxes take clicks on their indicator and label only.
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(6, widget.height() // 2))
    else:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def retype(qtbot, edit: QLineEdit, text: str) -> None:
    """Select what the field holds and type ``text`` over it."""
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, text)


def choose(qtbot, combo: QComboBox, typed: str) -> object:
    """Pick a combo box entry by typing its start, as keyboard users do; returns its data."""
    combo.setFocus()
    qtbot.keyClicks(combo, typed)
    return combo.currentData()
