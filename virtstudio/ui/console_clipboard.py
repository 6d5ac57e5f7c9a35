"""The console's clipboard switch: off unless the user turns it on, and always in sight.

While it is on, text copied on the desktop goes to the guest and text the
guest cuts lands in the desktop clipboard.  Every new session starts off, so
a clipboard shared with one machine is never shared with the next one (or a
reconnected one) without the user saying so.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QToolButton

from virtstudio.console.session import ConsoleSession
from virtstudio.ui.bridge import Relay, relay

OFF_TEXT = "Clipboard: off"
SHARED_TEXT = "Clipboard: shared"
OFF_TIP = ("The clipboard is not shared: nothing you copy reaches the guest, and nothing "
           "the guest copies reaches this computer. Click to share it, starting with "
           "what is on the clipboard now.")
SHARED_TIP = ("The clipboard is shared: text you copy goes to the guest, and text the guest "
              "copies lands in this computer's clipboard. Click to stop.")
UNSUPPORTED_TIP = "This display cannot share the clipboard (only VNC displays can)."


class ClipboardShare(QObject):
    def __init__(self, button: QToolButton, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.button = button
        button.setCheckable(True)
        button.toggled.connect(self._toggled)
        self.session: ConsoleSession | None = None
        self._relay: Relay | None = None
        self._from_guest: str | None = None  # so the guest's own text is not echoed back
        QGuiApplication.clipboard().dataChanged.connect(self._desktop_changed)
        self._show()

    @property
    def shared(self) -> bool:
        return self.button.isChecked() and self.session is not None

    def set_session(self, session: ConsoleSession | None) -> None:
        if self._relay is not None:
            self._relay.detach()
            self._relay = None
        self.session = session
        self._from_guest = None
        self.button.setChecked(False)
        if session is not None:
            session.set_clipboard_sharing(False)
            self._relay = relay(session.clipboard, self._guest_text, self)
        self.button.setEnabled(session is not None and session.supports_clipboard)
        self._show()

    def _show(self) -> None:
        on = self.button.isChecked()
        self.button.setText(SHARED_TEXT if on else OFF_TEXT)
        supported = self.session is None or self.session.supports_clipboard
        self.button.setToolTip((SHARED_TIP if on else OFF_TIP) if supported else UNSUPPORTED_TIP)

    def _toggled(self, on: bool) -> None:
        self._show()
        if self.session is None:
            return
        self.session.set_clipboard_sharing(on)
        if on:
            # Turning sharing on is the user's say-so for what is on the clipboard now.
            self._desktop_changed()

    def _desktop_changed(self) -> None:
        if not self.shared or self.session is None:
            return
        text = QGuiApplication.clipboard().text()
        if text and text != self._from_guest:
            self.session.send_clipboard(text)

    def _guest_text(self, text: str) -> None:
        if not self.shared:
            return
        self._from_guest = text
        QGuiApplication.clipboard().setText(text)
