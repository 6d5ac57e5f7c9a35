"""Make a bridge or VLAN survive a reboot by handing it to NetworkManager over D-Bus.

Netlink changes are runtime-only.  Where NetworkManager runs (its well-known
name has an owner on the system bus), ``AddConnection`` stores a connection
profile that NM brings up at every boot.  Blocking: call from a job thread.

The system bus is the one D-Bus clients normally use: ``DBUS_SYSTEM_BUS_ADDRESS``
when it is set (the tests point it at a private bus with its own NetworkManager),
otherwise ``/run/dbus/system_bus_socket``.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
from jeepney.low_level import HeaderFields, Message, MessageType

from virtstudio.core.errors import VirtStudioError
from virtstudio.network.host_links import validate_ifname, validate_vlan_id

NM_NAME = "org.freedesktop.NetworkManager"
_SETTINGS = DBusAddress("/org/freedesktop/NetworkManager/Settings", bus_name=NM_NAME,
                        interface="org.freedesktop.NetworkManager.Settings")
_BUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                   interface="org.freedesktop.DBus")
# Errors the bus sends when NetworkManager left (or was never there) before it answered.
_GONE_ERRORS = ("org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown",
                "org.freedesktop.DBus.Error.NameHasNoOwner")
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


def _call(bus: Any, address: DBusAddress, method: str, signature: str | None,
          body: tuple[Any, ...], what: str, timeout: float = 30) -> tuple[Any, ...]:
    """One method call to NetworkManager; every way it can fail becomes a VirtStudioError."""
    try:
        reply: Message = bus.send_and_get_reply(
            new_method_call(address, method, signature, body), timeout=timeout)
    except TimeoutError:
        raise VirtStudioError(f"NetworkManager did not answer within {timeout:.0f} s, so "
                              f"{what} may not survive a reboot.") from None
    except (OSError, EOFError) as exc:  # the bus itself went away
        raise VirtStudioError(f"The system bus closed while storing {what}, so it may not "
                              "survive a reboot.", repr(exc)) from None
    if reply.header.message_type is not MessageType.error:
        return tuple(reply.body)
    error = reply.header.fields.get(HeaderFields.error_name, "")
    reason = str(reply.body[0]) if reply.body else error
    if error in _GONE_ERRORS:
        # NoReply: the bus saw NetworkManager leave with our call unanswered.
        raise VirtStudioError(f"NetworkManager stopped before it answered, so {what} may "
                              "not survive a reboot.", f"{error}: {reason}")
    raise VirtStudioError(f"NetworkManager refused to store {what}: {reason}", error)


def _connection(path: str) -> DBusAddress:
    return DBusAddress(path, bus_name=NM_NAME,
                       interface="org.freedesktop.NetworkManager.Settings.Connection")


def _profiles_for(bus: Any, ifname: str, what: str) -> list[tuple[str, str, str]]:
    """(object path, id, uuid) of every stored profile whose interface name is ``ifname``."""
    (paths,) = _call(bus, _SETTINGS, "ListConnections", None, (), what)
    found = []
    for path in paths:
        try:
            (settings,) = _call(bus, _connection(path), "GetSettings", None, (), what)
        except VirtStudioError as exc:
            if exc.detail in ("org.freedesktop.DBus.Error.UnknownObject",
                              "org.freedesktop.DBus.Error.UnknownMethod"):
                continue  # deleted between ListConnections and now
            raise
        connection = settings.get("connection", {})
        if connection.get("interface-name", ("s", ""))[1] == ifname:
            found.append((str(path), connection.get("id", ("s", ""))[1],
                          connection.get("uuid", ("s", ""))[1]))
    return found


def make_permanent(link: PermanentLink) -> str:
    """Store ``link`` as a NetworkManager profile; return the profile's object path.

    The profile is named ``virtstudio-<name>``.  Asking again for the same
    interface updates that profile in place (same path and UUID) rather than
    adding a second one; a profile that something else stored for the interface
    is left alone and the request refused, naming it.
    """
    settings = connection_settings(link)
    what = f"“{link.name}”"
    bus = _system_bus()
    with bus:
        (owned,) = _call(bus, _BUS, "NameHasOwner", "s", (NM_NAME,), what, timeout=5)
        if not owned:
            raise VirtStudioError(NOT_RUNNING)
        own_id = settings["connection"]["id"][1]
        profiles = _profiles_for(bus, link.name, what)
        foreign = [name for _path, name, _uuid in profiles if name != own_id]
        if foreign:
            raise VirtStudioError(
                f"NetworkManager already has the profile “{foreign[0]}” for {link.name}; "
                "VirtStudio leaves it as it is. Change or delete it with nmcli instead.")
        if profiles:
            path, _name, uuid = profiles[0]
            settings["connection"]["uuid"] = ("s", uuid)
            _call(bus, _connection(path), "Update", "a{sa{sv}}", (settings,), what)
            return path
        (path,) = _call(bus, _SETTINGS, "AddConnection", "a{sa{sv}}", (settings,), what)
        return str(path)
