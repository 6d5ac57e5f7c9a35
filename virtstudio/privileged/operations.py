"""The operations the privileged helper may perform, and how each argument is checked.

Nothing outside this table can be asked for.  Every argument is validated
against a strict pattern or range before anything runs, so a compromised or
buggy caller cannot turn the helper into a general root shell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from virtstudio.core.errors import VirtStudioError
from virtstudio.network.host_links import HostNetwork, validate_ifname, validate_vlan_id
from virtstudio.privileged.device_guard import guard_devices, is_partition
from virtstudio.storage import lvm, partitions, thin

_DEVICE_RE = re.compile(r"/dev/(loop\d+|sd[a-z]{1,2}\d*|vd[a-z]{1,2}\d*|xvd[a-z]{1,2}\d*"
                        r"|nvme\d+n\d+(p\d+)?|mmcblk\d+(p\d+)?)")
_NETNS_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_BYTES = 1 << 50


def _ifname(value: Any) -> str:
    if not isinstance(value, str):
        raise VirtStudioError("An interface name must be text.")
    validate_ifname(value)
    return value


def _vlan(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VirtStudioError("A VLAN id must be a whole number.")
    validate_vlan_id(value)
    return value


def _vlans(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > 4094:
        raise VirtStudioError("Tagged VLANs must be a list of ids.")
    return [_vlan(v) for v in value]


def _device(value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.fullmatch(value):
        raise VirtStudioError(f"{value!r} is not a disk device the helper may touch.")
    return value


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_BYTES:
        raise VirtStudioError(f"{value!r} is not a size in bytes.")
    return value


def _lvm_name(value: Any) -> str:
    if not isinstance(value, str):
        raise VirtStudioError("An LVM name must be text.")
    lvm.validate_name(value)
    return value


def _label(value: Any) -> str:
    if value not in partitions.LABELS:
        raise VirtStudioError(f"{value!r} is not a partition table type (gpt or dos).")
    return value


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise VirtStudioError(f"{value!r} is not a percentage from 0 to 100.")
    return value


def _netns(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NETNS_RE.fullmatch(value):
        raise VirtStudioError(f"{value!r} is not a network namespace name.")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise VirtStudioError("A yes/no setting must be true or false.")
    return value


Checker = Callable[[Any], Any]


def _net(args: dict[str, Any]) -> HostNetwork:
    return HostNetwork(args.get("netns"))


def _devices(value: Any) -> list[str]:
    if not isinstance(value, list) or not 0 < len(value) <= 16:
        raise VirtStudioError("Give one to sixteen devices.")
    return [_device(d) for d in value]


NETNS = {"netns": _netns}
# Operations that write a device take this: the user typed the device's name to agree
# that what it carries is erased.  Without it a device with any signature is refused.
WIPE = {"wipe": _flag}


@dataclass(frozen=True)
class Operation:
    required: dict[str, Checker]
    optional: dict[str, Checker]
    action: Callable[[dict[str, Any]], Any]
    # Arguments naming devices this operation writes; the helper inspects each itself.
    writes_devices: tuple[str, ...] = ()
    # Checks that must pass before any device is wiped, so a refusal changes nothing.
    precheck: Callable[[dict[str, Any]], None] | None = None


def _volume_group_is_new(args: dict[str, Any]) -> None:
    try:
        lvm.vg_free(args["name"])
    except VirtStudioError:
        return
    raise VirtStudioError(f"A volume group called {args['name']} exists already; nothing was "
                          "changed.")


def _whole_disk(args: dict[str, Any]) -> None:
    if is_partition(args["device"]):
        raise VirtStudioError(f"{args['device']} is a partition; a partition table goes on a "
                              "whole disk. Nothing was changed.")


OPERATIONS: dict[str, Operation] = {
    "create_bridge": Operation(
        {"name": _ifname}, {"vlan_filtering": _flag, **NETNS},
        lambda a: _net(a).create_bridge(a["name"],
                                        vlan_filtering=a.get("vlan_filtering", False))),
    "create_vlan": Operation(
        {"parent": _ifname, "vlan_id": _vlan}, {"name": _ifname, **NETNS},
        lambda a: _net(a).create_vlan(a["parent"], a["vlan_id"], a.get("name"))),
    "add_port": Operation(
        {"bridge": _ifname, "port": _ifname}, {"confirmed": _flag, **NETNS},
        lambda a: _net(a).add_port(a["bridge"], a["port"], confirmed=a.get("confirmed", False))),
    "remove_port": Operation({"port": _ifname}, NETNS, lambda a: _net(a).remove_port(a["port"])),
    "set_port_vlan": Operation(
        {"port": _ifname, "pvid": _vlan}, {"tagged": _vlans, **NETNS},
        lambda a: _net(a).set_port_vlans(a["port"], pvid=a["pvid"],
                                         tagged=tuple(a.get("tagged", ())))),
    "create_veth": Operation(
        {"name": _ifname, "peer": _ifname}, NETNS,
        lambda a: _net(a).create_veth(a["name"], a["peer"])),
    "create_dummy": Operation({"name": _ifname}, NETNS,
                              lambda a: _net(a).create_dummy(a["name"])),
    "delete_link": Operation(
        {"name": _ifname}, {"confirmed": _flag, **NETNS},
        lambda a: _net(a).delete(a["name"], confirmed=a.get("confirmed", False))),
    "create_volume_group": Operation(
        {"name": _lvm_name, "devices": _devices}, WIPE,
        lambda a: lvm.create_volume_group(a["name"], a["devices"]),
        writes_devices=("devices",), precheck=_volume_group_is_new),
    "create_thin_pool": Operation(
        {"vg": _lvm_name, "name": _lvm_name, "size": _size}, {},
        lambda a: lvm.create_thin_pool(a["vg"], a["name"], a["size"])),
    "create_thin_volume": Operation(
        {"vg": _lvm_name, "pool": _lvm_name, "name": _lvm_name, "size": _size}, {},
        lambda a: lvm.create_thin_volume(a["vg"], a["pool"], a["name"], a["size"])),
    "extend_volume": Operation(
        {"vg": _lvm_name, "name": _lvm_name, "size": _size}, {},
        lambda a: lvm.extend(a["vg"], a["name"], a["size"])),
    "snapshot_thin_volume": Operation(
        {"vg": _lvm_name, "origin": _lvm_name, "name": _lvm_name}, {},
        lambda a: lvm.snapshot_thin_volume(a["vg"], a["origin"], a["name"])),
    "create_partition_table": Operation(
        {"device": _device, "label": _label}, WIPE,
        lambda a: partitions.create_partition_table(a["device"], a["label"]),
        writes_devices=("device",), precheck=_whole_disk),
    "set_thin_autoextend": Operation(
        {"vg": _lvm_name, "pool": _lvm_name, "threshold": _percent, "percent": _percent}, {},
        lambda a: thin.set_autoextend(a["vg"], a["pool"], a["threshold"], a["percent"])),
}


def check_request(request: Any) -> tuple[str, dict[str, Any]]:
    """The operation and its checked arguments; raise VirtStudioError on anything else."""
    if not isinstance(request, dict) or set(request) - {"op", "args"}:
        raise VirtStudioError("The request is not of the form {op, args}.")
    op = request.get("op")
    if not isinstance(op, str) or op not in OPERATIONS:
        raise VirtStudioError(f"{op!r} is not an operation the helper performs.")
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise VirtStudioError("The arguments must be a mapping.")
    spec = OPERATIONS[op]
    unknown = set(args) - set(spec.required) - set(spec.optional)
    if unknown:
        raise VirtStudioError(f"{op} takes no argument {', '.join(sorted(unknown))}.")
    checked = {}
    for key, checker in spec.required.items():
        if key not in args:
            raise VirtStudioError(f"{op} needs {key}.")
        checked[key] = checker(args[key])
    for key, checker in spec.optional.items():
        if key in args:
            checked[key] = checker(args[key])
    return op, checked


def _device_paths(spec: Operation, args: dict[str, Any]) -> list[str]:
    paths: list[str] = []
    for key in spec.writes_devices:
        value = args[key]
        paths.extend(value if isinstance(value, list) else [value])
    return paths


def perform(request: Any) -> Any:
    """Check the request, re-check every device it writes, then run it."""
    op, args = check_request(request)
    spec = OPERATIONS[op]
    paths = _device_paths(spec, args)
    if spec.precheck is not None:
        spec.precheck(args)
    if paths:
        guard_devices(paths, wipe=args.get("wipe", False))
    return spec.action(args)
