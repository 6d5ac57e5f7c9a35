"""Text from guests, hosts and files shown as what it is: plain text, never markup.

Qt guesses whether a label's, a message box's or a tooltip's text is HTML
(``Qt.mightBeRichText``), so a machine named ``<img src=...>`` would be
drawn as markup.  Labels and boxes that show such text are set to plain
text; where a label or tooltip is rich on purpose (bold headings), every
foreign piece goes in escaped.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


def plain_label(text: str = "", parent: QWidget | None = None, **properties: object) -> QLabel:
    """A QLabel that shows ``text`` (and every later setText) literally."""
    label = QLabel(parent, **properties)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def make_plain(*widgets: QLabel | QMessageBox) -> None:
    """Have existing labels or message boxes show their text literally from now on."""
    for widget in widgets:
        widget.setTextFormat(Qt.TextFormat.PlainText)


def html(text: object) -> str:
    """``text`` escaped for a label or tooltip that is rich text on purpose."""
    return escape(str(text), quote=False)


def rich_tooltip(*lines: str) -> str:
    """Lines already escaped (or made with ``html``), as a tooltip Qt reads as rich text.

    The wrapper makes Qt treat the tooltip as rich text even when nothing in
    it looks like markup, so an escaped ``&lt;`` always shows as ``<``.
    """
    return "<qt>" + "<br>".join(lines) + "</qt>"


def plain_tooltip(*lines: str) -> str:
    """Foreign lines as a tooltip that shows them literally."""
    return rich_tooltip(*(html(line) for line in lines))
