"""The console tab over SPICE, the display choice, mode changes and remote-viewer."""

from __future__ import annotations

import os
import stat

import libvirt
import pytest
from PySide6.QtCore import Qt

from tests.helpers import off_gui_thread
from tests.integration.test_vnc_console import _answered, _row, _text_rows, opaque
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml
from virtstudio.console.session import ConsoleSession
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.ui.console_view import ConsolePane


def _start(name: str, xml: str, flags: int = 0) -> None:
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).createXML(xml, flags))


def _destroy(name: str) -> None:
    def destroy() -> None:
        try:
            libvirt.open(SYSTEM_URI).lookupByName(name).destroy()
        except libvirt.libvirtError:
            pass

    off_gui_thread(destroy)


@pytest.fixture
def guest(request, lab_images):
    """A running lab guest; the test's parameters choose its displays and start state."""
    graphics, paused, passwd = getattr(request, "param", (("spice",), False, None))
    name = f"vstest-spiceui-{request.node.name[:20].replace('_', '-')}-{os.getpid()}"
    xml = lab_domain_xml(name, lab_images, graphics=graphics)
    if passwd:
        xml = xml.replace("<graphics type='spice'", f"<graphics type='spice' passwd='{passwd}'")
    _start(name, xml, libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
    yield name
    _destroy(name)


def _open_console(make_main_window, qtbot, system_libvirtd, name):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(name), timeout=60000)
    window.open_console()
    return window, window.details.console


def _rows(pane) -> int:
    data, width, height = _screen(pane)
    return _text_rows((width, height, data))


def _type_line(qtbot, pane, text: str) -> None:
    """Type ``text`` and Return like a typist: each key once the last one showed.

    QEMU drops keys once the guest's PS/2 queue is full, and a busy guest reads
    none, so a burst of keys can lose some; the echo of each is the pacing.
    """
    view = pane.view
    for char in text:
        before = _screen(pane)[0]
        qtbot.keyClicks(view, char)
        qtbot.waitUntil(lambda b=before: _screen(pane)[0] != b, timeout=20000)
    rows = _rows(pane)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    # The line ran: its output and a new prompt are below it.
    qtbot.waitUntil(lambda: _rows(pane) >= rows + 2, timeout=60000)


def type_and_wait_for_the_answer(qtbot, pane) -> None:
    """Click the screen, type "echo 42" and "echo $((6*7))" as keys, wait for the 42.

    Should a key still be lost, the pair is typed again on a cleared screen.
    """
    qtbot.mouseClick(pane.view, Qt.MouseButton.LeftButton)
    for attempt in range(3):
        if attempt:
            for char in "clear":
                qtbot.keyClicks(pane.view, char)
            qtbot.keyClick(pane.view, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda: _rows(pane) == 1, timeout=60000)
        for text in ("echo 42", "echo $((6*7))"):
            _type_line(qtbot, pane, text)
        try:
            qtbot.waitUntil(lambda: _answered(*_screen(pane)), timeout=20000)
            return
        except qtbot.TimeoutError:
            continue
    raise AssertionError("the guest never answered 42 to the typed lines")


def _connected(pane: ConsolePane) -> bool:
    return pane.session is not None and pane.session.state == "connected"


def _screen(pane):
    fb = pane.session.framebuffer
    return opaque(fb.data), fb.width, fb.height


def test_spice_only_machine_shows_and_types(make_main_window, qtbot, system_libvirtd, guest):
    _window, pane = _open_console(make_main_window, qtbot, system_libvirtd, guest)
    qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
    assert pane.session.protocol == "spice"
    assert pane.protocol_combo.isHidden()  # one display: nothing to choose
    qtbot.waitUntil(lambda: _text_rows((_screen(pane)[1], _screen(pane)[2],
                                        _screen(pane)[0])) >= 19, timeout=120000)
    type_and_wait_for_the_answer(qtbot, pane)
    data, width, height = _screen(pane)
    prompt = _text_rows((width, height, data)) - 1
    assert _row(data, width, prompt - 1) == _row(data, width, prompt - 3)
    image = pane.view.image()
    assert (image.width(), image.height()) == (720, 400)


@pytest.mark.parametrize("guest", [(("vnc", "spice"), False, None)], indirect=True)
def test_user_picks_spice_on_a_machine_with_both(make_main_window, qtbot, system_libvirtd,
                                                 guest):
    _window, pane = _open_console(make_main_window, qtbot, system_libvirtd, guest)
    qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
    assert pane.session.protocol == "vnc"
    combo = pane.protocol_combo
    assert combo.isVisible() and combo.currentData() == "vnc"
    first = pane.session
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # the user picks the SPICE display
    qtbot.waitUntil(lambda: pane.session is not first and _connected(pane), timeout=60000)
    assert pane.session.protocol == "spice"
    assert combo.currentData() == "spice"
    qtbot.waitUntil(lambda: pane.view.image() is not None
                    and pane.view.image().width() == 720, timeout=60000)


