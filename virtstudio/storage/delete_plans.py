"""What a delete loses, worked out before asking and again before acting.

Each planner reads the host fresh (the usage graph of every machine, snapshot
and volume) and returns a DeletePlan: exactly what is deleted for good, what
is refused and who uses it, and whether anything may go at all.  The dialog
shows the plan; the job works it out again and stops, changing nothing, when
the fresh plan differs from the one the user confirmed.  Planners run on the
host's worker or a job thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.units import format_bytes
from virtstudio.storage import usage_graph
from virtstudio.storage.usage_graph import UsageGraph, User

CHANGED = ("What this delete would remove changed since you confirmed it; nothing was "
           "deleted. Look again and confirm what is lost now.")
# Pools whose storage is a folder on the host: files in it that are not volumes go too.
_FOLDER_POOLS = {"dir", "fs", "netfs"}


@dataclass(frozen=True)
class Loss:
    """One thing deleted for good (compared by path: sizes of live disks move)."""

    path: str
    what: str = field(compare=False)


@dataclass(frozen=True)
class Refusal:
    """One thing that stays because something still uses it."""

    path: str
    users: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.path} is kept: used by {'; '.join(self.users)}"


@dataclass(frozen=True)
class DiskChoice:
    """A machine's disk in a machine delete: may it go, and is it ticked at first."""

    target: str
    source: str
    removable: bool
    why_not: str = ""
    checked: bool = False


@dataclass(frozen=True)
class DeletePlan:
    title: str
    summary: str  # one plain paragraph on what happens
    lost: tuple[Loss, ...] = ()
    refused: tuple[Refusal, ...] = ()
    blocked: str = ""  # set: nothing may be deleted, and this says why
    choices: tuple[DiskChoice, ...] = ()  # a machine delete: every disk
    chosen: tuple[str, ...] = ()  # a machine delete: the disks the user ticked
    offers: tuple[Loss, ...] = ()  # a machine delete: the disks that may go
    # (path, pool, volume name) of each volume the plan may delete
    volumes: tuple[tuple[str, str, str], ...] = field(default=(), compare=False)

    def same_losses(self, other: DeletePlan) -> bool:
        return (self.lost, self.refused, self.blocked, self.choices) == (
            other.lost, other.refused, other.blocked, other.choices)

    def pick(self, sources: tuple[str, ...]) -> DeletePlan:
        """A machine delete that removes the disks ``sources`` among those that may go."""
        offered = {loss.path for loss in self.offers}
        definition = tuple(loss for loss in self.lost if loss.path not in offered)
        disks = tuple(loss for loss in self.offers if loss.path in sources)
        return replace(self, lost=definition + disks,
                       chosen=tuple(loss.path for loss in disks))

    def volumes_lost(self) -> list[tuple[str, str, str]]:
        """(path, pool, volume name) of each volume this plan deletes, in order."""
        going = {loss.path for loss in self.lost}
        return [v for v in self.volumes if v[0] in going]

    def describe(self) -> str:
        lines = [self.summary]
        if self.lost:
            lines.append("Deleted for good:")
            lines += [f"  • {loss.what}" for loss in self.lost]
        if self.refused:
            lines.append("In use, so kept:")
            lines += [f"  • {r.describe()}" for r in self.refused]
        if self.blocked:
            lines.append(self.blocked)
        return "\n".join(lines)


def _users_text(users: list[User]) -> tuple[str, ...]:
    return tuple(u.describe() for u in users)


def _volume_text(vol: usage_graph.VolumeRecord) -> str:
    return (f"{vol.path} (volume {vol.name} in pool {vol.pool}, "
            f"{format_bytes(vol.allocation)} of data)")


def check_unchanged(fresh: DeletePlan, agreed: DeletePlan) -> DeletePlan:
    """``fresh`` when it loses exactly what ``agreed`` did; raise otherwise."""
    if not fresh.same_losses(agreed):
        raise VirtStudioError(CHANGED, fresh.describe())
    if fresh.blocked:
        raise VirtStudioError(fresh.blocked)
    return fresh


# ---- a volume ---------------------------------------------------------------------------

def plan_volume(conn: libvirt.virConnect, pool_uuid: str, name: str) -> DeletePlan:
    pool = conn.storagePoolLookupByUUIDString(pool_uuid)
    path = os.path.normpath(pool.storageVolLookupByName(name).path())
    graph = usage_graph.build(conn)
    record = graph.volume_at(path)
    title = f"Delete {name}?"
    users = graph.users_of(path)
    if users:
        return DeletePlan(title, f"{name} is in use and is not deleted.",
                          refused=(Refusal(path, _users_text(users)),),
                          blocked=f"Nothing is deleted while {name} is in use.")
    what = _volume_text(record) if record else path
    return DeletePlan(title, f"{name} and the data in it are deleted. This cannot be undone.",
                      lost=(Loss(path, what),), volumes=((path, pool.name(), name),))


