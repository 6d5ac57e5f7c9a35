"""spice-glib against a scripted SPICE server, and against sockets that are not SPICE."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from tests.console.spice_fake_server import (
    ThreadedFakeSpiceServer,
    base,
    client_messages,
    draw_fill,
    link_reply,
    main_init,
    msg,
    surface_create,
)
from tests.helpers import wait_for
from virtstudio.console.session import ConsoleSession, choose_spice_backend
from virtstudio.console.spice_client import spice_scancode
from virtstudio.console.spice_glib import spice_glib_scancode, spice_glib_unavailable
from virtstudio.console.spice_wire import CHANNEL_CURSOR, CHANNEL_DISPLAY, CHANNEL_INPUTS

RED = b"\x00\x00\xff\x00"
# spice-glib links only where the server offers SPICE ticket auth (common cap 1).
COMMON_CAPS = 0b1011

needs_glib = pytest.mark.skipif(spice_glib_unavailable() != "",
                                reason=f"spice-glib cannot run here: {spice_glib_unavailable()}")


class LoopbackServer:
    """A listener on 127.0.0.1 whose every connection is handled by ``behave``."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._behave = behave
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._behave(conn)

    def opener(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def close(self) -> None:
        self.listener.close()


def _junk(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"\xde\xad" * 64)
    # Open until the client, having read the junk, hangs up: the error must come from
    # what it read, not from the connection ending under it.
    conn.settimeout(15)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass  # timed out, or reset: either way the client has had its answer


def _closes_mid_handshake(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"REDQ\x02\x00\x00\x00")  # half a link header, then gone


def _closes_at_once(conn: socket.socket) -> None:
    pass


def _closed_session(behave: Callable[[socket.socket], None]) -> tuple[ConsoleSession, float]:
    server = LoopbackServer(behave)
    session = ConsoleSession(server.opener, protocol="spice", spice_backend="glib")
    started = time.monotonic()
    session.start()
    try:
        wait_for(lambda: session.state == "closed", timeout=15)
        return session, time.monotonic() - started
    finally:
        session.stop()
        server.close()


@needs_glib
@pytest.mark.parametrize(("behave", "words"), [
    (_junk, "did not answer as a SPICE server does"),
    (_closes_mid_handshake, "did not answer as a SPICE server does"),
    (_closes_at_once, "did not answer as a SPICE server does"),
])
def test_a_socket_that_is_not_spice_ends_with_a_clear_error(behave, words):
    session, took = _closed_session(behave)
    assert session.error is not None and words in session.error, session.error
    assert took < 10
    assert session.framebuffer is None


@needs_glib
def test_an_opener_that_fails_is_reported():
    def opener() -> socket.socket:
        raise ConnectionRefusedError(111, "Connection refused")

    session = ConsoleSession(opener, protocol="spice", spice_backend="glib")
    session.start()
    try:
        wait_for(lambda: session.state == "closed", timeout=10)
    finally:
        session.stop()
    assert "Could not reach the console" in session.error


def test_the_backend_follows_the_request_then_the_environment(monkeypatch):
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "builtin")
    assert choose_spice_backend() == "builtin"
    assert choose_spice_backend("glib") == "glib"  # an explicit request wins
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "glib")
    assert choose_spice_backend() == "glib"
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "nonsense")
    expected = "glib" if spice_glib_unavailable() == "" else "builtin"
    assert choose_spice_backend() == expected
    with pytest.raises(ValueError, match="unknown SPICE client"):
        choose_spice_backend("gtk")
    session = ConsoleSession(lambda: socket.socket(), protocol="vnc")
    assert session.spice_backend is None and session.client_name == "VirtStudio's VNC client"


def test_extended_scancodes_take_bit_8():
    assert spice_glib_scancode(0x1C) == 0x1C
    assert spice_glib_scancode(0xE01D) == 0x11D  # right Ctrl
    with pytest.raises(ValueError):
        spice_glib_scancode(0xE11D)


def _channels_list(*kinds: int) -> bytes:
    """MAIN_CHANNELS_LIST: spice-glib opens only the channels the server lists."""
    return msg(104, struct.pack("<I", len(kinds)) + b"".join(bytes([k, 0]) for k in kinds))


@needs_glib
def test_scripted_server_screen_cursor_and_input():
    # A 2x1 alpha cursor: server ARGB words, so B, G, R, A bytes, as Qt's ARGB32 wants them.
    pixels = b"\x10\x20\x30\xff\x40\x50\x60\x80"
    cursor = (struct.pack("<hhHHB", 0, 0, 0, 0, 1) + struct.pack("<H", 0)
              + struct.pack("<QBHHHH", 5, 0, 2, 1, 1, 0) + pixels)
    server = ThreadedFakeSpiceServer({
        1: main_init() + _channels_list(CHANNEL_DISPLAY, CHANNEL_INPUTS, CHANNEL_CURSOR),
        CHANNEL_DISPLAY: surface_create(40, 30) + draw_fill(base(0, 0, 40, 30), RED),
        CHANNEL_CURSOR: msg(101, cursor)})
    server.server.reply = link_reply(common=COMMON_CAPS)
    session = ConsoleSession(server.opener, protocol="spice", spice_backend="glib")
    shapes: list = []
    session.cursor_changed.connect(shapes.append)
    session.start()
    try:
        wait_for(lambda: session.state == "connected", timeout=10)
        fb = session.framebuffer
        wait_for(lambda: fb.data[:4] == RED, timeout=30)
        assert (fb.width, fb.height) == (40, 30) and fb.data == bytearray(RED * 40 * 30)
        wait_for(lambda: shapes, timeout=30)
        assert (shapes[0].width, shapes[0].height, shapes[0].hotspot_x) == (2, 1, 1)
        assert shapes[0].bgra == pixels
        session.key(True, 0xFFE4, 0xE01D)  # right Ctrl: an E0 scancode
        session.key(False, 0xFFE4, 0xE01D)
        session.pointer(5, 3, 1)  # server mouse mode: relative motion, then the press

        def inputs() -> list:
            return client_messages(bytes(server.server.sent.get(CHANNEL_INPUTS, b"")))

        wait_for(lambda: len(inputs()) >= 4, timeout=30)
        keys = [(t, struct.unpack("<I", body)[0]) for t, body in inputs() if t in (101, 102)]
        # The same wire bytes VirtStudio's own client sends for that key.
        assert keys == [(101, spice_scancode(0xE01D, release=False)),
                        (102, spice_scancode(0xE01D, release=True))]
        mouse = [(t, body) for t, body in inputs() if t in (111, 113)]
        assert mouse[0] == (111, struct.pack("<iiH", 5, 3, 0))
        assert mouse[1] == (113, struct.pack("<BH", 1, 1))
        assert not session.desktop_resizes  # no agent: the guest's size stays its own
    finally:
        session.stop()
        server.close()
    assert session.state == "closed"


def test_forced_glib_where_it_cannot_run_says_why_mock_unavailable(monkeypatch):
    """spice-glib's absence is mocked (it is installed here): the session names the reason."""
    from virtstudio.console import spice_glib

    monkeypatch.setattr(spice_glib, "_unavailable", "spice-glib is not installed (mock).")
    assert choose_spice_backend() == "builtin" or "VIRTSTUDIO_SPICE_CLIENT" in os.environ
    session = ConsoleSession(lambda: socket.socket(), protocol="spice", spice_backend="glib")
    session.start()
    try:
        wait_for(lambda: session.state == "closed", timeout=30)
    finally:
        session.stop()
    assert session.error == "spice-glib is not installed (mock)."
