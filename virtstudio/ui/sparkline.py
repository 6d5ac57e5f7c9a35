"""Paints a cell's recent history as a small filled sparkline under its value."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from virtstudio.ui.vm_model import VmColumn, VmRole

_LINE = QColor("#3a76c4")
_FILL = QColor(58, 118, 196, 60)


class SparklineDelegate(QStyledItemDelegate):
    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        history = index.data(VmRole.HISTORY) or []
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text = opt.text
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        rect = opt.rect.adjusted(3, 3, -3, -3)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if len(history) >= 2 and rect.width() > 4:
            # Percentages share a fixed 0-100 scale; rates scale to their own peak.
            top = 100.0 if index.column() == VmColumn.CPU else max(max(history), 1e-9)
            step = rect.width() / (len(history) - 1)
            path = QPainterPath()
            path.moveTo(rect.left(), rect.bottom())
            for i, value in enumerate(history):
                y = rect.bottom() - (value / top) * rect.height()
                path.lineTo(QPointF(rect.left() + i * step, y))
            path.lineTo(rect.right(), rect.bottom())
            path.closeSubpath()
            painter.fillPath(path, _FILL)
            painter.setPen(QPen(_LINE, 1.2))
            line = QPainterPath()
            for i, value in enumerate(history):
                point = QPointF(rect.left() + i * step,
                                rect.bottom() - (value / top) * rect.height())
                if i == 0:
                    line.moveTo(point)
                else:
                    line.lineTo(point)
            painter.drawPath(line)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(opt.palette.color(role))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         text)
        painter.restore()
