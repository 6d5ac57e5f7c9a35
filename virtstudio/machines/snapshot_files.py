"""Which files a machine's disks and snapshots need, read from the files themselves.

libvirt's snapshot records name files, and libvirt rewrites those records (a
merging delete re-points the later snapshots, a revert done here redefines
one), so a record is used only to name the file a snapshot starts from.  What
each file needs below it comes from the file (qemu-img, in the format the
overlay records); which file holds an internal snapshot comes from the qcow2
files' own snapshot tables; and a file that holds internal snapshots is needed,
with everything below it, whether a record names it or not.

Run on a job or worker thread: it runs qemu-img.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import libvirt

from virtstudio.core.errors import VirtStudioError
from virtstudio.machines.disk_files import disk_chain_from_xml, disk_format
from virtstudio.storage import qemu_img


class _Disk(Protocol):
    target: str
    kind: str
    overlay: str
    base: str
    base_format: str


class _Snapshot(Protocol):
    name: str
    memory_file: str

    @property
    def disks(self) -> tuple[_Disk, ...]: ...


@dataclass
class DiskReader:
    """qemu-img's answers for one plan, each file read once."""

    local: bool = True
    _chains: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _internal: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def chain(self, path: str, fmt: str) -> list[str]:
        """``path`` read as ``fmt`` and every backing file below it; [path] if unreadable."""
        key = (path, fmt or "raw")
        if key not in self._chains:
            files = [path]
            if self.local:
                try:
                    layers = qemu_img.chain(Path(path), fmt or "raw")
                except (VirtStudioError, ValueError, OSError):
                    layers = []
                for layer in layers:  # qemu-img read each table already: keep it
                    if layer.format == "qcow2":
                        self._internal.setdefault(layer.path, layer.snapshots)
                files = [layer.path for layer in layers] or [path]
            self._chains[key] = files
        return self._chains[key]

    def internal(self, path: str) -> tuple[str, ...]:
        """The internal snapshots the qcow2 file ``path`` holds, from its snapshot table."""
        if path not in self._internal:
            names: tuple[str, ...] = ()
            if self.local and path and Path(path).is_file():
                try:
                    names = qemu_img.info(Path(path), "qcow2").snapshots
                except (VirtStudioError, ValueError, OSError):
                    names = ()  # not a qcow2 file: it holds no snapshot
            self._internal[path] = names
        return self._internal[path]

    def machine_chains(self, dom: libvirt.virDomain) -> dict[str, list[str]]:
        """Each disk's files, top first, as the machine uses them now.

        The top comes from the machine's definition; the files below it from the
        top file itself.  On a remote host the files cannot be read here, so
        libvirt's report of the chain is all there is."""
        root = ET.fromstring(dom.XMLDesc(0))
        chains = {}
        for disk in root.findall("devices/disk"):
            target = disk.find("target")
            files = disk_chain_from_xml(disk)
            if target is None or not files:
                continue
            if self.local:
                files = self.chain(files[0], disk_format(disk))
            chains[target.get("dev", "")] = files
        return chains


def read_as(disk: _Disk) -> str:
    """The format a snapshot's starting file is read in (the machine's declared one)."""
    return disk.base_format or ("qcow2" if disk.kind == "internal" else "raw")


@dataclass(frozen=True)
class Needs:
    """Each file that must stay, with what needs it (the subjects of a sentence)."""

    by: dict[str, tuple[str, ...]]

    def __contains__(self, path: object) -> bool:
        return path in self.by

    def files(self) -> set[str]:
        return set(self.by)

    def users(self, path: str) -> tuple[str, ...]:
        return self.by.get(path, ())


def _add(by: dict[str, list[str]], files: Iterable[str], who: str) -> None:
    for path in files:
        users = by.setdefault(path, [])
        if who not in users:
            users.append(who)


def holder(reader: DiskReader, snap: _Snapshot, disk: _Disk, candidates: Iterable[str]) -> str:
    """The file that holds the internal snapshot ``snap`` of ``disk``, as found on disk.

    The record's file is tried first; when its table does not list the snapshot
    (the record was rewritten), the files the machine and its snapshots read are
    searched.  "" when no file holds it."""
    first = reader.chain(disk.base, read_as(disk)) if disk.base else []
    for path in [*first, *candidates]:
        if snap.name in reader.internal(path):
            return path
    return ""


def snapshot_needs(reader: DiskReader, snaps: Iterable[_Snapshot],
                   chains: dict[str, list[str]], skip: str = "",
                   kinds: tuple[str, ...] = ("external", "internal")) -> Needs:
    """The files the machine's snapshots other than ``skip`` need, read from disk.

    An external snapshot needs the file it starts from and every file below it;
    an internal one the qcow2 file holding it and every file below that; a memory
    snapshot its memory file.  With "internal" in ``kinds``, any file of the machine
    that holds internal snapshots (other than ``skip``) is needed too, even one no
    record names any more: it holds data someone may return to."""
    snaps = list(snaps)
    by: dict[str, list[str]] = {}
    candidates: list[str] = [p for chain in chains.values() for p in chain]
    for snap in snaps:
        for disk in snap.disks:
            if disk.kind == "external" and disk.base:
                candidates += reader.chain(disk.base, read_as(disk))
    candidates = list(dict.fromkeys(candidates))
    for snap in snaps:
        if snap.name == skip:
            continue
        who = f"the snapshot {snap.name}"
        for disk in snap.disks:
            if disk.kind not in kinds:
                continue
            if disk.kind == "external" and disk.base:
                _add(by, reader.chain(disk.base, read_as(disk)), who)
            elif disk.kind == "internal":
                found = holder(reader, snap, disk, candidates)
                if found:
                    _add(by, reader.chain(found, "qcow2"), who)
                elif disk.base:
                    _add(by, reader.chain(disk.base, read_as(disk)), who)
        if snap.memory_file and "external" in kinds:
            _add(by, [snap.memory_file], who)
    if "internal" in kinds:
        for path in candidates:
            inside = [n for n in reader.internal(path) if n != skip]
            if inside:
                who = (f"the internal snapshot{'s' if len(inside) > 1 else ''} "
                       f"{', '.join(inside)} inside {Path(path).name}")
                _add(by, reader.chain(path, "qcow2"), who)
    return Needs({p: tuple(u) for p, u in by.items()})
