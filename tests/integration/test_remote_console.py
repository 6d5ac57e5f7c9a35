"""A remote host's console for real: this machine's libvirtd reached as qemu+ssh:// through
a private sshd on 127.0.0.1, the lab guest's loopback-only VNC display through the host's
one SSH connection, two consoles on it, and the connection gone with the host."""

from __future__ import annotations

import os

import libvirt
import pytest

from tests.console.test_ssh_tunnel import _masters
from tests.helpers import off_gui_thread
from tests.integration import test_console_ui
from tests.integration.test_vnc_console import _text_rows, opaque
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml
from tests.lab.sshd import PrivateSshd, sshd_unavailable
from virtstudio.console.ssh_tunnel import TunnelPool, shared_pool
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.ui.console_controller import console_session

pytestmark = pytest.mark.skipif(bool(sshd_unavailable()), reason=sshd_unavailable() or "ok")
# The same running lab guest (VNC on 127.0.0.1 only) as the local console tests use.
running_guest = test_console_ui.running_guest


@pytest.fixture
def sshd():
    with PrivateSshd() as server:
        yield server


def _rows(session) -> int:
    fb = session.framebuffer
    if fb is None or session.state != "connected":
        return 0
    return _text_rows((fb.width, fb.height, opaque(fb.data)))


def test_remote_console_through_one_ssh_connection(make_main_window, qtbot, system_libvirtd,
                                                   sshd, running_guest):
    window = make_main_window(Inventory(stats_interval=0.5))
    uri = sshd.uri()
    conn = window.inventory.add(uri)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    assert sshd.logins() == 1  # libvirt's own connection
    qtbot.waitUntil(lambda: window.select_domain(running_guest), timeout=60000)
    window.open_console()
    pane = window.details.console
    qtbot.waitUntil(lambda: pane.session is not None and pane.session.state == "connected",
                    timeout=60000)
    # The busybox prompt row (18) on the guest's 720x400 text screen, seen through SSH.
    qtbot.waitUntil(lambda: _rows(pane.session) >= 19, timeout=90000)
    assert (pane.session.framebuffer.width, pane.session.framebuffer.height) == (720, 400)
    assert pane.stack.currentWidget() is pane.view

    # A second console on the same host: a new channel, not a new connection.
    domain = next(d for d in conn.domains.values() if d.name == running_guest)
    second = console_session(conn, domain)
    second.start()
    try:
        qtbot.waitUntil(lambda: _rows(second) >= 19, timeout=60000)
        master = shared_pool().running(uri)
        assert master is not None
        assert _masters(master.control_path) == [master.pid]
        assert sshd.logins() == 2  # libvirt's connection and the one console tunnel
        assert sshd.established() == 2
    finally:
        second.stop()

    window.inventory.remove(conn)
    qtbot.waitUntil(lambda: not master.alive, timeout=20000)
    assert _masters(master.control_path) == []
    assert shared_pool().running(uri) is None


@pytest.fixture
def spice_guest(lab_images):
    name = f"vstest-remote-spice-{os.getpid()}"

    def start():
        libvirt.open(SYSTEM_URI).createXML(
            lab_domain_xml(name, lab_images, graphics=("spice",)), 0)

    off_gui_thread(start)
    yield name
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).lookupByName(name).destroy())


def test_remote_spice_opens_its_four_channels_over_one_connection(qtbot, system_libvirtd,
                                                                   sshd, spice_guest):
    inventory = Inventory(stats_interval=0.5)
    tunnels = TunnelPool()
    try:
        conn = inventory.add(sshd.uri())
        qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
        qtbot.waitUntil(lambda: any(d.name == spice_guest for d in conn.domains.values()),
                        timeout=60000)
        domain = next(d for d in conn.domains.values() if d.name == spice_guest)
        session = console_session(conn, domain, tunnels=tunnels)
        assert session.protocol == "spice"
        session.start()
        try:
            qtbot.waitUntil(lambda: _rows(session) >= 19, timeout=120000)
            master = tunnels.running(conn.uri)
            assert master is not None and _masters(master.control_path) == [master.pid]
            # main, display, inputs and cursor: four channels, still one SSH login.
            assert sshd.logins() == 2 and sshd.established() == 2
        finally:
            session.stop()
    finally:
        tunnels.close_all()
        inventory.shutdown(wait=True)


@pytest.fixture
def vnc_password_guest(lab_images):
    name = f"vstest-remote-vncpw-{os.getpid()}"
    xml = lab_domain_xml(name, lab_images, graphics=("vnc",)).replace(
        "<graphics type='vnc'", "<graphics type='vnc' passwd='GstPw-01'")

    def start():
        libvirt.open(SYSTEM_URI).createXML(xml, 0)

    off_gui_thread(start)
    yield name
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).lookupByName(name).destroy())


def test_remote_vnc_with_a_password(qtbot, system_libvirtd, sshd, vnc_password_guest):
    """QEMU checks the VNC password on a remote display (no libvirt socket hand-over):
    the app reads it from the machine's secure XML; a wrong one is refused plainly."""
    inventory = Inventory(stats_interval=0.5)
    tunnels = TunnelPool()
    try:
        conn = inventory.add(sshd.uri())
        qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
        qtbot.waitUntil(lambda: any(d.name == vnc_password_guest
                                    for d in conn.domains.values()), timeout=60000)
        domain = next(d for d in conn.domains.values() if d.name == vnc_password_guest)
        assert "GstPw-01" not in domain.xml  # the list's cached XML never holds it

        wrong = console_session(conn, domain, tunnels=tunnels)
        wrong.password = "not-it"
        wrong.start()
        try:
            qtbot.waitUntil(lambda: wrong.state == "closed", timeout=60000)
            assert "refused" in (wrong.error or ""), wrong.error
            assert wrong.framebuffer is None or wrong.framebuffer.width == 0
        finally:
            wrong.stop()

        session = console_session(conn, domain, tunnels=tunnels)
        session.start()
        try:
            qtbot.waitUntil(lambda: _rows(session) >= 19, timeout=120000)
            assert session.client.password == "GstPw-01"
        finally:
            session.stop()
    finally:
        tunnels.close_all()
        inventory.shutdown(wait=True)
