"""The console tab against the real lab guest: opens, shows the screen, types."""

from __future__ import annotations

import os

import libvirt
import pytest
from PySide6.QtCore import Qt

from tests.helpers import off_gui_thread
from tests.integration.test_vnc_console import _answered, _row, _text_rows, opaque
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory


@pytest.fixture
def running_guest(lab_images):
    name = f"vstest-console-ui-{os.getpid()}"

    def start():
        conn = libvirt.open(SYSTEM_URI)
        return conn.createXML(lab_domain_xml(name, lab_images, graphics=("vnc",)), 0)

    off_gui_thread(start)
    yield name
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).lookupByName(name).destroy())


def _screen(pane):
    fb = pane.session.framebuffer
    return opaque(fb.data), fb.width, fb.height


def test_console_tab_shows_the_guest_and_types(make_main_window, qtbot, system_libvirtd,
                                               running_guest):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(running_guest), timeout=60000)
    window.open_console()
    pane = window.details.console
    qtbot.waitUntil(lambda: pane.session is not None and pane.session.state == "connected",
                    timeout=60000)
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.view, timeout=60000)
    # Wait for the shell prompt, then type as a user would.
    qtbot.waitUntil(lambda: _text_rows((_screen(pane)[1], _screen(pane)[2],
                                        _screen(pane)[0])) >= 19, timeout=60000)
    view = pane.view
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton)
    assert "Ctrl+Alt" in pane.grab_hint.text()
    for text in ("echo 42", "echo $((6*7))"):
        qtbot.keyClicks(view, text)
        qtbot.keyClick(view, Qt.Key.Key_Return)
    # Wait for the answer rather than for a fixed time: a busy machine is slow.
    qtbot.waitUntil(lambda: _answered(*_screen(pane)), timeout=60000)

    def both_answers_alike() -> bool:
        # The last answer may be drawn a frame after the first check saw it.
        data, width, height = _screen(pane)
        prompt = _text_rows((width, height, data)) - 1
        return _row(data, width, prompt - 1) == _row(data, width, prompt - 3)

    qtbot.waitUntil(both_answers_alike, timeout=60000)
    image = view.image()
    assert (image.width(), image.height()) == (720, 400)


def test_console_of_a_shut_off_machine_says_so(make_main_window, qtbot, system_libvirtd,
                                               lab_vm):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    window.open_console()
    pane = window.details.console
    assert pane.stack.currentWidget() is pane.message
    assert "Start it to see its screen" in pane.message.text()


def test_dropped_console_reconnects_by_itself(make_main_window, qtbot, system_libvirtd,
                                              running_guest):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(running_guest), timeout=60000)
    window.open_console()
    pane = window.details.console
    qtbot.waitUntil(lambda: pane.session is not None and pane.session.state == "connected",
                    timeout=60000)
    first = pane.session
    # Cut the connection under the client, as a network drop would.
    first._loop.call_soon_threadsafe(first.client._writer.transport.abort)
    qtbot.waitUntil(lambda: "closed" in pane.message.text(), timeout=60000)
    qtbot.waitUntil(lambda: pane.session is not first and pane.session is not None
                    and pane.session.state == "connected", timeout=60000)
    qtbot.waitUntil(lambda: pane.stack.currentWidget() is pane.view, timeout=60000)


def test_console_wall_shows_running_guests_and_opens_one(make_main_window, qtbot,
                                                         system_libvirtd, running_guest):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: any(d.name == running_guest for d in conn.domains.values()),
                    timeout=60000)
    toolbar_button = window.toolbar.widgetForAction(window.wall_action)
    qtbot.mouseClick(toolbar_button, Qt.MouseButton.LeftButton)
    assert window.pages.currentWidget() is window.wall
    tile = next(t for t in window.wall.tiles if t.domain.name == running_guest)
    # Until the guest's BIOS sets its text mode the screen is QEMU's 640x480 placeholder.
    qtbot.waitUntil(lambda: tile.image() is not None
                    and (tile.image().width(), tile.image().height()) == (720, 400),
                    timeout=60000)
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert not window.wall_action.isChecked()
    assert window.pages.currentWidget() is window.vm_page
    assert window.selected_domain()[1].name == running_guest
    assert window.details.tabs.currentWidget() is window.details.console
    assert window.wall.tiles == []
