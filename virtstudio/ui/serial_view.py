"""The Serial tab: a plain-text terminal on the guest's serial console."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QStackedWidget, QVBoxLayout, QWidget

from virtstudio.console.serial import SerialSession
from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.ui.bridge import Relay, relay
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.xml_editor import monospace_edit

# Colour, cursor and query sequences (busybox asks ESC[6n before each prompt): a plain
# text view shows none of them.
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
_KEYS = {
    Qt.Key.Key_Return: b"\r", Qt.Key.Key_Enter: b"\r", Qt.Key.Key_Backspace: b"\x7f",
    Qt.Key.Key_Tab: b"\t", Qt.Key.Key_Escape: b"\x1b", Qt.Key.Key_Up: b"\x1b[A",
    Qt.Key.Key_Down: b"\x1b[B", Qt.Key.Key_Right: b"\x1b[C", Qt.Key.Key_Left: b"\x1b[D",
    Qt.Key.Key_Home: b"\x1b[H", Qt.Key.Key_End: b"\x1b[F", Qt.Key.Key_Delete: b"\x1b[3~",
}
SCROLLBACK_LINES = 5000


def key_bytes(event: QKeyEvent) -> bytes:
    """What a serial terminal sends for ``event``; b"" for keys it ignores."""
    key = Qt.Key(event.key())
    if key in _KEYS:
        return _KEYS[key]
    ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
    if ctrl and Qt.Key.Key_A <= key <= Qt.Key.Key_Z:
        return bytes([key - Qt.Key.Key_A + 1])  # Ctrl+C is 0x03, and so on
    return event.text().encode()


class SerialTerminal(QPlainTextEdit):
    """Shows what the guest writes; every key typed goes to the guest, not into the text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serialTerminal")
        self.setReadOnly(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMaximumBlockCount(SCROLLBACK_LINES)
        self.setFont(monospace_edit("unused").font())
        self.session: SerialSession | None = None
        self._pending = ""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        data = key_bytes(event)
        if data and self.session is not None:
            self.session.send(data)
            event.accept()
            return
        super().keyPressEvent(event)

    def focusNextPrevChild(self, _next: bool) -> bool:
        return False  # Tab completes in the guest's shell, it does not leave the terminal

    def feed(self, data: bytes) -> None:
        text = self._pending + data.decode(errors="replace")
        # Keep a sequence cut in half by the stream for the next chunk.
        cut = text.rfind("\x1b")
        if cut != -1 and cut > len(text) - 8 and not _ESCAPES.match(text, cut):
            text, self._pending = text[:cut], text[cut:]
        else:
            self._pending = ""
        text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "")
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        for part in re.split(r"(\x08)", text):
            if part == "\x08":
                cursor.deletePreviousChar()
            elif part:
                cursor.insertText(part.replace("\x07", ""))
        self.setTextCursor(cursor)
        self.ensureCursorVisible()


def serial_problem(host: HostConnection, domain: Domain) -> str:
    """Why the serial console cannot be shown now, or "" when it can."""
    if host.state is not ConnectionState.CONNECTED:
        return f"{host.name} is not connected."
    if uri_mod.parse(host.uri).is_test:
        return "The demo host has no real serial consoles."
    if "<console" not in domain.xml and "<serial" not in domain.xml:
        return f"{domain.name} has no serial console. Add a serial port to use one."
    if not domain.state.is_active:
        return f"{domain.name} is {domain.state.label.lower()}. Start it to use its console."
    return ""


class SerialPane(QStackedWidget):
    """Opens the selected machine's serial console while the tab is shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serialPane")
        self.message = plain_label(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.message.setObjectName("serialMessage")
        self.terminal = SerialTerminal()
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.terminal)
        self.addWidget(self.message)
        self.addWidget(page)
        self._page = page
        self.key: tuple[str, str] | None = None
        self._relays: list[Relay] = []

    @property
    def session(self) -> SerialSession | None:
        return self.terminal.session

    def show_machine(self, host: HostConnection | None, domain: Domain | None,
                     visible: bool) -> None:
        alive = self.session is not None and self.session.state != "closed"
        if host is None or domain is None or not visible:
            if alive and domain is not None and host is not None \
                    and self.key == (host.uri, domain.uuid):
                return  # keep reading in the background: the scrollback stays whole
            self._close("Select a running machine to use its serial console.")
            return
        problem = serial_problem(host, domain)
        if problem:
            self._close(problem)
            return
        key = (host.uri, domain.uuid)
        if key == self.key and alive:
            return
        self._close("Connecting to the serial console…")
        self.key = key
        self.terminal.clear()
        session = SerialSession(host, domain.uuid)
        self.terminal.session = session
        self._relays = [relay(session.opened, self._on_opened, self),
                        relay(session.received, self.terminal.feed, self),
                        relay(session.closed, self._on_closed, self)]
        session.open()

    def _on_opened(self, session: SerialSession) -> None:
        if session is self.session:
            self.setCurrentWidget(self._page)
            self.terminal.setFocus()
            session.send(b"\r")  # the prompt was printed before we listened: ask again

    def _on_closed(self, session: SerialSession, reason: str) -> None:
        if session is self.session and reason:
            self.key = None
            self.message.setText(reason)
            self.setCurrentWidget(self.message)

    def _close(self, message: str) -> None:
        session, self.terminal.session = self.terminal.session, None
        self.key = None
        for r in self._relays:
            r.detach()  # output still queued from the old session must not show
        self._relays = []
        if session is not None:
            session.close()
        self.message.setText(message)
        self.setCurrentWidget(self.message)

    def shutdown(self) -> None:
        self._close("")
