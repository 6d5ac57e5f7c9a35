"""The helper's own look at a block device before it writes to it.

The caller may be anything, so nothing it says about a device is believed:
the helper reads the device itself (``wipefs --no-act --json``, then ``blkid
-p`` for what wipefs does not list), the kernel's holders, its mount table and
its swap list.  A device that is mounted, swap or held (device-mapper, RAID),
or has a partition that is, is always refused.  A device that only carries a
signature (file system, partition table, LVM, RAID member) is refused unless
the request says ``wipe`` — which the application sends only after the user
typed the device's name — and then the signatures are erased first.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

SYS_BLOCK = Path("/sys/class/block")
MAX_TOOL_OUTPUT = 1 << 20  # a device's signature list is small; more is not believed
_TOOL_TIMEOUT = 60


@dataclass(frozen=True)
class DeviceFindings:
    """What was found on one device: ``busy`` is never overridden, ``signatures`` by wipe."""

    path: str
    busy: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()


def _tool(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[int, str]:
    """(exit code, output) of a probe; a code outside ``ok`` refuses (fail closed)."""
    if shutil.which(argv[0]) is None:
        raise VirtStudioError(f"{argv[0]} is not installed; the device cannot be checked, so "
                              "nothing was changed.")
    done = subprocess.run(argv, capture_output=True, timeout=_TOOL_TIMEOUT)
    if len(done.stdout) > MAX_TOOL_OUTPUT:
        raise VirtStudioError(f"{argv[0]} said more about the device than a device holds; "
                              "nothing was changed.")
    if done.returncode not in ok:
        raise VirtStudioError(f"{argv[0]} could not read {argv[-1]}, so it cannot be checked; "
                              "nothing was changed.", done.stderr.decode("utf-8", "replace"))
    return done.returncode, done.stdout.decode("utf-8", "replace")


def _plain(text: object) -> str:
    """A foreign string (read from the disk) cut down to printable characters."""
    value = "".join(c for c in str(text) if c.isprintable())[:64]
    return value or "unknown"


def _wipefs_signatures(path: str) -> list[str]:
    _, out = _tool(["wipefs", "--no-act", "--json", path])
    if not out.strip():
        return []
    try:
        rows = json.loads(out).get("signatures", [])
    except (ValueError, AttributeError):
        raise VirtStudioError(f"wipefs gave an unreadable answer for {path}; nothing was "
                              "changed.") from None
    found = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("type"):
            kind = _plain(row["type"])
            if kind not in found:
                found.append(kind)
    return found


def _blkid_signatures(path: str) -> list[str]:
    # blkid -p: 0 found, 2 nothing found, 8 several candidates (still a signature).
    code, out = _tool(["blkid", "-p", "-o", "export", path], ok=(0, 2, 8))
    if code == 8:
        return ["several signatures (blkid cannot tell which)"]
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return [_plain(values[key]) for key in ("TYPE", "PTTYPE") if values.get(key)]


def _describe(kind: str) -> str:
    lowered = kind.lower()
    if lowered in ("gpt", "dos", "pmbr", "atari", "bsd", "sun", "sgi", "mac"):
        return f"a {kind} partition table"
    if lowered == "lvm2_member":
        return "an LVM physical volume"
    if lowered in ("linux_raid_member", "isw_raid_member", "ddf_raid_member"):
        return f"a RAID member ({kind})"
    if lowered == "swap":
        return "swap space"
    return f"a file system or signature ({kind})"


def _mounted_devices() -> set[int]:
    """Device numbers of everything mounted (``major:minor`` of /proc/self/mountinfo)."""
    found: set[int] = set()
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and ":" in fields[2]:
            major, minor = fields[2].split(":", 1)
            if major.isdigit() and minor.isdigit():
                found.add(os.makedev(int(major), int(minor)))
    return found


def _swap_devices() -> set[int]:
    found: set[int] = set()
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        if not line.strip():
            continue
        try:
            st = os.stat(line.split()[0].replace("\\040", " "))
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            found.add(st.st_rdev)
    return found


def _children(name: str) -> list[str]:
    """The kernel names of ``name``'s partitions."""
    folder = SYS_BLOCK / name
    try:
        return sorted(entry.name for entry in folder.iterdir()
                      if (entry / "partition").exists())
    except OSError:
        return []


def _holders(name: str) -> list[str]:
    try:
        return sorted(os.listdir(SYS_BLOCK / name / "holders"))
    except OSError:
        return []


