"""The filtered session bus: reachable through xdg-dbus-proxy only when the profile grants it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import wait_for
from tests.sandbox.conftest import run
from virtstudio.sandbox.profile import SandboxProfile

GET_ID = ("dbus-send --session --print-reply --dest=org.freedesktop.DBus "
          "/org/freedesktop/DBus org.freedesktop.DBus.GetId")


@pytest.fixture
def session_bus(tmp_path, monkeypatch):
    """A private session bus for the test, on a socket in its own folder."""
    socket = tmp_path / "bus"
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                               f"--address=unix:path={socket}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(socket.exists, timeout=10)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={socket}")
        yield socket
    finally:
        daemon.terminate()
        daemon.wait(10)


@pytest.mark.skipif(os.geteuid() == 0, reason="started by root, a sandbox runs as nobody, "
                    "whom the session bus refuses (see the test below)")
def test_filtered_bus_reaches_the_bus_through_the_proxy(manager, session_bus):
    profile = SandboxProfile(name="t", dbus="filtered", dbus_talk=["org.example.Allowed"])
    code, out = run(manager, profile, f"echo $DBUS_SESSION_BUS_ADDRESS; {GET_ID}")
    assert code == 0, out
    assert "/run/user/sandbox/bus" in out  # the proxy's socket, not the real bus
    assert str(session_bus) not in out.split("\n", 1)[1]


def test_no_bus_without_the_grant(manager, session_bus):
    code, out = run(manager, SandboxProfile(name="t"), f"[ -z \"$DBUS_SESSION_BUS_ADDRESS\" ] "
                    f"|| exit 40; {GET_ID}")
    assert code not in (0, 40), out


def test_filtered_bus_without_a_session_starts_nothing(manager, monkeypatch):
    from virtstudio.core.errors import VirtStudioError

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(VirtStudioError, match=r"no session bus|session bus does not accept"):
        manager.launch(SandboxProfile(name="t", dbus="filtered"), ["/bin/true"])
    assert manager.sandboxes == [] and not os.environ.get("DBUS_SESSION_BUS_ADDRESS")


@pytest.mark.skipif(os.geteuid() != 0, reason="concerns sandboxes started by root")
def test_filtered_bus_as_root_starts_nothing(manager, session_bus):
    from virtstudio.core.errors import VirtStudioError

    profile = SandboxProfile(name="t", dbus="filtered", dbus_talk=["org.example.Allowed"])
    with pytest.raises(VirtStudioError, match="session bus does not accept"):
        manager.launch(profile, ["/bin/true"])
    assert manager.sandboxes == []
