"""Making a bridge or VLAN permanent: without NetworkManager the answer says so plainly.

Its absence is tested here: with no system bus at all, and with a real
(private) bus that nobody named NetworkManager is on.  The path through a real
NetworkManager (profiles stored, updated, refused, the daemon dying mid-call)
is in test_nm_persist_real.py and, for the button, test_nm_persist_ui.py.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from virtstudio.core.errors import VirtStudioError
from virtstudio.network.nm_persist import (
    NOT_RUNNING,
    PermanentLink,
    connection_settings,
    make_permanent,
    networkmanager_running,
)


def test_no_system_bus_means_not_running(monkeypatch, tmp_path):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-socket")
    assert networkmanager_running() is False
    with pytest.raises(VirtStudioError) as caught:
        make_permanent(PermanentLink("br-keep", "bridge"))
    assert caught.value.message == NOT_RUNNING and "reboot" in NOT_RUNNING


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon is not installed")
def test_a_bus_without_networkmanager(monkeypatch, tmp_path):
    socket = tmp_path / "bus"
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address",
                               f"--address=unix:path={socket}"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout.readline().startswith("unix:path=")
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={socket}")
        assert networkmanager_running() is False
        with pytest.raises(VirtStudioError, match="NetworkManager is not running"):
            make_permanent(PermanentLink("eth0.10", "vlan", parent="eth0", vlan_id=10))
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_settings_are_checked_and_shaped_for_add_connection():
    bridge = connection_settings(PermanentLink("br-keep", "bridge", vlan_filtering=True))
    assert bridge["connection"]["type"] == ("s", "bridge")
    assert bridge["connection"]["interface-name"] == ("s", "br-keep")
    assert bridge["bridge"]["vlan-filtering"] == ("b", True)
    vlan = connection_settings(PermanentLink("eth0.10", "vlan", parent="eth0", vlan_id=10))
    assert vlan["vlan"] == {"parent": ("s", "eth0"), "id": ("u", 10)}
    for bad, fragment in ((PermanentLink("x" * 16, "bridge"), "not a usable interface name"),
                          (PermanentLink("eth0.0", "vlan", parent="eth0", vlan_id=0),
                           "outside 1-4094"),
                          (PermanentLink("veth0", "veth"), "Only bridges and VLANs")):
        with pytest.raises(VirtStudioError, match=fragment):
            connection_settings(bad)
