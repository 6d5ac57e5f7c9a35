"""The console toolbar against a scripted VNC server, driven as a user would: the clipboard
switch, "Fit and resize guest", and fullscreen with a toolbar that hides itself.

The lab guest cannot take part in the resize tests: its VGA text mode is a fixed
720x400 and QEMU refuses SetDesktopSize for it, so the scripted server plays a
guest that follows.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QGuiApplication

from tests.console.fake_server import rect, update
from tests.console.vnc_fake_server import FakeVncServer, server_cut_text
from tests.qt_events import drain_posted_events
from virtstudio.console.session import ConsoleSession
from virtstudio.ui import console_fullscreen
from virtstudio.ui.console_clipboard import OFF_TEXT, SHARED_TEXT
from virtstudio.ui.console_view import SCALE_RESIZE, ConsolePane


@pytest.fixture
def server():
    made: list[FakeVncServer] = []

    def make(**kwargs) -> FakeVncServer:
        made.append(FakeVncServer(**kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _pane(qtbot, server: FakeVncServer) -> ConsolePane:
    pane = ConsolePane()
    qtbot.addWidget(pane)
    pane.resize(640, 480)
    pane.show()
    pane.attach(ConsoleSession(server.opener, encoding="raw"))
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.view, timeout=20000)
    qtbot.waitUntil(lambda: pane.view.image() is not None, timeout=20000)
    return pane


def _server_has_all_sent(qtbot, pane: ConsolePane, srv: FakeVncServer) -> None:
    """Everything the desktop side sent so far has reached the server.

    The GUI thread first handles what it has queued (a clipboard change, a relayed
    message), then a pointer move goes out on the same connection; the server reads in
    order, so once the move has arrived so has everything sent before it."""
    drain_posted_events(qtbot)
    moves = len(srv.of_kind("pointer"))
    pane.session.pointer(1, 1, 0)
    qtbot.waitUntil(lambda: len(srv.of_kind("pointer")) > moves, timeout=10000)


def _desktop_has_all_received(qtbot, pane: ConsolePane, srv: FakeVncServer) -> None:
    """Everything the server sent so far has been read and handled on the GUI thread.

    A one-pixel update of a new colour follows it on the connection; once the
    framebuffer shows that pixel the client has read all before it, and what reading it
    posted to the GUI thread (a relayed clipboard text) is then delivered."""
    fb = pane.session.framebuffer
    pixel = bytes([(fb.data[0] + 1) % 256, fb.data[1], fb.data[2], 0])
    srv.push(update(rect(0, 0, 1, 1, 0, pixel)))
    qtbot.waitUntil(lambda: bytes(fb.data[0:3]) == pixel[:3], timeout=10000)
    drain_posted_events(qtbot)


class _MouseMoves(QObject):
    """Records where ``widget`` receives mouse moves."""

    def __init__(self, widget) -> None:
        super().__init__(widget)
        self.at: list[QPoint] = []
        widget.installEventFilter(self)

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseMove:
            self.at.append(event.position().toPoint())
        return False


def test_clipboard_is_off_and_nothing_crosses(qtbot, server):
    srv = server()
    pane = _pane(qtbot, srv)
    button = pane.clipboard_button
    assert button.isVisible() and button.isEnabled()
    assert button.text() == OFF_TEXT and not button.isChecked()
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("desktop secret")
    srv.push(server_cut_text("guest secret"))
    _desktop_has_all_received(qtbot, pane, srv)
    _server_has_all_sent(qtbot, pane, srv)
    assert srv.of_kind("cut") == []
    assert clipboard.text() == "desktop secret"


def test_shared_clipboard_crosses_both_ways(qtbot, server):
    srv = server()
    pane = _pane(qtbot, srv)
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("before sharing")
    qtbot.mouseClick(pane.clipboard_button, Qt.MouseButton.LeftButton)
    assert pane.clipboard_button.text() == SHARED_TEXT
    # Turning it on offers what is on the clipboard now, then every later copy.
    assert srv.wait_for("cut") == ["before sharing"]
    clipboard.setText("copied on the desktop")
    qtbot.waitUntil(lambda: srv.of_kind("cut")[-1] == "copied on the desktop", timeout=20000)
    srv.push(server_cut_text("cut in the guest"))
    qtbot.waitUntil(lambda: clipboard.text() == "cut in the guest", timeout=20000)
    _server_has_all_sent(qtbot, pane, srv)
    assert srv.of_kind("cut").count("cut in the guest") == 0  # not echoed back
    # Off again: nothing more crosses.
    qtbot.mouseClick(pane.clipboard_button, Qt.MouseButton.LeftButton)
    assert pane.clipboard_button.text() == OFF_TEXT
    sent = len(srv.of_kind("cut"))
    clipboard.setText("after sharing")
    srv.push(server_cut_text("guest after sharing"))
    _desktop_has_all_received(qtbot, pane, srv)
    _server_has_all_sent(qtbot, pane, srv)
    assert len(srv.of_kind("cut")) == sent and clipboard.text() == "after sharing"


def test_a_new_session_starts_with_the_clipboard_off(qtbot, server):
    first, second = server(), server()
    pane = _pane(qtbot, first)
    qtbot.mouseClick(pane.clipboard_button, Qt.MouseButton.LeftButton)
    assert pane.clipboard_button.isChecked()
    pane.attach(ConsoleSession(second.opener, encoding="raw"))
    assert pane.clipboard_button.text() == OFF_TEXT and not pane.clipboard_button.isChecked()
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.view, timeout=20000)
    QGuiApplication.clipboard().setText("for the first machine only")
    _server_has_all_sent(qtbot, pane, second)
    assert second.of_kind("cut") == []


def test_spice_display_cannot_share_the_clipboard(qtbot):
    pane = ConsolePane()
    qtbot.addWidget(pane)
    session = ConsoleSession(lambda: None, protocol="spice", spice_backend="builtin")
    pane.clipboard.set_session(session)
    assert not pane.clipboard_button.isEnabled()
    assert "only VNC" in pane.clipboard_button.toolTip()


def _resize_item(pane):
    return pane.scale_combo.model().item(pane.scale_combo.findData(SCALE_RESIZE))


def test_fit_and_resize_guest_follows_the_widget(qtbot, server):
    srv = server(ext_desktop=True)
    pane = _pane(qtbot, srv)
    qtbot.waitUntil(lambda: _resize_item(pane).isEnabled(), timeout=20000)
    pane.scale_combo.setFocus()
    # Choose the mode from the keyboard, as a user would from the list.
    while pane.scale_combo.currentData() != SCALE_RESIZE:
        qtbot.keyClick(pane.scale_combo, Qt.Key.Key_Down)
    view = pane.view
    qtbot.waitUntil(lambda: srv.of_kind("resize") != [], timeout=20000)
    assert srv.of_kind("resize")[-1] == (view.width(), view.height())
    # Several quick resizes (a window being dragged) send one request, for the last size.
    # A longer settle time than the app's keeps a loaded test machine from splitting them.
    view._resize_timer.setInterval(1500)
    before = len(srv.of_kind("resize"))
    # Widths above the toolbar's minimum (about 600), or the pane would not change at all.
    for width in (720, 700, 680, 660):
        last = view.size()
        pane.resize(width, 420)
        qtbot.waitUntil(lambda last=last: view.size() != last, timeout=10000)
    qtbot.waitUntil(lambda: len(srv.of_kind("resize")) > before, timeout=10000)
    fb = pane.session.framebuffer
    qtbot.waitUntil(lambda: (fb.width, fb.height) == (view.width(), view.height()),
                    timeout=10000)
    qtbot.waitUntil(lambda: pane.view.image().size() == view.size(), timeout=10000)
    # Nothing more is on its way: no request is pending and all sent ones have arrived.
    qtbot.waitUntil(lambda: not view._resize_timer.isActive(), timeout=10000)
    _server_has_all_sent(qtbot, pane, srv)
    assert srv.of_kind("resize")[before:] == [(view.width(), view.height())]


def test_fit_and_resize_is_disabled_when_the_server_cannot(qtbot, server):
    srv = server(ext_desktop=False)
    pane = _pane(qtbot, srv)
    item = _resize_item(pane)
    assert not item.isEnabled()
    assert "ExtendedDesktopSize" in item.toolTip()
    view, size = pane.view, pane.view.size()
    pane.resize(500, 400)
    qtbot.waitUntil(lambda: pane.view.size() != size, timeout=10000)
    qtbot.waitUntil(lambda: not view._resize_timer.isActive(), timeout=10000)
    _server_has_all_sent(qtbot, pane, srv)
    assert srv.of_kind("resize") == []


def test_fullscreen_toolbar_hides_and_comes_back_at_the_top_edge(qtbot, server):
    srv = server()
    pane = _pane(qtbot, srv)
    pane.fullscreen.timer.setInterval(300)
    qtbot.mouseClick(pane.full_button, Qt.MouseButton.LeftButton)
    assert pane.isFullScreen()
    assert pane.toolbar.isVisible()
    view = pane.view
    # Grab the keyboard: the release hint must stay in sight without the toolbar.
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    hint = pane.fullscreen.hint
    qtbot.waitUntil(lambda: not pane.toolbar.isVisible(), timeout=20000)
    assert hint.isVisible() and "Ctrl+Alt" in hint.text()
    view_size = view.size()
    moves = _MouseMoves(view)
    qtbot.mouseMove(view, QPoint(300, 200))
    qtbot.waitUntil(lambda: QPoint(300, 200) in moves.at, timeout=10000)
    drain_posted_events(qtbot)
    assert not pane.toolbar.isVisible()
    qtbot.mouseMove(view, QPoint(300, 0))
    qtbot.waitUntil(lambda: pane.toolbar.isVisible(), timeout=20000)
    assert pane.toolbar.geometry().top() == 0
    assert view.size() == view_size  # the toolbar floats: the screen keeps its size
    # It stays while the pointer is on it (the hide delay runs out and it stays), and hides
    # once the pointer moves away.
    with qtbot.waitSignal(pane.fullscreen.timer.timeout, timeout=10000):
        pass
    assert pane.toolbar.isVisible()
    qtbot.mouseMove(view, QPoint(300, 300))
    qtbot.waitUntil(lambda: not pane.toolbar.isVisible(), timeout=20000)
    # Ctrl+Alt releases the keyboard, and the hint goes.
    qtbot.keyClick(view, Qt.Key.Key_Alt, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.AltModifier)
    assert not hint.isVisible()
    qtbot.mouseMove(view, QPoint(10, 1))
    qtbot.waitUntil(lambda: pane.toolbar.isVisible(), timeout=20000)
    qtbot.mouseClick(pane.full_button, Qt.MouseButton.LeftButton)
    assert not pane.isFullScreen()
    assert pane.layout().indexOf(pane.toolbar) == 0 and pane.toolbar.isVisible()
    pane.fullscreen.timer.timeout.emit()
    assert pane.toolbar.isVisible()  # out of fullscreen it stays
    assert console_fullscreen.HIDE_DELAY_MS > 300  # the test shortened the delay only


def test_fullscreen_ended_elsewhere_brings_the_toolbar_back(qtbot, server):
    pane = _pane(qtbot, server())
    pane.fullscreen.timer.setInterval(100)
    qtbot.mouseClick(pane.full_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.toolbar.isVisible(), timeout=20000)
    pane.showNormal()  # as a window manager or a key outside the toolbar would
    qtbot.waitUntil(lambda: not pane.fullscreen.active, timeout=20000)
    assert pane.layout().indexOf(pane.toolbar) == 0 and pane.toolbar.isVisible()
    # Nothing left to hide it: the hide delay no longer runs.
    drain_posted_events(qtbot)
    assert not pane.fullscreen.timer.isActive()
    assert pane.toolbar.isVisible()
