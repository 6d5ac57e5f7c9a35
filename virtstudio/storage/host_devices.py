"""This computer's block devices and partitions, and whether each one is in use.

Read from ``lsblk --json`` (an argv list) plus /proc/swaps and /sys holders.
A device counts as in use when it is mounted, swap, a physical volume, held
by another device (device-mapper, RAID), read-only, holds the root file
system, is split into partitions, or carries a file system or partition
table: anything on it could be lost, so only a blank device is offered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.core.units import format_bytes

_COLUMNS = "NAME,PATH,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINTS,RO,MODEL,PTTYPE"
_KINDS = ("disk", "part", "loop")
SYS_BLOCK = Path("/sys/class/block")


@dataclass(frozen=True)
class BlockDevice:
    name: str
    path: str
    size: int
    kind: str  # disk, part or loop
    fstype: str = ""
    label: str = ""
    mountpoints: tuple[str, ...] = ()
    parent: str = ""
    model: str = ""
    partitions: tuple[str, ...] = ()
    in_use: str = ""  # why it must not be written to; "" when it is free

    @property
    def free(self) -> bool:
        return not self.in_use

    def describe(self) -> str:
        what = {"disk": "disk", "part": "partition", "loop": "loop device"}[self.kind]
        model = f" ({self.model})" if self.model else ""
        return f"{self.path}, a {format_bytes(self.size)} {what}{model}"


def _reason(entry: dict, swaps: set[str], holders: list[str], ro: bool) -> str:
    path = entry.get("path") or ""
    mounts = [m for m in entry.get("mountpoints") or [] if m]
    fstype = entry.get("fstype") or ""
    if "/" in mounts:
        return "holds the root file system"
    if mounts:
        return f"is mounted on {', '.join(mounts)}"
    if path in swaps:
        return "is in use as swap"
    if fstype == "LVM2_member":
        return "is an LVM physical volume already"
    if holders:
        return f"is in use by {', '.join(holders)}"
    if ro:
        return "is read-only"
    if fstype:
        return f"holds a {fstype} file system or signature (wipe it first if it is not needed)"
    if entry.get("pttype"):
        return f"has a {entry['pttype']} partition table"
    return ""


def parse_lsblk(text: str, *, swaps: Iterable[str] = (),
                holders: dict[str, list[str]] | None = None,
                probe: Callable[[str], dict[str, str]] | None = None) -> list[BlockDevice]:
    """Disks, partitions and loop devices from ``lsblk --json --bytes`` output, flattened.

    A disk whose partition holds the root file system is marked as the root
    disk too; a disk with partitions is in use as a whole.  ``probe`` reads
    signatures lsblk left out (it takes them from udev, which may not run).
    """
    swap_set, holders = set(swaps), holders or {}
    found: list[BlockDevice] = []

    def walk(entry: dict, parent: BlockDevice | None) -> BlockDevice | None:
        kind = entry.get("type") or ""
        size = int(entry.get("size") or 0)
        if kind not in _KINDS or size == 0:
            return None
        if probe is not None and not entry.get("fstype") and not entry.get("pttype"):
            entry = {**entry, **probe(entry.get("path") or "")}
        name = entry.get("name") or ""
        children = entry.get("children") or []
        device = BlockDevice(
            name=name, path=entry.get("path") or f"/dev/{name}", size=size, kind=kind,
            fstype=entry.get("fstype") or "", label=entry.get("label") or "",
            mountpoints=tuple(m for m in entry.get("mountpoints") or [] if m),
            parent=parent.name if parent is not None else "",
            model=(entry.get("model") or "").strip(),
            partitions=tuple(c.get("name", "") for c in children if c.get("type") == "part"),
            in_use=_reason(entry, swap_set, holders.get(name, []), bool(entry.get("ro"))))
        index = len(found)
        found.append(device)
        kids = [k for c in children if (k := walk(c, device)) is not None]
        if not device.in_use:
            if any(k.in_use == "holds the root file system" for k in kids):
                device = replace(device, in_use="holds the root file system")
            elif device.partitions:
                device = replace(device, in_use=f"has partitions ({', '.join(device.partitions)})")
            elif kids:
                device = replace(device, in_use=f"is in use by {', '.join(k.name for k in kids)}")
            found[index] = device
        return device

    for entry in json.loads(text).get("blockdevices", []):
        walk(entry, None)
    return found


def _swaps() -> list[str]:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return []
    return [os.path.realpath(line.split()[0]) for line in lines if line.strip()]


def _holders(names: Iterable[str]) -> dict[str, list[str]]:
    result = {}
    for name in names:
        folder = SYS_BLOCK / name / "holders"
        try:
            result[name] = sorted(os.listdir(folder))
        except OSError:
            result[name] = []
    return result


def list_devices() -> list[BlockDevice]:
    """Every disk, partition and set-up loop device on this computer (blocking: ~10 ms)."""
    if shutil.which("lsblk") is None:
        raise VirtStudioError("lsblk is not installed (Debian package util-linux).")
    done = subprocess.run(["lsblk", "--json", "--bytes", "--output", _COLUMNS],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise VirtStudioError("lsblk could not list the block devices.", done.stderr)
    names = [p.name for p in SYS_BLOCK.iterdir()] if SYS_BLOCK.is_dir() else []
    return parse_lsblk(done.stdout, swaps=_swaps(), holders=_holders(names), probe=_probe)


def _probe(path: str) -> dict[str, str]:
    """File system and partition table type read from the device itself (blkid -p)."""
    if not path or shutil.which("blkid") is None:
        return {}
    try:
        done = subprocess.run(["blkid", "-p", "-o", "export", path], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {}
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    found = {}
    if values.get("TYPE"):
        found["fstype"] = values["TYPE"]
    if values.get("PTTYPE"):
        found["pttype"] = values["PTTYPE"]
    return found


def find_device(path: str, devices: list[BlockDevice] | None = None) -> BlockDevice:
    """The device at ``path`` (symlinks followed); VirtStudioError when there is none."""
    real = os.path.realpath(path)
    for device in devices if devices is not None else list_devices():
        if device.path == real or device.path == path:
            return device
    raise VirtStudioError(f"{path} is not a disk, partition or loop device on this computer.")


def check_free(path: str, devices: list[BlockDevice] | None = None) -> BlockDevice:
    """The device, when nothing on it could be lost; otherwise a refusal in words."""
    device = find_device(path, devices)
    if device.in_use:
        raise VirtStudioError(f"{device.path} {device.in_use}; nothing was changed.")
    return device
