"""Make a bridge or VLAN survive a reboot by handing it to NetworkManager over D-Bus.

Netlink changes are runtime-only.  Where NetworkManager runs (its well-known
name has an owner on the system bus), ``AddConnection`` stores a connection
profile that NM brings up at every boot.  Blocking: call from a job thread.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection

from virtstudio.core.errors import VirtStudioError
from virtstudio.network.host_links import validate_ifname, validate_vlan_id

NM_NAME = "org.freedesktop.NetworkManager"
_SETTINGS = DBusAddress("/org/freedesktop/NetworkManager/Settings", bus_name=NM_NAME,
                        interface="org.freedesktop.NetworkManager.Settings")
_BUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                   interface="org.freedesktop.DBus")
NOT_RUNNING = ("NetworkManager is not running on this host, so the change stays "
               "runtime-only: it is gone after a reboot.")


@dataclass(frozen=True)
class PermanentLink:
    """What to store: a bridge (optionally VLAN-aware) or a VLAN on a parent."""

    name: str
    kind: str  # "bridge" or "vlan"
    vlan_filtering: bool = False
    parent: str = ""
    vlan_id: int = 0


def connection_settings(link: PermanentLink) -> dict[str, dict[str, tuple[str, Any]]]:
    """The a{sa{sv}} settings NetworkManager expects, without addresses (none are set)."""
    if link.kind not in ("bridge", "vlan"):
        raise VirtStudioError("Only bridges and VLANs can be made permanent here.")
    validate_ifname(link.name)
    settings: dict[str, dict[str, tuple[str, Any]]] = {
        "connection": {"id": ("s", f"virtstudio-{link.name}"),
                       "uuid": ("s", str(uuid_mod.uuid4())),
                       "type": ("s", link.kind),
                       "interface-name": ("s", link.name),
                       "autoconnect": ("b", True)},
        "ipv4": {"method": ("s", "disabled")},
        "ipv6": {"method": ("s", "ignore")},
    }
    if link.kind == "bridge":
        settings["bridge"] = {"stp": ("b", False),
                              "vlan-filtering": ("b", link.vlan_filtering)}
    else:
        validate_ifname(link.parent)
        validate_vlan_id(link.vlan_id)
        settings["vlan"] = {"parent": ("s", link.parent), "id": ("u", link.vlan_id)}
    return settings


def _system_bus() -> Any:
    try:
        return open_dbus_connection(bus="SYSTEM")
    except (OSError, KeyError, ValueError) as exc:
        raise VirtStudioError(NOT_RUNNING, f"no system bus: {exc!r}") from None


def networkmanager_running() -> bool:
    """Whether NetworkManager owns its name on the system bus (False without a bus)."""
    try:
        bus = _system_bus()
    except VirtStudioError:
        return False
    with bus:
        try:
            reply = bus.send_and_get_reply(
                new_method_call(_BUS, "NameHasOwner", "s", (NM_NAME,)), timeout=5)
        except Exception:  # a bus that does not answer: treat as no NetworkManager
            return False
        return bool(reply.body and reply.body[0])


def make_permanent(link: PermanentLink) -> str:
    """Store ``link`` as a NetworkManager profile; return the new connection's object path."""
    settings = connection_settings(link)
    bus = _system_bus()
    with bus:
        owner = bus.send_and_get_reply(new_method_call(_BUS, "NameHasOwner", "s", (NM_NAME,)),
                                       timeout=5)
        if not owner.body[0]:
            raise VirtStudioError(NOT_RUNNING)
        reply = bus.send_and_get_reply(
            new_method_call(_SETTINGS, "AddConnection", "a{sa{sv}}", (settings,)), timeout=30)
        if reply.header.message_type.name == "error":
            raise VirtStudioError("NetworkManager refused to store the connection.",
                                  str(reply.body))
        return str(reply.body[0])
