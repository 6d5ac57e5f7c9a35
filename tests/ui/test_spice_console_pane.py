"""The console pane over SPICE against a scripted server: the screen, and an honest hint."""

from __future__ import annotations

import pytest

from tests.console.spice_fake_server import (
    ThreadedFakeSpiceServer,
    base,
    draw_copy,
    draw_fill,
    image_header,
    main_init,
    surface_create,
)
from virtstudio.console.session import ConsoleSession
from virtstudio.console.spice_wire import CHANNEL_DISPLAY, CHANNEL_MAIN
from virtstudio.ui.console_view import ConsolePane

RED = b"\x00\x00\xff\x00"


@pytest.fixture
def spice_server():
    quic = image_header(1, 4, 4) + b"\x04\x00\x00\x00QUIC"
    display = (surface_create(40, 30) + draw_fill(base(0, 0, 40, 30), RED)
               + draw_copy(base(0, 0, 4, 4), quic, (0, 0, 4, 4)))
    server = ThreadedFakeSpiceServer({CHANNEL_MAIN: main_init(), CHANNEL_DISPLAY: display})
    yield server
    server.close()


def test_pane_shows_the_spice_screen_and_says_what_it_skipped(qtbot, spice_server):
    pane = ConsolePane()
    qtbot.addWidget(pane)
    pane.show()
    session = ConsoleSession(spice_server.opener, protocol="spice", spice_backend="builtin")
    with qtbot.waitSignal(pane.picture_incomplete, timeout=10000) as blocker:
        pane.attach(session)
    assert blocker.args == ["QUIC image"]
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.view, timeout=20000)
    image = pane.view.image()
    assert (image.width(), image.height()) == (40, 30)
    assert image.pixelColor(20, 20).name() == "#ff0000"
    assert pane.incomplete_hint.isVisible() and "QUIC" in pane.incomplete_hint.text()
    assert len(spice_server.server.links) == 4  # one socket per channel
    pane.detach_session()
    assert pane.incomplete_hint.isVisible()  # stays until another session attaches


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown console protocol"):
        ConsoleSession(lambda: None, protocol="rdp")