# ---- a pool -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Contents:
    entries: tuple[Loss, ...]
    unknown: str = ""  # set: the contents could not be listed, and why
    blocked: str = ""  # set: listed, but not something libvirt can delete


def _active_contents(pool: libvirt.virStoragePool, graph: UsageGraph) -> _Contents:
    entries = []
    for vol in pool.listAllVolumes(0):
        path = os.path.normpath(vol.path())
        record = graph.volume_at(path)
        entries.append(Loss(path, _volume_text(record) if record else path))
    return _Contents(tuple(sorted(entries, key=lambda e: e.path)))


def _folder_contents(folder: str) -> _Contents:
    """A stopped dir pool's folder, read without starting the pool."""
    try:
        with os.scandir(folder) as found:
            items = sorted(found, key=lambda e: e.name)
            entries, blocked = [], ""
            for item in items:
                path = os.path.join(folder, item.name)
                if item.is_dir(follow_symlinks=False):
                    if any(os.scandir(path)):
                        blocked = (f"The folder {path} in the pool holds files of its own; "
                                   "libvirt deletes only empty folders. Nothing is deleted.")
                    entries.append(Loss(path, f"{path} (an empty folder)"))
                elif item.is_file(follow_symlinks=False):
                    size = item.stat(follow_symlinks=False).st_blocks * 512
                    entries.append(Loss(path, f"{path} ({format_bytes(size)} of data)"))
                else:
                    blocked = (f"{path} in the pool is neither a file nor a folder; libvirt "
                               "does not delete it. Nothing is deleted.")
    except FileNotFoundError:
        return _Contents((), unknown=f"its folder {folder} does not exist")
    except OSError as exc:
        return _Contents((), unknown=f"its folder {folder} cannot be read ({exc.strerror})")
    return _Contents(tuple(entries), blocked=blocked)


def _logical_contents(vg: str) -> _Contents:
    """A stopped logical pool's LVs, read with lvs (argv list, JSON) without activating them."""
    lvs = shutil.which("lvs")
    if not lvs:
        return _Contents((), unknown="lvs (lvm2) is not installed")
    try:
        done = subprocess.run([lvs, "--reportformat", "json", "--units", "b", "--nosuffix",
                               "-o", "lv_name,lv_size", "--", vg],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            return _Contents((), unknown=f"lvs could not read {vg}")
        rows = json.loads(done.stdout)["report"][0]["lv"]
        entries = tuple(Loss(f"/dev/{vg}/{row['lv_name']}",
                             f"/dev/{vg}/{row['lv_name']} (logical volume, "
                             f"{format_bytes(int(row['lv_size']))})") for row in rows)
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError, TypeError):
        return _Contents((), unknown=f"lvs could not read {vg}")
    return _Contents(tuple(sorted(entries, key=lambda e: e.path)))


def _stopped_contents(conn: libvirt.virConnect, root: ET.Element) -> _Contents:
    parsed = uri_mod.parse(conn.getURI())
    if parsed.is_remote or parsed.is_test:
        return _Contents((), unknown="it is stopped, and its storage is not on this computer")
    kind = root.get("type", "")
    if kind == "dir":
        return _folder_contents(root.findtext("target/path", "") or "")
    if kind == "logical":
        return _logical_contents(root.findtext("source/name", "") or root.findtext("name", ""))
    return _Contents((), unknown=f"a stopped {kind} pool cannot be read without starting it")


