"""Who uses which image: one graph of a host's machines, snapshots and volumes.

Every delete asks this graph whether a file is in use, so that a disk of a
shut-off machine, the base image of a linked clone or a file a snapshot needs
is never removed.  The graph is read from libvirt's own records: each
machine's saved and live definition (disks with their <backingStore> chains,
kernel, initrd, NVRAM), each snapshot's XML (the machine's disks at that time,
external overlays, the memory file) and each volume's XML in every running
pool (its <backingStore>).  Only where those records end without saying
whether a qcow2 file has a backing file is the chain asked of qemu-img, with
the format the record gives; a raw image has no backing file whatever its
bytes say.

Build it on a job or worker thread: it calls libvirt and may run qemu-img.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import qemu_img

# Formats whose images may name a backing file; every other one is a leaf.
_LAYERED = {"qcow2", "qed", "vmdk", "vhdx", "qcow"}


@dataclass(frozen=True)
class User:
    """Something that reads a file: a machine's disk, a snapshot, or another volume."""

    kind: str  # "machine", "snapshot" or "volume"
    machine: str  # the machine's name ("" for a volume)
    uuid: str  # the machine's UUID ("" for a volume)
    name: str  # what reads the file, as a user would say it
    direct: bool  # False when the file is further down its backing chain
    certain: bool = True  # False when its chain could not be read to the end

    def describe(self) -> str:
        if not self.certain:
            return f"{self.name} may read it (its backing files could not be read)"
        return self.name + ("" if self.direct else " (as a backing file)")


@dataclass(frozen=True)
class VolumeRecord:
    pool: str
    name: str
    path: str
    format: str
    capacity: int
    allocation: int


@dataclass(frozen=True)
class _Root:
    """A file something opens directly, and what that something is."""

    path: str
    format: str
    kind: str
    machine: str
    uuid: str
    name: str


def _norm(path: str) -> str:
    return os.path.normpath(path) if path else ""


