"""Fullscreen console: the toolbar floats over the screen and hides after a moment.

While fullscreen, the toolbar leaves the layout (so hiding and showing it
never resizes the guest's screen) and floats at the top; it hides when the
pointer has left it for a moment and comes back when the pointer reaches the
top edge.  The keyboard-grab release hint floats at the bottom and stays in
sight whether or not the toolbar does.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QBoxLayout, QLabel, QWidget

from virtstudio.ui.plain_text import plain_label

HIDE_DELAY_MS = 1500
TOP_EDGE_PX = 3


class FullscreenToolbar(QObject):
    def __init__(self, pane: QWidget, layout: QBoxLayout, toolbar: QWidget, view: QWidget,
                 grab_hint: QLabel) -> None:
        super().__init__(pane)
        self.pane = pane
        self.layout = layout
        self.toolbar = toolbar
        self.view = view
        self.grab_hint = grab_hint
        self.active = False
        # Where the pointer is, from the events themselves: the toolbar's hover state is
        # stale after input that skips enter/leave (synthetic events, some platforms).
        self.pointer_on_toolbar = False
        self.hint = plain_label(parent=pane, objectName="fullscreenGrabHint")
        self.hint.setStyleSheet("background: rgba(0, 0, 0, 170); color: white; padding: 4px;")
        self.hint.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hint.hide()
        self.timer = QTimer(self, singleShot=True, interval=HIDE_DELAY_MS)
        self.timer.timeout.connect(self._hide_toolbar)
        view.grab_changed.connect(lambda _grabbed: self._update_hint())
        view.installEventFilter(self)
        pane.installEventFilter(self)
        toolbar.installEventFilter(self)

    def enter(self) -> None:
        if self.active:
            return
        self.active = True
        # Fullscreen may also end outside the toolbar's button (window manager, Escape).
        self.pane.window().installEventFilter(self)
        self.layout.removeWidget(self.toolbar)
        self.toolbar.setAutoFillBackground(True)
        self.show_toolbar()
        self._update_hint()

    def leave(self) -> None:
        if not self.active:
            return
        self.active = False
        self.pane.window().removeEventFilter(self)
        self.timer.stop()
        self.toolbar.setAutoFillBackground(False)
        self.layout.insertWidget(0, self.toolbar)
        self.toolbar.show()
        self.hint.hide()

    def show_toolbar(self) -> None:
        self._place()
        self.toolbar.show()
        self.toolbar.raise_()
        self.hint.raise_()
        self.timer.start()

    def _hide_toolbar(self) -> None:
        if not self.active:
            return
        if self.pointer_on_toolbar:
            self.timer.start()  # the user is using it: try again later
            return
        self.toolbar.hide()

    def _update_hint(self) -> None:
        text = self.grab_hint.text()
        self.hint.setText(text)
        self.hint.setVisible(self.active and bool(text))
        self._place()
        self.hint.raise_()

    def _place(self) -> None:
        width = self.pane.width()
        self.toolbar.setGeometry(0, 0, width, self.toolbar.sizeHint().height())
        self.hint.adjustSize()
        self.hint.move((width - self.hint.width()) // 2,
                       self.pane.height() - self.hint.height() - 8)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.active:
            return False
        kind = event.type()
        if kind == QEvent.Type.WindowStateChange and watched is self.pane.window():
            if not self.pane.window().isFullScreen():
                self.leave()
        elif watched is self.toolbar and kind in (QEvent.Type.Enter, QEvent.Type.Leave):
            self.pointer_on_toolbar = kind == QEvent.Type.Enter
        elif kind == QEvent.Type.Resize and watched is self.pane:
            self._place()
        elif kind == QEvent.Type.MouseButtonPress and watched is self.view:
            self.pointer_on_toolbar = False
        elif kind == QEvent.Type.MouseMove and isinstance(event, QMouseEvent):
            if watched is self.view:
                self.pointer_on_toolbar = False
            at = watched.mapTo(self.pane, event.position().toPoint()) if isinstance(
                watched, QWidget) else QPoint()
            if at.y() <= TOP_EDGE_PX or watched is self.toolbar:
                self.show_toolbar()
        return False
