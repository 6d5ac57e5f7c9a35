"""LVM thin provisioning through the LVM2 tools and their JSON reports.

libvirt cannot create thin pools or thin volumes (its logical pool makes old
snapshot LVs and lists thin LVs as plain volumes), so they are made here and
the libvirt pool over the same volume group is refreshed afterwards.  Every
device, name and size is checked first, and a device that is mounted or
already belongs to a volume group is refused untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

_NAME_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
_RESERVED = ("snapshot", "pvmove", "_cdata", "_cmeta", "_corig", "_mimage", "_mlog", "_pmspare",
             "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin")


@dataclass(frozen=True)
class ThinPool:
    vg: str
    name: str
    size: int
    data_percent: float
    metadata_percent: float


@dataclass(frozen=True)
class ThinVolume:
    vg: str
    name: str
    size: int
    pool: str
    data_percent: float
    path: str


def validate_name(name: str, what: str = "name") -> None:
    if not _NAME_RE.fullmatch(name or "") or name in (".", "..") or name.startswith("-"):
        raise VirtStudioError(f"“{name}” is not a name LVM accepts for a {what}: use letters, "
                              "digits, + _ . -, not starting with a dash.")
    if any(part in name for part in _RESERVED):
        raise VirtStudioError(f"“{name}” contains a part LVM reserves for itself.")


def _lvm(*args: str, timeout: float = 120.0) -> str:
    tool = args[0]
    if shutil.which(tool) is None:
        raise VirtStudioError(f"{tool} is not installed (Debian package lvm2).")
    env = dict(os.environ, LVM_SUPPRESS_FD_WARNINGS="1")
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise VirtStudioError(f"{tool} failed: {lines[-1] if lines else done.returncode}",
                              " ".join(args) + "\n" + done.stderr)
    return done.stdout


def _report(tool: str, fields: str, *args: str) -> list[dict[str, str]]:
    out = _lvm(tool, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, *args)
    data = json.loads(out)
    key = {"pvs": "pv", "vgs": "vg", "lvs": "lv"}[tool]
    return [row for block in data.get("report", []) for row in block.get(key, [])]


def device_in_use(device: str) -> str:
    """Why ``device`` must not be touched, or "" when it is free."""
    real = os.path.realpath(device)
    if not Path(real).exists():
        return f"{device} does not exist."
    if not Path(real).is_block_device():
        return f"{device} is not a block device."
    with open("/proc/mounts") as mounts:
        for line in mounts:
            source = line.split()[0]
            if source.startswith("/dev/") and os.path.realpath(source) == real:
                return f"{device} is mounted."
    holders = Path("/sys/class/block") / Path(real).name / "holders"
    if holders.is_dir() and any(holders.iterdir()):
        return f"{device} is in use by another device ({', '.join(os.listdir(holders))})."
    for pv in _report("pvs", "pv_name,vg_name"):
        if os.path.realpath(pv["pv_name"]) == real:
            vg = pv.get("vg_name") or "no group"
            return f"{device} is already an LVM physical volume ({vg})."
    return ""


def create_volume_group(name: str, devices: list[str]) -> None:
    validate_name(name, "volume group")
    if not devices:
        raise VirtStudioError("Choose at least one disk for the volume group.")
    for device in devices:
        problem = device_in_use(device)
        if problem:
            raise VirtStudioError(f"{problem} Nothing was changed.")
    if any(vg["vg_name"] == name for vg in _report("vgs", "vg_name")):
        raise VirtStudioError(f"A volume group called {name} exists already.")
    _lvm("vgcreate", "--yes", name, *devices)


def vg_free(vg: str) -> int:
    rows = _report("vgs", "vg_name,vg_free", vg)
    if not rows:
        raise VirtStudioError(f"There is no volume group called {vg}.")
    return int(rows[0]["vg_free"])


def create_thin_pool(vg: str, name: str, size: int, *, error_when_full: bool = False) -> None:
    """A thin pool; when full, writes wait up to 60 s for it to grow, unless told to fail."""
    validate_name(name, "thin pool")
    free = vg_free(vg)
    if size > free:
        raise VirtStudioError(f"A {size >> 20} MiB thin pool does not fit in {vg}: "
                              f"{free >> 20} MiB free.")
    _lvm("lvcreate", "--yes", "--type", "thin-pool", "-L", f"{size}b", "-n", name, vg)
    if error_when_full:
        _lvm("lvchange", "--errorwhenfull", "y", f"{vg}/{name}")


def create_thin_volume(vg: str, pool: str, name: str, virtual_size: int) -> str:
    """A thin LV of any virtual size; its space comes from the pool as data is written."""
    validate_name(name, "thin volume")
    pools = {p.name: p for p in thin_pools(vg)}
    if pool not in pools:
        raise VirtStudioError(f"There is no thin pool {pool} in {vg}.")
    if pools[pool].data_percent >= 100.0:
        raise VirtStudioError(f"The thin pool {pool} is full: grow it before adding volumes.")
    _lvm("lvcreate", "--yes", "--type", "thin", "-V", f"{virtual_size}b", "--thinpool", pool,
         "-n", name, vg)
    return f"/dev/{vg}/{name}"


def snapshot_thin_volume(vg: str, origin: str, name: str) -> str:
    validate_name(name, "snapshot")
    # -kn: the snapshot activates like a normal volume (thin snapshots skip activation).
    _lvm("lvcreate", "--yes", "-s", "-kn", "-n", name, f"{vg}/{origin}")
    return f"/dev/{vg}/{name}"


def extend(vg: str, name: str, new_size: int) -> None:
    _lvm("lvextend", "--yes", "-L", f"{new_size}b", f"{vg}/{name}")


def thin_pools(vg: str) -> list[ThinPool]:
    rows = _report("lvs", "lv_name,vg_name,lv_size,data_percent,metadata_percent,segtype", vg)
    return [ThinPool(r["vg_name"], r["lv_name"], int(r["lv_size"]),
                     float(r["data_percent"] or 0), float(r["metadata_percent"] or 0))
            for r in rows if r.get("segtype") == "thin-pool"]


def thin_volumes(vg: str) -> list[ThinVolume]:
    rows = _report("lvs", "lv_name,vg_name,lv_size,pool_lv,data_percent,lv_path,segtype", vg)
    return [ThinVolume(r["vg_name"], r["lv_name"], int(r["lv_size"]), r["pool_lv"],
                       float(r["data_percent"] or 0), r["lv_path"])
            for r in rows if r.get("segtype") == "thin"]


def remove_volume_group(vg: str) -> None:
    _lvm("vgremove", "--yes", "--force", vg)


def set_metadata_profile(vg: str, lv: str, profile: str) -> None:
    """Attach a profile from LVM's profile folder to one LV (settings that last)."""
    _lvm("lvchange", "--metadataprofile", profile, f"{vg}/{lv}")


def lv_profile(vg: str, lv: str) -> str:
    rows = _report("lvs", "lv_name,lv_profile", f"{vg}/{lv}")
    return rows[0].get("lv_profile", "") if rows else ""
