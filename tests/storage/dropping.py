"""Perform a drop on a widget the way Qt delivers one: drag enter, then drop."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget


def drop(widget: QWidget, mime: QMimeData, pos: QPoint | None = None) -> bool:
    """Drag ``mime`` over ``widget`` and drop it; True when the widget took the drop."""
    pos = pos if pos is not None else widget.rect().center()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def device_mime(window, path: str, qtbot) -> QMimeData:
    """What dragging ``path`` out of the Host devices list carries."""
    panel = window.storage_tools.devices
    # A read started before the device existed must end before ours starts.
    qtbot.waitUntil(panel.refresh_button.isEnabled, timeout=10000)
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        panel.refresh()
    item = panel.item_for(path)
    assert item is not None, f"{path} is not in the Host devices list"
    return panel.tree.mimeData([item])