@dataclass
class UsageGraph:
    volumes: dict[str, VolumeRecord] = field(default_factory=dict)  # by path
    # path -> (backing path, its format), or None when a record says it has none
    backing: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)  # path -> why its chain is unknown
    roots: list[_Root] = field(default_factory=list)

    # ---- questions -------------------------------------------------------------------

    def chain(self, path: str, fmt: str = "") -> tuple[list[str], bool]:
        """``path`` and its backing files as recorded, and whether the chain is complete.

        A file read as a format without backing files (``fmt`` raw) is the whole chain,
        whatever libvirt's probe of its contents recorded.
        """
        if fmt and fmt not in _LAYERED:
            return [_norm(path)], True
        files: list[str] = []
        node = _norm(path)
        while node and node not in files:
            files.append(node)
            if node in self.unknown:
                return files, False
            step = self.backing.get(node)
            node = step[0] if step else ""
        return files, True

    def users_of(self, path: str, *, exclude_uuid: str = "",
                 exclude_paths: frozenset[str] = frozenset()) -> list[User]:
        """Every machine, snapshot and volume that reads ``path``, its backing chain included.

        ``exclude_uuid`` leaves out a machine (and its snapshots) being deleted;
        ``exclude_paths`` volumes that are deleted together with ``path``.
        """
        path = _norm(path)
        found: dict[tuple[str, str], User] = {}
        for root in self.roots:
            if exclude_uuid and root.uuid == exclude_uuid:
                continue
            files, complete = self.chain(root.path, root.format)
            if path in files:
                user = User(root.kind, root.machine, root.uuid, root.name, files[0] == path)
            elif not complete:
                user = User(root.kind, root.machine, root.uuid, root.name, False, False)
            else:
                continue
            key = (root.kind, root.name)
            if key not in found or (user.certain and user.direct):
                found[key] = user
        for vol_path, vol in self.volumes.items():
            if vol_path == path or vol_path in exclude_paths:
                continue
            files, _complete = self.chain(vol_path, vol.format)
            if path in files:
                name = f"the volume {vol.name} in pool {vol.pool}"
                found[("volume", name)] = User("volume", "", "", name, direct=False)
        return sorted(found.values(), key=lambda u: (u.kind, u.name))

    def volume_at(self, path: str) -> VolumeRecord | None:
        return self.volumes.get(_norm(path))

    def paths_under(self, folder: str, *, exclude_uuid: str = "") -> dict[str, list[User]]:
        """Files inside ``folder`` that machines or snapshots read, with who reads them."""
        prefix = _norm(folder).rstrip("/") + "/"
        used: dict[str, list[User]] = {}
        for root in self.roots:
            if exclude_uuid and root.uuid == exclude_uuid:
                continue
            files, _complete = self.chain(root.path, root.format)
            for i, file in enumerate(files):
                if file.startswith(prefix):
                    used.setdefault(file, []).append(
                        User(root.kind, root.machine, root.uuid, root.name, i == 0))
        return used

    def files_of_machines(self, exclude_uuid: str) -> dict[str, list[str]]:
        """Each file other machines (and their snapshots) read, mapped to their names."""
        users: dict[str, list[str]] = {}
        for root in self.roots:
            if root.uuid == exclude_uuid:
                continue
            files, _complete = self.chain(root.path, root.format)
            who = root.machine if root.kind == "machine" else root.name
            for file in files:
                names = users.setdefault(file, [])
                if who not in names:
                    names.append(who)
        return users

    # ---- building --------------------------------------------------------------------

    def _add_volume_xml(self, pool: str, xml: str) -> None:
        root = ET.fromstring(xml)
        path = _norm(root.findtext("target/path", "") or "")
        if not path:
            return
        fmt_el = root.find("target/format")
        fmt = fmt_el.get("type", "") if fmt_el is not None else ""
        self.volumes[path] = VolumeRecord(
            pool, root.findtext("name", "") or "", path, fmt,
            _int(root.findtext("capacity", "0")), _int(root.findtext("allocation", "0")))
        store = root.find("backingStore")
        below = _norm(store.findtext("path", "") or "") if store is not None else ""
        if below:
            below_fmt = store.find("format") if store is not None else None
            self.backing.setdefault(path, (below, below_fmt.get("type", "")
                                           if below_fmt is not None else ""))
        else:
            self.backing.setdefault(path, None)

    def _add_disk_chain(self, disk: ET.Element, top: str,
                        by_name: dict[tuple[str, str], str]) -> None:
        """Record the <backingStore> chain a (live or snapshot) disk element carries."""
        node, path = disk, top
        while path:
            store = node.find("backingStore")
            if store is None:
                return  # the record says nothing: walk it later if the format allows
            below = source_path(store, by_name)
            if not below:
                self.backing[path] = None  # an empty <backingStore/>: nothing below
                return
            fmt = store.find("format")
            self.backing[path] = (below, fmt.get("type", "") if fmt is not None else "")
            node, path = store, below

    @property
    def volume_paths(self) -> dict[tuple[str, str], str]:
        return {(v.pool, v.name): p for p, v in self.volumes.items()}

    def _add_domain_xml(self, xml: str, kind: str, machine: str, uuid: str, name: str) -> None:
        root = ET.fromstring(xml)
        by_name = self.volume_paths
        for disk in root.findall("devices/disk"):
            path = source_path(disk, by_name)
            if not path:
                continue
            driver = disk.find("driver")
            fmt = (driver.get("type", "") if driver is not None else "") or "raw"
            self._add_disk_chain(disk, path, by_name)
            target = disk.find("target")
            dev = target.get("dev", "") if target is not None else ""
            label = f"{name} (disk {dev})" if kind == "machine" and dev else name
            self.roots.append(_Root(path, fmt, kind, machine, uuid, label))
        for tag in ("os/kernel", "os/initrd", "os/nvram"):
            file = _norm(root.findtext(tag, "") or "")
            if file:
                self.roots.append(_Root(file, "raw", kind, machine, uuid, name))

    def _add_snapshot_xml(self, xml: str, machine: str, uuid: str) -> None:
        root = ET.fromstring(xml)
        label = f"the snapshot {root.findtext('name', '')} of {machine}"
        for tag in ("domain", "inactiveDomain"):
            element = root.find(tag)
            if element is not None:
                self._add_domain_xml(ET.tostring(element, encoding="unicode"), "snapshot",
                                     machine, uuid, label)
        for disk in root.findall("disks/disk"):
            if disk.get("snapshot") != "external":
                continue
            src = disk.find("source")
            file = _norm(src.get("file", "") if src is not None else "")
            driver = disk.find("driver")
            fmt = (driver.get("type", "") if driver is not None else "") or "qcow2"
            if file:
                self.roots.append(_Root(file, fmt, "snapshot", machine, uuid, label))
        memory = root.find("memory")
        if memory is not None and memory.get("file"):
            self.roots.append(_Root(_norm(memory.get("file", "")), "raw", "snapshot",
                                    machine, uuid, label))

    def _walk_unrecorded(self, local: bool) -> None:
        """Ask qemu-img for the chains libvirt's records leave open (layered formats only).

        On a remote host those chains stay unknown, and every delete that could
        touch them is refused.
        """
        todo = [(r.path, r.format) for r in self.roots]
        seen: set[str] = set()
        while todo:
            path, fmt = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            if path in self.backing:
                step = self.backing[path]
                if step:
                    todo.append(step)
                continue
            if fmt not in _LAYERED:
                continue
            if not local:
                self.unknown[path] = "it is on a remote host"
                continue
            if not Path(path).exists():
                continue  # a missing file backs nothing
            try:
                items = qemu_img.chain(Path(path), fmt=fmt)
            except (VirtStudioError, ValueError, OSError) as exc:
                self.unknown[path] = str(exc)
                continue
            files = [path] + [_norm(i.path) for i in items[1:]]
            for i, file in enumerate(files):
                if file in self.backing:
                    break
                if i + 1 < len(files):
                    self.backing[file] = (files[i + 1], items[i + 1].format)
                else:
                    self.backing[file] = None


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def source_path(node: ET.Element, volumes: dict[tuple[str, str], str]) -> str:
    """The file or device a <disk> or <backingStore> reads; "" for none or network."""
    src = node.find("source")
    if src is None:
        return ""
    if src.get("pool") and src.get("volume"):
        return volumes.get((src.get("pool", ""), src.get("volume", "")),
                           f"{src.get('pool')}/{src.get('volume')}")
    return _norm(src.get("file") or src.get("dev") or "")