@pytest.mark.parametrize("protocol", ["vnc", "spice"])
@pytest.mark.parametrize("guest", [(("vnc", "spice"), True, None)], indirect=True)
def test_widget_follows_a_mode_change_without_reconnecting(qtbot, system_libvirtd, guest,
                                                           protocol):
    """Started paused, QEMU shows a 640x480 page; SeaBIOS then sets 720x400 text mode."""
    from virtstudio.core.inventory import Inventory as _Inventory

    inventory = _Inventory(stats_interval=0.5)
    conn = inventory.add(system_libvirtd)
    try:
        qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
        qtbot.waitUntil(lambda: conn.find_domain_by_name(guest) is not None, timeout=60000)
        domain = conn.find_domain_by_name(guest)
        kinds = [g.kind for g in domain.summary.graphics]
        pane = ConsolePane()
        qtbot.addWidget(pane)
        pane.resize(800, 500)
        pane.show()
        session = ConsoleSession.for_domain(conn, domain.uuid, kinds.index(protocol),
                                            protocol=protocol)
        resizes: list[tuple[int, int]] = []
        session.resized.connect(lambda w, h: resizes.append((w, h)))
        pane.attach(session)
        qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
        qtbot.waitUntil(lambda: pane.view.image() is not None, timeout=60000)
        before = pane.view.image().size()
        assert (before.width(), before.height()) == (640, 480)
        off_gui_thread(lambda: conn.virconn.lookupByName(guest).resume())
        qtbot.waitUntil(lambda: pane.view.image().width() == 720, timeout=60000)
        assert pane.view.image().height() == 400
        # The client's thread may still be between the new picture and its signal.
        qtbot.waitUntil(lambda: (720, 400) in resizes, timeout=60000)
        assert pane.session is session and session.state == "connected"  # no reconnect
        pane.detach_session()
    finally:
        inventory.shutdown(wait=True)


@pytest.fixture
def mock_remote_viewer(tmp_path, monkeypatch):
    """A mock of remote-viewer (not installed here): records its argv and standard input."""
    bin_dir = tmp_path / "mock-bin"
    bin_dir.mkdir()
    record = tmp_path / "record"
    script = bin_dir / "remote-viewer"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {record}.argv\ncat > {record}.stdin\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return record


@pytest.mark.parametrize("guest", [(("spice",), False, "s3cret-pw")], indirect=True)
def test_remote_viewer_gets_the_console_on_stdin(make_main_window, qtbot, system_libvirtd,
                                                 guest, mock_remote_viewer, monkeypatch):
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "builtin")  # the drop below is the own client's
    _window, pane = _open_console(make_main_window, qtbot, system_libvirtd, guest)
    qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
    assert pane.viewer_button.isHidden()  # our own client shows this screen
    # The console drops: while it is down, remote-viewer is offered.
    session = pane.session
    session._loop.call_soon_threadsafe(session.client.channels[2].writer.transport.abort)
    qtbot.waitUntil(lambda: pane.viewer_button.isVisible(), timeout=60000)
    qtbot.mouseClick(pane.viewer_button, Qt.MouseButton.LeftButton)
    stdin = mock_remote_viewer.with_suffix(".stdin")
    qtbot.waitUntil(lambda: stdin.exists() and "delete-this-file" in stdin.read_text(),
                    timeout=60000)
    assert mock_remote_viewer.with_suffix(".argv").read_text().split() == ["-"]
    vv = dict(line.split("=", 1) for line in stdin.read_text().splitlines()[1:])
    assert vv["type"] == "spice" and vv["host"] == "127.0.0.1" and int(vv["port"]) > 0
    assert vv["password"] == "s3cret-pw" and vv["title"] == guest


def test_no_remote_viewer_button_without_the_program(make_main_window, qtbot, system_libvirtd,
                                                     guest, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("VIRTSTUDIO_SPICE_CLIENT", "builtin")  # the drop below is the own client's
    _window, pane = _open_console(make_main_window, qtbot, system_libvirtd, guest)
    qtbot.waitUntil(lambda: _connected(pane), timeout=60000)
    session = pane.session
    session._loop.call_soon_threadsafe(session.client.channels[2].writer.transport.abort)
    qtbot.waitUntil(lambda: "closed" in pane.message.text(), timeout=60000)
    assert pane.viewer_button.isHidden()


def test_console_wall_shows_a_spice_only_machine(make_main_window, qtbot, system_libvirtd,
                                                 guest):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: any(d.name == guest for d in conn.domains.values()), timeout=60000)
    qtbot.mouseClick(window.toolbar.widgetForAction(window.wall_action),
                     Qt.MouseButton.LeftButton)
    tile = next(t for t in window.wall.tiles if t.domain.name == guest)
    assert tile.session is not None and tile.session.protocol == "spice"
    qtbot.waitUntil(lambda: tile.image() is not None, timeout=60000)
    assert (tile.image().width(), tile.image().height()) == (720, 400)