def _dev_number(name: str) -> int | None:
    try:
        major, minor = (SYS_BLOCK / name / "dev").read_text().strip().split(":")
        return os.makedev(int(major), int(minor))
    except (OSError, ValueError):
        return None


def _volume_group_of(path: str) -> str:
    """The volume group ``path`` is a physical volume of, or "" (LVM's own report)."""
    if shutil.which("pvs") is None:
        return ""
    _, out = _tool(["pvs", "--reportformat", "json", "-o", "pv_name,vg_name", path],
                   ok=(0, 5))
    try:
        rows = [row for block in json.loads(out or "{}").get("report", [])
                for row in block.get("pv", [])]
    except (ValueError, AttributeError):
        return ""
    return next((_plain(r["vg_name"]) for r in rows if r.get("vg_name")), "")


def _open_exclusive(path: str) -> str:
    """The kernel's own answer: a block device opened O_EXCL fails while anything claims it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == 16:  # EBUSY
            return "is in use (the kernel holds it open exclusively)"
        return f"cannot be opened ({exc.strerror})"
    os.close(fd)
    return ""


def is_partition(path: str) -> bool:
    return (SYS_BLOCK / Path(os.path.realpath(path)).name / "partition").exists()


def inspect_device(path: str) -> DeviceFindings:
    """Read ``path`` as the helper sees it; VirtStudioError when it is no block device."""
    try:
        st = os.stat(path)
    except OSError:
        raise VirtStudioError(f"{path} does not exist; nothing was changed.") from None
    if not stat.S_ISBLK(st.st_mode):
        raise VirtStudioError(f"{path} is not a block device; nothing was changed.")
    name = Path(os.path.realpath(path)).name
    mounted, swaps = _mounted_devices(), _swap_devices()
    busy: list[str] = []
    for part in [name, *_children(name)]:
        number = st.st_rdev if part == name else _dev_number(part)
        what = "it" if part == name else f"its partition {part}"
        if number is not None and number in mounted:
            busy.append(f"{what} is mounted")
        if number is not None and number in swaps:
            busy.append(f"{what} is in use as swap")
        holders = _holders(part)
        if holders:
            busy.append(f"{what} is held by {', '.join(holders)}")
    if not busy:
        claim = _open_exclusive(path)
        if claim:
            busy.append(f"it {claim}")
    kinds = _wipefs_signatures(path)
    for kind in _blkid_signatures(path):
        if kind.lower() not in {k.lower() for k in kinds}:
            kinds.append(kind)
    if "lvm2_member" in {k.lower() for k in kinds}:
        group = _volume_group_of(path)
        if group:
            # Erasing one physical volume breaks the whole group: never by a wipe flag.
            busy.append(f"it is a physical volume of the volume group {group}")
    signatures = [_describe(kind) for kind in kinds]
    children = _children(name)
    if children:
        signatures.append(f"partitions ({', '.join(children)})")
    return DeviceFindings(path, tuple(busy), tuple(signatures))


def refusal(findings: DeviceFindings, wipe: bool) -> str:
    """Why the helper must not write ``findings.path`` now, or ""."""
    if findings.busy:
        return (f"{findings.path} is in use: {'; '.join(findings.busy)}. Nothing was "
                "changed.")
    if findings.signatures and not wipe:
        return (f"{findings.path} is not blank: it carries {', '.join(findings.signatures)}. "
                "Everything on it would be lost; nothing was changed. Confirm by typing the "
                "device's name to wipe it.")
    return ""


def wipe_signatures(path: str) -> None:
    """Erase every signature wipefs knows on ``path`` (and its partitions' table)."""
    if shutil.which("wipefs") is None:
        raise VirtStudioError("wipefs is not installed (Debian package util-linux).")
    done = subprocess.run(["wipefs", "--all", path], capture_output=True, text=True,
                          timeout=_TOOL_TIMEOUT)
    if done.returncode != 0:
        raise VirtStudioError(f"wipefs could not erase the signatures on {path}; nothing "
                              "else was changed.", done.stderr)


def guard_devices(paths: list[str], wipe: bool) -> None:
    """Refuse unless every device is free (or only signed, with ``wipe``); then wipe."""
    findings = [inspect_device(path) for path in paths]
    for found in findings:
        problem = refusal(found, wipe)
        if problem:
            raise VirtStudioError(problem)
    for found in findings:
        if found.signatures:
            wipe_signatures(found.path)
