"""SPICE consoles through spice-glib against the real lab guest, as the own client is tested."""

from __future__ import annotations

import asyncio
import os
import socket

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.test_spice_console import (
    _session,
    check_typed,
    rgb,
    spice_guest,  # noqa: F401 - the module's running SPICE guest, shared
    video_session,
)
from tests.integration.test_spice_console_ui import (
    _connected,
    _open_console,
    type_and_wait_for_the_answer,
)
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml, take_screenshot, wait_for_prompt
from virtstudio.console.session import ConsoleSession
from virtstudio.console.spice_glib import SpiceGlibClient, spice_glib_unavailable

pytestmark = pytest.mark.skipif(spice_glib_unavailable() != "",
                                reason=f"spice-glib cannot run here: {spice_glib_unavailable()}")


def test_glib_types_and_matches_the_screenshot(spice_guest):  # noqa: F811
    check_typed(asyncio.run(_session(spice_guest, client=SpiceGlibClient())))


@pytest.mark.parametrize("video", ["qxl", "virtio"])
def test_glib_other_video_models_match_the_screenshot(lab_images, video):
    """QXL fully through spice-glib (the lab guest drives it in VGA mode), and virtio-gpu."""
    check_typed(video_session(lab_images, video, SpiceGlibClient()))


@pytest.fixture
def password_guest(lab_images):
    name = f"vstest-spiceglib-pw-{os.getpid()}"
    xml = lab_domain_xml(name, lab_images, graphics=("spice",)).replace(
        "<graphics type='spice'", "<graphics type='spice' passwd='Right-Pw1'")
    dom = libvirt.open(SYSTEM_URI).createXML(xml, 0)
    try:
        yield dom
    finally:
        dom.destroy()


@pytest.mark.parametrize(("password", "error"), [
    ("wrong-pw", "The console refused the password"),
    (None, "The console refused the password"),
])
def test_wrong_ticket_is_a_clear_error(password_guest, password, error):
    """Without SKIPAUTH QEMU asks for the ticket: a wrong or missing one ends the session."""
    session = ConsoleSession(lambda: _unauthenticated_socket(password_guest), password=password,
                             protocol="spice", spice_backend="glib")
    session.start()
    try:
        wait_for(lambda: session.state == "closed", 30)
        assert session.error is not None and session.error.startswith(error), session.error
    finally:
        session.stop()


def test_right_ticket_shows_the_screen(password_guest):
    session = ConsoleSession(lambda: _unauthenticated_socket(password_guest), password="Right-Pw1",
                             protocol="spice", spice_backend="glib")
    session.start()
    try:
        wait_for(lambda: session.state != "connecting" and session.state != "idle", 30)
        assert session.state == "connected", session.error
        assert session.framebuffer is not None and session.framebuffer.width > 0
    finally:
        session.stop()
    assert session.state == "closed"


def _unauthenticated_socket(dom: libvirt.virDomain) -> socket.socket:
    return socket.socket(fileno=dom.openGraphicsFD(0, 0))


def test_ui_shows_the_guest_through_spice_glib(make_main_window, qtbot, system_libvirtd,
                                              lab_images, monkeypatch):
    """The real console widget with the glib backend: typing, and libvirt's own pixels."""
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "glib")
    name = f"vstest-spiceglib-ui-{os.getpid()}"
    xml = lab_domain_xml(name, lab_images, graphics=("spice",))
    dom = off_gui_thread(lambda: libvirt.open(SYSTEM_URI).createXML(xml, 0))
    try:
        off_gui_thread(wait_for_prompt, dom, 120)
        _window, pane = _open_console(make_main_window, qtbot, system_libvirtd, name)
        qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
        assert pane.session.spice_backend == "glib"
        assert "spice-glib" in pane.toolbar.toolTip()
        type_and_wait_for_the_answer(qtbot, pane)
        off_gui_thread(dom.suspend)
        shot = off_gui_thread(take_screenshot, dom)

        def painted_as_libvirt() -> bool:
            image = pane.view.image()
            return image is not None and _rgb_of(image) == shot.pixels

        qtbot.waitUntil(painted_as_libvirt, timeout=60000)
    finally:
        off_gui_thread(dom.destroy)


def _rgb_of(image) -> bytes:
    """The QImage the widget paints, as libvirt's screenshot stores pixels (RGB)."""
    bits = image.constBits()
    return rgb(bytes(bits)[:image.sizeInBytes()])
