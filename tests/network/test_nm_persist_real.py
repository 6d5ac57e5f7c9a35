"""Making a bridge or VLAN permanent against a real NetworkManager.

The daemon runs on a private system-type bus, in a network namespace and a
mount namespace of its own, with its profiles under a temp folder (see
tests/lab/network_manager.py); nm_persist reaches it through
DBUS_SYSTEM_BUS_ADDRESS, as any D-Bus client would.
"""

from __future__ import annotations

import threading

import pytest
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection

from tests.helpers import wait_for
from tests.lab.network_manager import PrivateNetworkManager, network_manager_unavailable
from virtstudio.core.errors import VirtStudioError
from virtstudio.network.nm_persist import (
    NOT_RUNNING,
    PermanentLink,
    make_permanent,
    networkmanager_running,
)

pytestmark = pytest.mark.skipif(bool(network_manager_unavailable()),
                                reason=network_manager_unavailable() or "available")


@pytest.fixture
def nm(monkeypatch):
    with PrivateNetworkManager() as daemon:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", daemon.bus_address)
        yield daemon


def keyfile(nm, name):
    return nm.keyfiles / f"virtstudio-{name}.nmconnection"


def test_a_bridge_is_stored_as_a_profile_and_a_keyfile(nm):
    assert networkmanager_running() is True
    path = make_permanent(PermanentLink("br-keep", "bridge"))
    stored = nm.profiles()[path]
    assert stored["connection"]["id"] == "virtstudio-br-keep"
    assert stored["connection"]["type"] == "bridge"
    assert stored["connection"]["interface-name"] == "br-keep"
    assert stored["connection"].get("autoconnect", True) is True  # NM leaves out the default
    assert stored["bridge"]["stp"] is False
    assert stored["bridge"].get("vlan-filtering", False) is False
    assert stored["ipv4"]["method"] == "disabled"
    text = keyfile(nm, "br-keep").read_text()
    assert "type=bridge" in text and "interface-name=br-keep" in text
    # The namespace is NetworkManager's whole world: it brings the bridge up there.
    # (Not with vlan-filtering: this kernel lacks it, so activation fails and retries.)
    wait_for(lambda: "br-keep" in nm.links(), timeout=10)


def test_a_vlan_is_stored_with_its_id_and_parent(nm):
    path = make_permanent(PermanentLink("eth0.10", "vlan", parent="eth0", vlan_id=10))
    stored = nm.profiles()[path]
    assert stored["connection"]["type"] == "vlan"
    assert stored["connection"]["interface-name"] == "eth0.10"
    assert stored["vlan"]["id"] == 10 and stored["vlan"]["parent"] == "eth0"
    assert "parent=eth0" in keyfile(nm, "eth0.10").read_text()


def test_asking_again_updates_the_same_profile(nm):
    first = make_permanent(PermanentLink("br-again", "bridge"))
    uuid = nm.profiles()[first]["connection"]["uuid"]
    again = make_permanent(PermanentLink("br-again", "bridge", vlan_filtering=True))
    assert again == first
    profiles = nm.profiles()
    assert [p for p in profiles.values()
            if p["connection"]["interface-name"] == "br-again"] == [profiles[first]]
    assert profiles[first]["connection"]["uuid"] == uuid
    assert profiles[first]["bridge"]["vlan-filtering"] is True
    assert "vlan-filtering=true" in keyfile(nm, "br-again").read_text()


def test_a_profile_made_elsewhere_is_left_alone(nm):
    theirs = make_permanent(PermanentLink("br-theirs", "bridge"))
    settings = nm.profiles()[theirs]
    conn = DBusAddress(theirs, bus_name="org.freedesktop.NetworkManager",
                       interface="org.freedesktop.NetworkManager.Settings.Connection")
    renamed = {"connection": {"id": ("s", "office bridge"),
                              "uuid": ("s", settings["connection"]["uuid"]),
                              "type": ("s", "bridge"),
                              "interface-name": ("s", "br-theirs")}}
    with open_dbus_connection(nm.bus_address) as bus:
        reply = bus.send_and_get_reply(new_method_call(conn, "Update", "a{sa{sv}}", (renamed,)),
                                       timeout=10)
    assert reply.header.message_type.name == "method_return", reply.body
    with pytest.raises(VirtStudioError, match="already has the profile “office bridge”"):
        make_permanent(PermanentLink("br-theirs", "bridge"))
    assert nm.profiles()[theirs]["connection"]["id"] == "office bridge"


def test_a_name_networkmanager_rejects_is_refused_plainly(nm):
    # "all" is a fine Linux name but NetworkManager reserves it (/proc/sys/net/*/conf/all).
    with pytest.raises(VirtStudioError) as caught:
        make_permanent(PermanentLink("all", "bridge"))
    assert caught.value.message.startswith("NetworkManager refused to store “all”:")
    assert "not allowed as interface name" in caught.value.message
    assert "Traceback" not in caught.value.message
    assert not any(p["connection"]["interface-name"] == "all" for p in nm.profiles().values())


def test_networkmanager_gone_before_the_call(nm):
    nm.kill()
    wait_for(lambda: not networkmanager_running(), timeout=30)
    with pytest.raises(VirtStudioError) as caught:
        make_permanent(PermanentLink("br-late", "bridge"))
    assert caught.value.message == NOT_RUNNING


def test_networkmanager_dying_mid_call_is_said_plainly(nm):
    with open_dbus_connection(nm.bus_address) as monitor:
        # Watch NetworkManager's calls, so the kill lands while ours is in flight.
        reply = monitor.send_and_get_reply(new_method_call(
            DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                        interface="org.freedesktop.DBus.Monitoring"),
            "BecomeMonitor", "asu",
            (["type='method_call',interface='org.freedesktop.NetworkManager.Settings'"], 0)),
            timeout=5)
        assert reply.header.message_type.name == "method_return", reply.body
        nm.pause()
        outcome: list = []

        def call():
            try:
                outcome.append(make_permanent(PermanentLink("br-mid", "bridge")))
            except BaseException as exc:  # handed over to the test thread
                outcome.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        while True:
            seen = monitor.receive(timeout=10)
            if seen.header.fields.get(3) in ("ListConnections", "AddConnection"):
                break
        nm.kill()
        worker.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], VirtStudioError), outcome
    assert outcome[0].message == ("NetworkManager stopped before it answered, so “br-mid” "
                                  "may not survive a reboot.")
