"""The serial terminal widget on its own: what it shows and what keys it sends."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent

from virtstudio.ui.serial_view import SerialTerminal, key_bytes


def _key(key, text="", modifiers=Qt.KeyboardModifier.NoModifier):
    return QKeyEvent(QKeyEvent.Type.KeyPress, key, modifiers, text)


def test_output_without_escape_sequences_and_with_backspace(qtbot):
    terminal = SerialTerminal()
    qtbot.addWidget(terminal)
    terminal.feed(b"\x1b[6nlab# ech")
    terminal.feed(b"o hi\x1b[")  # a sequence cut in two by the stream
    terminal.feed(b"0m\r\nhi\r\nlab# abc\x08 \x08\x08 \x08")
    assert terminal.toPlainText() == "lab# echo hi\nhi\nlab# a"


def test_keys_become_what_a_serial_terminal_sends(qtbot):
    assert key_bytes(_key(Qt.Key.Key_A, "a")) == b"a"
    assert key_bytes(_key(Qt.Key.Key_Return, "\r")) == b"\r"
    assert key_bytes(_key(Qt.Key.Key_Backspace)) == b"\x7f"
    assert key_bytes(_key(Qt.Key.Key_Up)) == b"\x1b[A"
    assert key_bytes(_key(Qt.Key.Key_C, "", Qt.KeyboardModifier.ControlModifier)) == b"\x03"
    assert key_bytes(_key(Qt.Key.Key_Shift)) == b""


def test_typing_without_a_console_changes_nothing(qtbot):
    terminal = SerialTerminal()
    qtbot.addWidget(terminal)
    terminal.feed(b"lab# ")
    qtbot.keyClicks(terminal, "ls")
    assert terminal.toPlainText() == "lab# "