def _xml_or_none(read: Callable[[], str]) -> str | None:
    try:
        return read()
    except libvirt.libvirtError:
        return None  # the object vanished meanwhile


def build(conn: libvirt.virConnect) -> UsageGraph:
    """Read the whole graph fresh from libvirt (and qemu-img where records end)."""
    graph = UsageGraph()
    for pool in conn.listAllStoragePools(0):
        name = pool.name()
        try:
            if not pool.isActive():
                continue
            vols = pool.listAllVolumes(0)
        except libvirt.libvirtError:
            continue
        for vol in vols:
            xml = _xml_or_none(lambda v=vol: v.XMLDesc(0))
            if xml:
                graph._add_volume_xml(name, xml)
    for dom in conn.listAllDomains(0):
        try:
            name, uuid, active = dom.name(), dom.UUIDString(), dom.isActive()
        except libvirt.libvirtError:
            continue
        xmls = [_xml_or_none(lambda d=dom: d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))]
        if active:
            xmls.insert(0, _xml_or_none(lambda d=dom: d.XMLDesc(0)))
        for xml in xmls:
            if xml:
                graph._add_domain_xml(xml, "machine", name, uuid, name)
        try:
            snapshots = dom.listAllSnapshots(0)
        except libvirt.libvirtError:
            snapshots = []
        for snap in snapshots:
            xml = _xml_or_none(lambda s=snap: s.getXMLDesc(0))
            if xml:
                graph._add_snapshot_xml(xml, name, uuid)
    parsed = uri_mod.parse(conn.getURI())
    if not parsed.is_test:  # the test driver's files are made up: its records are all
        graph._walk_unrecorded(local=not parsed.is_remote)
    return graph
