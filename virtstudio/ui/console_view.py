"""The console: a VM's screen in a widget, with scaling, send-key, screenshot and detach."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QCursor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from virtstudio.console import keymap
from virtstudio.console.session import ConsoleSession
from virtstudio.ui.bridge import relay
from virtstudio.ui.console_clipboard import ClipboardShare
from virtstudio.ui.console_fullscreen import FullscreenToolbar
from virtstudio.ui.plain_text import plain_label

_SPECIAL_KEYSYMS = {
    Qt.Key.Key_Return: (0xFF0D, 0x1C), Qt.Key.Key_Enter: (0xFF8D, 0xE01C),
    Qt.Key.Key_Backspace: (0xFF08, 0x0E), Qt.Key.Key_Tab: (0xFF09, 0x0F),
    Qt.Key.Key_Escape: (0xFF1B, 0x01), Qt.Key.Key_Delete: (0xFFFF, 0xE053),
    Qt.Key.Key_Left: (0xFF51, 0xE04B), Qt.Key.Key_Up: (0xFF52, 0xE048),
    Qt.Key.Key_Right: (0xFF53, 0xE04D), Qt.Key.Key_Down: (0xFF54, 0xE050),
    Qt.Key.Key_Home: (0xFF50, 0xE047), Qt.Key.Key_End: (0xFF57, 0xE04F),
    Qt.Key.Key_PageUp: (0xFF55, 0xE049), Qt.Key.Key_PageDown: (0xFF56, 0xE051),
    Qt.Key.Key_Shift: keymap.SHIFT_L, Qt.Key.Key_Control: keymap.CONTROL_L,
    Qt.Key.Key_Alt: keymap.ALT_L,
}
for _n in range(1, 13):
    _SPECIAL_KEYSYMS[getattr(Qt.Key, f"Key_F{_n}")] = keymap.function_key(_n)

SCALE_FIT = "fit"
SCALE_ONE = "1:1"
SCALE_RESIZE = "resize"
# A window being dragged to a new size sends one request when it settles, not dozens.
RESIZE_DEBOUNCE_MS = 400
MIN_GUEST_SIZE = 64
RESIZE_UNSUPPORTED_TIP = ("The guest's screen size cannot be changed from here: a VNC display "
                          "must announce ExtendedDesktopSize (older servers do not), a SPICE "
                          "display needs spice-glib and spice-vdagent running in the guest.")
RESIZE_TIP = "Scale the screen to the window and ask the guest to take the window's size"


def key_for_event(event: QKeyEvent) -> tuple[int, int | None] | None:
    """(keysym, XT scancode) for a Qt key event; the scancode when the platform gives one."""
    scancode = None
    native = event.nativeScanCode()
    if native > 8:  # X11 and Wayland report evdev codes + 8
        scancode = keymap.evdev_to_xt(native - 8)
    special = _SPECIAL_KEYSYMS.get(Qt.Key(event.key()))
    if special is not None:
        return special[0], scancode if scancode is not None else special[1]
    text = event.text()
    if len(text) == 1:
        us = keymap.US_KEYS.get(text)
        if us is not None and scancode is None:
            scancode = us[1]
        return (ord(text) if ord(text) < 0x100 else 0x01000000 | ord(text)), scancode
    return None


class ConsoleView(QWidget):
    """Paints the framebuffer and forwards keys and the mouse to the session."""

    grab_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("consoleView")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.session: ConsoleSession | None = None
        self.scale = SCALE_FIT
        self._buttons = 0
        self._shift_down = False
        self._relays: list = []
        self._resize_timer = QTimer(self, singleShot=True, interval=RESIZE_DEBOUNCE_MS)
        self._resize_timer.timeout.connect(self.resize_guest)

    def set_session(self, session: ConsoleSession | None) -> None:
        for r in self._relays:
            r.detach()
        self._relays = []
        self.session = session
        if session is not None:
            self._relays = [relay(session.updated, self._on_update, self),
                            relay(session.resized, lambda *_: self.update(), self),
                            relay(session.cursor_changed, self._on_cursor, self)]
        self.update()

    def image(self) -> QImage | None:
        fb = self.session.framebuffer if self.session is not None else None
        if fb is None:
            return None
        # A copy: the decoder thread keeps writing into the framebuffer.
        return QImage(bytes(fb.data), fb.width, fb.height, fb.stride,
                      QImage.Format.Format_RGB32).copy()

    def target_rect(self) -> QRect:
        fb = self.session.framebuffer if self.session is not None else None
        if fb is None:
            return QRect()
        if self.scale == SCALE_ONE:
            return QRect(0, 0, fb.width, fb.height)
        factor = min(self.width() / fb.width, self.height() / fb.height)
        w, h = int(fb.width * factor), int(fb.height * factor)
        return QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)

    def set_scale(self, scale: str) -> None:
        self.scale = scale
        if scale == SCALE_RESIZE:
            self._resize_timer.start()
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.scale == SCALE_RESIZE:
            self._resize_timer.start()  # restarts: only the settled size is sent

    def resize_guest(self) -> None:
        """Ask the guest for this widget's size (in device pixels), if it can follow."""
        session = self.session
        if self.scale != SCALE_RESIZE or session is None or not session.desktop_resizes:
            return
        ratio = self.devicePixelRatioF()
        width, height = int(self.width() * ratio), int(self.height() * ratio)
        fb = session.framebuffer
        if (width < MIN_GUEST_SIZE or height < MIN_GUEST_SIZE
                or (fb is not None and (fb.width, fb.height) == (width, height))):
            return
        session.resize_guest(width, height)

    def _on_update(self, rects: list[tuple[int, int, int, int]]) -> None:
        self.update()

    def _on_cursor(self, shape: object) -> None:
        if shape is None:
            self.setCursor(Qt.CursorShape.BlankCursor)
            return
        image = QImage(shape.bgra, shape.width, shape.height, shape.width * 4,
                       QImage.Format.Format_ARGB32).copy()
        self.setCursor(QCursor(QPixmap.fromImage(image), shape.hotspot_x, shape.hotspot_y))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        image = self.image()
        if image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                                  self.scale != SCALE_ONE)
            painter.drawImage(self.target_rect(), image)
        painter.end()

    # ---- input -------------------------------------------------------------------------

    def _guest_point(self, pos: QPoint) -> tuple[int, int] | None:
        fb = self.session.framebuffer if self.session is not None else None
        target = self.target_rect()
        if fb is None or target.width() <= 0:
            return None
        x = (pos.x() - target.x()) * fb.width / target.width()
        y = (pos.y() - target.y()) * fb.height / target.height()
        return int(x), int(y)

    def _send_pointer(self, event: QMouseEvent | QWheelEvent, buttons: int) -> None:
        point = self._guest_point(event.position().toPoint())
        if point is not None and self.session is not None:
            self.session.pointer(point[0], point[1], buttons)

    @staticmethod
    def _button_mask(buttons: Qt.MouseButton) -> int:
        mask = 0
        if buttons & Qt.MouseButton.LeftButton:
            mask |= 1
        if buttons & Qt.MouseButton.MiddleButton:
            mask |= 2
        if buttons & Qt.MouseButton.RightButton:
            mask |= 4
        return mask

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        self.grabKeyboard()
        self.grab_changed.emit(True)
        self._send_pointer(event, self._button_mask(event.buttons()))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._send_pointer(event, self._button_mask(event.buttons()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._send_pointer(event, self._button_mask(event.buttons()))

    def wheelEvent(self, event: QWheelEvent) -> None:
        step = 8 if event.angleDelta().y() > 0 else 16
        mask = self._button_mask(event.buttons())
        self._send_pointer(event, mask | step)
        self._send_pointer(event, mask)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Ctrl+Alt releases the keyboard, as in other viewers.
        mods = event.modifiers()
        if (mods & Qt.KeyboardModifier.ControlModifier and mods & Qt.KeyboardModifier.AltModifier
                and event.key() in (Qt.Key.Key_Control, Qt.Key.Key_Alt)):
            self.release_grab()
        self._key(event, True)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        self._key(event, False)

    def _key(self, event: QKeyEvent, down: bool) -> None:
        if self.session is None:
            return
        key = key_for_event(event)
        if key is None:
            return
        keysym, scancode = key
        text = event.text()
        needs_shift = len(text) == 1 and text in keymap.US_KEYS and keymap.US_KEYS[text][2]
        # Offscreen platforms and synthetic events carry no Shift press of their own.
        if down and needs_shift and not self._shift_down:
            self.session.key(True, *keymap.SHIFT_L)
        self.session.key(down, keysym, scancode)
        if not down and needs_shift and not self._shift_down:
            self.session.key(False, *keymap.SHIFT_L)
        if event.key() == Qt.Key.Key_Shift:
            self._shift_down = down

    def send_combo(self, keys: list[tuple[int, int]]) -> None:
        """Press ``keys`` in order, then release them in reverse (e.g. Ctrl+Alt+Del)."""
        if self.session is None:
            return
        for keysym, scancode in keys:
            self.session.key(True, keysym, scancode)
        for keysym, scancode in reversed(keys):
            self.session.key(False, keysym, scancode)

    def release_grab(self) -> None:
        self.releaseKeyboard()
        self.grab_changed.emit(False)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.release_grab()
        super().focusOutEvent(event)


class ConsolePane(QWidget):
    """The console with its toolbar, or a page saying why there is no screen to show."""

    detach_requested = Signal()
    session_closed = Signal(object)  # the session, after its connection ended
    protocol_chosen = Signal(str)  # "vnc" or "spice"
    picture_incomplete = Signal(str)  # what the client could not draw
    viewer_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("consolePane")
        self.view = ConsoleView()
        self.message = plain_label(objectName="consoleMessage", wordWrap=True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.view)

        self.scale_combo = QComboBox(objectName="scaleCombo")
        self.scale_combo.addItem("Fit to window", SCALE_FIT)
        self.scale_combo.addItem("Actual size (1:1)", SCALE_ONE)
        self.scale_combo.addItem("Fit and resize guest", SCALE_RESIZE)
        self._resize_item_allowed(False)
        self.scale_combo.currentIndexChanged.connect(self._scale_changed)
        self.keys_button = QToolButton(text="Send key", objectName="sendKeyButton")
        self.keys_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.keys_button)
        self._add_combo(menu, "Ctrl+Alt+Del", [keymap.CONTROL_L, keymap.ALT_L, keymap.DELETE])
        self._add_combo(menu, "Ctrl+Alt+Backspace",
                        [keymap.CONTROL_L, keymap.ALT_L, (0xFF08, 0x0E)])
        for n in range(1, 13):
            self._add_combo(menu, f"Ctrl+Alt+F{n}",
                            [keymap.CONTROL_L, keymap.ALT_L, keymap.function_key(n)])
        self._add_combo(menu, "Alt+SysRq", [keymap.ALT_L, keymap.SYSRQ])
        self.keys_button.setMenu(menu)
        self.shot_button = QToolButton(text="Screenshot…", objectName="screenshotButton")
        self.shot_button.clicked.connect(self._save_screenshot)
        self.full_button = QToolButton(text="Fullscreen", objectName="fullscreenButton")
        self.full_button.clicked.connect(self._toggle_fullscreen)
        self.detach_button = QToolButton(text="Detach", objectName="detachButton")
        self.detach_button.clicked.connect(self.detach_requested.emit)
        self.clipboard_button = QToolButton(objectName="clipboardButton")
        self.clipboard = ClipboardShare(self.clipboard_button, self)
        self.grab_hint = plain_label(objectName="grabHint")
        self.view.grab_changed.connect(self._grab_hint)
        bar = QHBoxLayout()
        for w in (self.scale_combo, self.keys_button, self.shot_button, self.full_button,
                  self.detach_button, self.clipboard_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.grab_hint)
        self.toolbar = QWidget()
        self.toolbar.setLayout(bar)
        # Below the screen, usable even while a message shows: which display to use,
        # and remote-viewer for screens VirtStudio cannot show.
        self.protocol_combo = QComboBox(objectName="protocolCombo")
        self.protocol_combo.setToolTip("Which of the machine's displays to show")
        self.protocol_combo.activated.connect(
            lambda i: self.protocol_chosen.emit(self.protocol_combo.itemData(i)))
        self.viewer_button = QPushButton("Open in remote-viewer", objectName="viewerButton")
        self.viewer_button.setToolTip("Show this screen in the separate remote-viewer program")
        self.viewer_button.clicked.connect(self.viewer_requested.emit)
        self.incomplete_hint = plain_label(objectName="incompleteHint", wordWrap=True)
        self.incomplete_hint.hide()
        choices = QHBoxLayout()
        choices.addWidget(self.protocol_combo)
        choices.addWidget(self.incomplete_hint, 1)
        choices.addStretch(1)
        choices.addWidget(self.viewer_button)
        self.choices = QWidget()
        self.choices.setLayout(choices)
        self.protocol_combo.hide()
        self.viewer_button.hide()
        self.choices.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.choices)
        self.session: ConsoleSession | None = None
        self.fullscreen = FullscreenToolbar(self, layout, self.toolbar, self.view,
                                            self.grab_hint)
        self.show_message("The console appears here while the machine runs.")

    def _add_combo(self, menu: QMenu, label: str, keys: list[tuple[int, int]]) -> None:
        action = QAction(label, menu)
        action.triggered.connect(lambda: self.view.send_combo(keys))
        menu.addAction(action)

    def set_protocols(self, kinds: list[str], current: str) -> None:
        """Offer a choice of display only when the machine has both VNC and SPICE."""
        self.protocol_combo.clear()
        for kind in kinds:
            self.protocol_combo.addItem(f"{kind.upper()} display", kind)
        self.protocol_combo.setCurrentIndex(max(0, kinds.index(current) if current in kinds
                                                else 0))
        self.protocol_combo.setVisible(len(kinds) > 1)
        self._update_choices()

    def offer_viewer(self, offered: bool) -> None:
        self.viewer_button.setVisible(offered)
        self._update_choices()

    def _update_choices(self) -> None:
        self.choices.setVisible(not self.protocol_combo.isHidden()
                                or not self.viewer_button.isHidden()
                                or not self.incomplete_hint.isHidden())

    def _on_incomplete(self, what: str) -> None:
        self.incomplete_hint.setText(
            f"Part of this screen uses drawing VirtStudio cannot show ({what}), so the "
            "picture may be incomplete.")
        self.incomplete_hint.show()
        self._update_choices()
        self.picture_incomplete.emit(what)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self.toolbar.setEnabled(False)

    def attach(self, session: ConsoleSession) -> None:
        self.detach_session()
        self.session = session
        self.view.set_session(session)
        self._relay = relay(session.state_changed, self._on_state, self)
        self._incomplete_relay = relay(session.incomplete, self._on_incomplete, self)
        self._resizable_relay = relay(session.desktop_resizable, self._on_resizable, self)
        self.clipboard.set_session(session)
        self.toolbar.setToolTip(f"This screen is shown by {session.client_name}.")
        # Known only once the server answers; a SPICE display never can.
        self._resize_item_allowed(False, fall_back=session.protocol != "vnc")
        self.incomplete_hint.hide()
        self._update_choices()
        self._on_state(session)
        session.start()

    def detach_session(self) -> None:
        if self.session is not None:
            self._relay.detach()
            self._incomplete_relay.detach()
            self._resizable_relay.detach()
            self.clipboard.set_session(None)
            self.view.set_session(None)
            session, self.session = self.session, None
            QTimer.singleShot(0, session.stop)

    def _on_state(self, session: ConsoleSession) -> None:
        if session is not self.session:
            return
        if session.state == "connected":
            self.stack.setCurrentWidget(self.view)
            self.toolbar.setEnabled(True)
        elif session.state == "connecting":
            self.show_message("Connecting to the console…")
        elif session.state == "closed":
            self.show_message(f"The console closed: {session.error}" if session.error
                              else "The console closed.")
            self.session_closed.emit(session)

    def _scale_changed(self) -> None:
        self.view.set_scale(self.scale_combo.currentData())

    def _resize_item_allowed(self, allowed: bool, fall_back: bool = True) -> None:
        item = self.scale_combo.model().item(self.scale_combo.findData(SCALE_RESIZE))
        item.setEnabled(allowed)
        item.setToolTip(RESIZE_TIP if allowed else RESIZE_UNSUPPORTED_TIP)
        if fall_back and not allowed and self.scale_combo.currentData() == SCALE_RESIZE:
            self.scale_combo.setCurrentIndex(self.scale_combo.findData(SCALE_FIT))

    def _on_resizable(self) -> None:
        self._resize_item_allowed(True)
        self.view.resize_guest()

    def _grab_hint(self, grabbed: bool) -> None:
        self.grab_hint.setText("Keyboard goes to the guest — press Ctrl+Alt to release"
                               if grabbed else "")

    def _save_screenshot(self) -> None:
        image = self.view.image()
        if image is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save a screenshot", "screenshot.png",
                                              "PNG images (*.png)")
        if path:
            image.save(path, "PNG")

    def _toggle_fullscreen(self) -> None:
        window = self.window()
        if window.isFullScreen():
            window.showNormal()
            self.fullscreen.leave()
        else:
            window.showFullScreen()
            self.fullscreen.enter()