def plan_pool(conn: libvirt.virConnect, uuid: str, with_data: bool) -> DeletePlan:
    """Forget the pool; ``with_data``: also delete everything in it, named one by one."""
    pool = conn.storagePoolLookupByUUIDString(uuid)
    name, active = pool.name(), bool(pool.isActive())
    root = ET.fromstring(pool.XMLDesc(0))
    kind = root.get("type", "")
    folder = root.findtext("target/path", "") or ""
    title = f"Delete pool {name}?"
    if not with_data:
        return DeletePlan(title, f"The pool {name} is stopped and forgotten by libvirt. Its "
                                 f"volumes and data stay where they are ({folder or kind}); "
                                 "you can add the pool again later.")
    if active:
        pool.refresh(0)
    graph = usage_graph.build(conn)
    contents = _active_contents(pool, graph) if active else _stopped_contents(conn, root)
    if contents.unknown:
        return DeletePlan(title, f"The contents of {name} are unknown: {contents.unknown}.",
                          blocked="Its data is not deleted while nobody can say what it "
                                  "holds. Start the pool to list its volumes, or delete "
                                  "the pool definition alone.")
    going = frozenset(e.path for e in contents.entries)
    refused = []
    for entry in contents.entries:
        users = graph.users_of(entry.path, exclude_paths=going)
        if users:
            refused.append(Refusal(entry.path, _users_text(users)))
    if kind in _FOLDER_POOLS and folder:
        for path, users in sorted(graph.paths_under(folder).items()):
            if path not in going:
                refused.append(Refusal(path, _users_text(users)))
    device_el = root.find("source/device")
    device = device_el.get("path", "") if device_el is not None else ""
    where = {"logical": f"the volume group {root.findtext('source/name', '') or name} is "
                        "removed",
             "disk": f"every partition on {device} is "
                     "removed",
             "dir": f"the folder {folder} is removed"}.get(kind, "its storage is removed")
    count = len(contents.entries)
    summary = (f"Deleted for good: {count} volume{'s' if count != 1 else ''}; then {where}, "
               f"and libvirt forgets {name}. This cannot be undone.") if count else (
        f"{name} holds no volumes; {where}, and libvirt forgets {name}.")
    blocked = contents.blocked
    if refused and not blocked:
        blocked = (f"The data of {name} is not deleted while any of it is in use: nothing is "
                   "deleted. You can delete the pool definition alone.")
    return DeletePlan(title, summary, lost=contents.entries, refused=tuple(refused),
                      blocked=blocked)


# ---- a machine ----------------------------------------------------------------------------

def plan_machine(conn: libvirt.virConnect, uuid: str,
                 remove: tuple[str, ...] | None = None) -> DeletePlan:
    """Which disks of the machine may go (and who keeps the others); ``remove`` picks them.

    Without ``remove`` the disks that are safe to delete and are not read-only are picked.
    """
    dom = conn.lookupByUUIDString(uuid)
    name = dom.name()
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
    root = ET.fromstring(dom.XMLDesc(flags))
    graph = usage_graph.build(conn)
    by_name = graph.volume_paths
    choices: list[DiskChoice] = []
    refused: list[Refusal] = []
    for disk in root.findall("devices/disk"):
        target_el = disk.find("target")
        target = target_el.get("dev", "") if target_el is not None else ""
        path = usage_graph.source_path(disk, by_name)
        if disk.get("type") == "network" or not path:
            if disk.find("source") is not None:
                choices.append(DiskChoice(target, path or "network disk", False, "network disk"))
            continue
        users = graph.users_of(path, exclude_uuid=uuid)
        optional = (disk.get("device") in ("cdrom", "floppy") or disk.find("readonly") is not None
                    or disk.find("shareable") is not None)
        if users:
            why = "also used by " + "; ".join(_users_text(users))
            choices.append(DiskChoice(target, path, False, why))
            refused.append(Refusal(path, _users_text(users)))
        elif graph.volume_at(path) is None:
            choices.append(DiskChoice(target, path, False,
                                      "not a volume of a running storage pool"))
        else:
            choices.append(DiskChoice(target, path, True, "", not optional))
    offers = []
    for choice in choices:
        record = graph.volume_at(choice.source)
        if choice.removable and record is not None:
            offers.append((Loss(record.path, f"disk {choice.target}: {_volume_text(record)}"),
                           record.pool, record.name))
    running = " It is running and is forced off first." if dom.isActive() else ""
    lost = [Loss("", f"the definition of {name}, its snapshot records and saved state")]
    blocked = ""
    nvram_text = root.findtext("os/nvram", "") or ""
    nvram = os.path.normpath(nvram_text) if nvram_text else ""
    if nvram:  # undefining removes it with the definition
        lost.append(Loss(nvram, f"{nvram} (its UEFI variables)"))
        users = graph.users_of(nvram, exclude_uuid=uuid)
        if users:
            refused.append(Refusal(nvram, _users_text(users)))
            blocked = (f"{name} shares its UEFI variables file with another machine; "
                       "nothing is deleted.")
    plan = DeletePlan(f"Delete {name}?", f"The virtual machine {name} is deleted. This cannot "
                                         f"be undone.{running}",
                      lost=tuple(lost), refused=tuple(refused), blocked=blocked,
                      choices=tuple(choices),
                      volumes=tuple((loss.path, pool, vol) for loss, pool, vol in offers),
                      offers=tuple(loss for loss, _pool, _vol in offers))
    return plan.pick(tuple(c.source for c in choices if c.checked) if remove is None
                     else remove)
