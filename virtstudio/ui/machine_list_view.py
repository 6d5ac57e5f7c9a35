"""The machine list's view: a tree view whose rows can be dragged onto sidebar folders.

Qt only starts a drag from rows whose model flags say "drag enabled", and the
view asks a model for its flags for every row on every layout: a Python
``flags`` override costs seconds on a host filling in thousands of machines.
So the view starts the drag itself from the mouse, and the model keeps Qt's
own flags.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QDrag, QMouseEvent
from PySide6.QtWidgets import QApplication, QTreeView, QWidget


class MachineListView(QTreeView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._press: QPoint | None = None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        left = event.button() == Qt.MouseButton.LeftButton
        self._press = event.position().toPoint() if left else None
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._press = None
        super().mouseReleaseEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        press = self._press
        if press is not None and event.buttons() & Qt.MouseButton.LeftButton:
            moved = (event.position().toPoint() - press).manhattanLength()
            if moved >= QApplication.startDragDistance() and self.selected_rows():
                self._press = None
                self.start_machine_drag()
                return
        super().mouseMoveEvent(event)

    def selected_rows(self) -> list:
        return self.selectionModel().selectedRows() if self.selectionModel() else []

    def start_machine_drag(self) -> Qt.DropAction:
        """Drag the selected machines; a sidebar folder that takes them files them."""
        rows = self.selected_rows()
        if not rows:
            return Qt.DropAction.IgnoreAction
        drag = QDrag(self)
        drag.setMimeData(self.model().mimeData(rows))
        return drag.exec(Qt.DropAction.CopyAction)
