"""Snapshots of a machine: read them as a tree, take, revert and delete them.

Internal snapshots (inside qcow2 files) are libvirt's business from start to
end.  External ones leave the disk as it was (the *base*) and send new writes
to an overlay file beside it; the memory, when saved, goes to its own file.
libvirt 9.0 cannot revert to an external snapshot, so ``revert_snapshot`` does
it here: stop the machine, put a fresh overlay on the base, point the disk at
it and restore the saved memory.  Deletion merges the overlay back into the
base through libvirt, but only after checking that no other machine reads
either file; otherwise only the record goes and every file stays.

Plans read what each file needs from the files on disk (snapshot_files.py:
backing chains and internal snapshot tables through qemu-img with explicit
formats); libvirt's records, which libvirt rewrites, only name where each
snapshot starts.  A file holding internal snapshots or read by another snapshot
is never discarded, an external snapshot that later snapshots read is not
deleted (removing only its record lets libvirt point them at other files), and
files nothing reads any more are listed for the user to remove.  A job whose
daemon dies says what it may have left and what to do about each.
"""

from __future__ import annotations

import enum
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError, connection_lost, lost_connection_error
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.machines.disk_files import (
    disk_chain_from_xml,
    disk_format,
    files_of_other_domains,
    name_problem,
    repoint_disks,
    require_local,
    unique_path,
)
from virtstudio.machines.snapshot_files import DiskReader, holder, read_as, snapshot_needs
from virtstudio.storage import qemu_img


class SnapshotKind(enum.Enum):
    INTERNAL = "Internal (inside the qcow2 disks)"
    EXTERNAL_DISK = "External, disks only"
    EXTERNAL_MEMORY = "External, disks and memory"


@dataclass(frozen=True)
class SnapshotDisk:
    target: str
    kind: str  # internal, external, no
    overlay: str = ""  # external: the file that took the writes made after the snapshot
    base: str = ""  # external: the file that holds the disk as it was
    base_format: str = ""  # the base's format as the machine declared it (raw if none)


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    parent: str
    description: str
    created: int
    state: str  # the machine's state when taken: running, paused, shutoff, disk-snapshot
    current: bool
    memory: str  # internal, external, no
    memory_file: str
    disks: tuple[SnapshotDisk, ...] = field(default_factory=tuple)

    @property
    def external(self) -> bool:
        return self.memory == "external" or any(d.kind == "external" for d in self.disks)

    @property
    def has_memory(self) -> bool:
        return self.memory in ("internal", "external") and self.state in ("running", "paused")

    @property
    def kind_label(self) -> str:
        if not self.external:
            return "internal" + (", with memory" if self.has_memory else "")
        return "external" + (", with memory" if self.has_memory else ", disks only")


def parse_snapshot(xml: str, current: bool = False) -> SnapshotInfo:
    root = ET.fromstring(xml)
    memory = root.find("memory")
    bases, base_formats = {}, {}
    for disk in root.findall("domain/devices/disk"):
        target = disk.find("target")
        chain = disk_chain_from_xml(disk)
        if target is not None and chain:
            bases[target.get("dev", "")] = chain[0]
            base_formats[target.get("dev", "")] = disk_format(disk)
    disks = []
    for disk in root.findall("disks/disk"):
        src = disk.find("source")
        target = disk.get("name", "")
        disks.append(SnapshotDisk(target, disk.get("snapshot", ""),
                                  src.get("file", "") if src is not None else "",
                                  bases.get(target, ""), base_formats.get(target, "")))
    created = root.findtext("creationTime", "0") or "0"
    return SnapshotInfo(
        name=root.findtext("name", ""),
        parent=root.findtext("parent/name", "") or "",
        description=root.findtext("description", "") or "",
        created=int(created) if created.isdigit() else 0,
        state=root.findtext("state", "") or "",
        current=current,
        memory=memory.get("snapshot", "no") if memory is not None else "no",
        memory_file=memory.get("file", "") if memory is not None else "",
        disks=tuple(disks),
    )


def read_snapshots(conn: libvirt.virConnect, uuid: str) -> list[SnapshotInfo]:
    """Every snapshot of the machine, parents before children, oldest first."""
    dom = conn.lookupByUUIDString(uuid)
    try:
        current = dom.snapshotCurrent().getName() if dom.hasCurrentSnapshot() else ""
    except libvirt.libvirtError:
        current = ""
    found = [parse_snapshot(s.getXMLDesc(0), s.getName() == current)
             for s in dom.listAllSnapshots(0)]
    found.sort(key=lambda s: (s.created, s.name))
    ordered: list[SnapshotInfo] = []
    placed: set[str] = set()
    names = {s.name for s in found}

    def place(parent: str) -> None:
        for snap in found:
            if snap.name not in placed and (snap.parent or "") == parent:
                placed.add(snap.name)
                ordered.append(snap)
                place(snap.name)

    place("")
    for snap in found:  # a parent that libvirt no longer lists: show as a root
        if snap.name not in placed and snap.parent not in names:
            placed.add(snap.name)
            ordered.append(snap)
            place(snap.name)
    return ordered


# ---- taking a snapshot -----------------------------------------------------------------


def _snapshot_disks(domain: Domain) -> tuple[list, list]:
    """The disks a snapshot covers (writable disks) and the ones it leaves alone."""
    covered, skipped = [], []
    for disk in domain.summary.disks:
        if disk.device in ("cdrom", "floppy") or disk.readonly or disk.shareable:
            skipped.append(disk)
        else:
            covered.append(disk)
    return covered, skipped


def kind_problems(domain: Domain) -> dict[SnapshotKind, str]:
    """For each kind, why it cannot be taken of ``domain`` now ("" when it can)."""
    covered, _ = _snapshot_disks(domain)
    problems = {kind: "" for kind in SnapshotKind}
    if not covered:
        problems[SnapshotKind.EXTERNAL_DISK] = "The machine has no writable disk."
    not_qcow2 = [d.target for d in covered if d.fmt != "qcow2"]
    if not_qcow2:
        problems[SnapshotKind.INTERNAL] = (
            f"Internal snapshots need qcow2 disks; {', '.join(not_qcow2)} "
            f"{'is' if len(not_qcow2) == 1 else 'are'} not.")
    not_files = [d.target for d in covered if d.source_type != "file" or not d.source]
    if not_files:
        problems[SnapshotKind.EXTERNAL_DISK] = (
            f"External snapshots here need file disks; {', '.join(not_files)} "
            f"{'is' if len(not_files) == 1 else 'are'} not.")
    problems[SnapshotKind.EXTERNAL_MEMORY] = problems[SnapshotKind.EXTERNAL_DISK]
    if not domain.state.is_active:
        problems[SnapshotKind.EXTERNAL_MEMORY] = (
            "Memory can only be saved while the machine runs; it is shut off.")
    return problems


def planned_files(domain: Domain, name: str, kind: SnapshotKind) -> list[str]:
    """The files an external snapshot will create, beside each disk, in order."""
    if kind is SnapshotKind.INTERNAL:
        return []
    covered, _ = _snapshot_disks(domain)
    files = [str(Path(d.source).parent / f"{domain.name}-{d.target}.{name}.qcow2")
             for d in covered]
    if kind is SnapshotKind.EXTERNAL_MEMORY and covered:
        files.append(str(Path(covered[0].source).parent / f"{domain.name}.{name}.mem"))
    return files


def check_new_snapshot(domain: Domain, existing: list[str], name: str,
                       kind: SnapshotKind) -> str:
    """What is wrong with taking snapshot ``name`` of ``kind``; "" when nothing is."""
    problem = name_problem(name, "snapshot")
    if problem:
        return problem
    if name in existing:
        return f"{domain.name} has a snapshot called {name} already."
    return kind_problems(domain)[kind]


def snapshot_xml(domain: Domain, name: str, description: str,
                 kind: SnapshotKind) -> tuple[str, int]:
    """The <domainsnapshot> description and the flags to create it with."""
    parts = [f"<domainsnapshot><name>{escape(name)}</name>"]
    if description:
        parts.append(f"<description>{escape(description)}</description>")
    flags = 0
    if kind is not SnapshotKind.INTERNAL:
        files = planned_files(domain, name, kind)
        covered, skipped = _snapshot_disks(domain)
        if kind is SnapshotKind.EXTERNAL_MEMORY:
            parts.append(f"<memory snapshot='external' file={quoteattr(files[-1])}/>")
        else:
            parts.append("<memory snapshot='no'/>")
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
        parts.append("<disks>")
        for disk, path in zip(covered, files[:len(covered)], strict=True):
            parts.append(f"<disk name={quoteattr(disk.target)} snapshot='external'>"
                         f"<driver type='qcow2'/><source file={quoteattr(path)}/></disk>")
        for disk in skipped:
            parts.append(f"<disk name={quoteattr(disk.target)} snapshot='no'/>")
        parts.append("</disks>")
    parts.append("</domainsnapshot>")
    return "".join(parts), flags


def _files_in_use(conn: libvirt.virConnect, dom: libvirt.virDomain) -> dict[str, str]:
    """Every file a snapshot record of ``dom`` or a machine on the host uses -> by what."""
    users: dict[str, str] = {}
    for snap in read_snapshots(conn, dom.UUIDString()):
        for disk in snap.disks:
            for path in (disk.overlay, disk.base):
                if path:
                    users[path] = f"{dom.name()}'s snapshot {snap.name}"
        if snap.memory_file:
            users[snap.memory_file] = f"{dom.name()}'s snapshot {snap.name}"
    for other in conn.listAllDomains(0):
        try:
            xml = other.XMLDesc(0)
        except libvirt.libvirtError:
            continue  # removed meanwhile: it uses nothing any more
        for disk in ET.fromstring(xml).findall("devices/disk"):
            for path in disk_chain_from_xml(disk):
                users.setdefault(path, f"the machine {other.name()}")
    for chain in _current_chains(dom).values():  # the backing files the XML may not list
        for path in chain:
            users.setdefault(path, f"the machine {dom.name()}")
    return users


def _remove_leftover(job: Job, conn: libvirt.virConnect, dom: libvirt.virDomain, path: str,
                     name: str) -> None:
    """A file a new snapshot would create exists already: left from an interrupted one?

    It is removed only when no snapshot record and no machine uses it; otherwise
    the snapshot is refused, naming the file and what uses it."""
    user = _files_in_use(conn, dom).get(path)
    if user:
        raise VirtStudioError(f"{path} exists already and {user} uses it; choose another "
                              "snapshot name. Nothing was changed.")
    job.log(f"{path} is left from an interrupted snapshot {name} (no snapshot or machine "
            "uses it): removing it")
    Path(path).unlink(missing_ok=True)


def create_snapshot(runner: JobRunner, host: HostConnection, domain: Domain, name: str,
                    description: str, kind: SnapshotKind, existing: list[str]) -> Job:
    problem = check_new_snapshot(domain, existing, name, kind)
    if problem:
        raise VirtStudioError(problem)
    if kind is not SnapshotKind.INTERNAL:
        require_local(host.uri, "An external snapshot")
    xml, flags = snapshot_xml(domain, name, description, kind)
    files = planned_files(domain, name, kind)
    uuid = domain.uuid

    def work(job: Job) -> None:
        dom = host.virconn.lookupByUUIDString(uuid)
        for path in files:
            if Path(path).exists():
                _remove_leftover(job, host.virconn, dom, path, name)
        job.report(None, f"Taking snapshot {name} ({kind.value.lower()})")
        try:
            dom.snapshotCreateXML(xml, flags)
        except libvirt.libvirtError as exc:
            if not connection_lost(exc):
                raise
            made = [p for p in files if Path(p).exists()]
            left = [f"{p} (if no snapshot {name} is listed after reconnecting, it is left "
                    "from this one: taking the snapshot again removes it)" for p in made]
            if kind is SnapshotKind.EXTERNAL_MEMORY:
                # libvirt pauses the guest while it saves the memory; its daemon resumes it
                # when it starts again.
                left.append(f"{domain.name} may show as paused after reconnecting: resume it")
            raise lost_connection_error(
                exc, host.name, f"taking snapshot {name}", [], [f"snapshot {name} may not exist"],
                left) from exc
        for path in files:
            job.log(f"Created {path}")
        host.refresh_domain(uuid)

    return runner.submit(f"Snapshot {domain.name}: {name}", work, host=host.name,
                         target=domain.name)


# ---- what an operation does to each file --------------------------------------------------


@dataclass(frozen=True)
class FileFate:
    path: str
    fate: str  # a sentence for the user: what happens to this file


@dataclass(frozen=True)
class DiskRevert:
    target: str
    base: str
    new_overlay: str
    discard: str = ""  # the current top image, removed: it only held changes since


@dataclass(frozen=True)
class SnapshotPlan:
    """What reverting to or deleting one snapshot will do, for the question and the job."""

    snapshot: SnapshotInfo
    summary: str
    files: tuple[FileFate, ...] = ()
    metadata_only: bool = False
    disks: tuple[DiskRevert, ...] = ()
    memory_file: str = ""  # to restore (revert) or to remove (delete)
    leftovers: tuple[str, ...] = ()  # files no record needs afterwards, left for the user

    def describe(self) -> str:
        lines = [self.summary]
        lines += [f"• {Path(f.path).name}: {f.fate}" for f in self.files]
        if self.leftovers:
            lines.append("Left for you to remove afterwards (nothing reads them): "
                         + ", ".join(self.leftovers))
        return "\n".join(lines)


def _lookup(conn: libvirt.virConnect, uuid: str,
            name: str) -> tuple[libvirt.virDomain, SnapshotInfo, list[SnapshotInfo]]:
    dom = conn.lookupByUUIDString(uuid)
    snaps = read_snapshots(conn, uuid)
    snap = next((s for s in snaps if s.name == name), None)
    if snap is None:
        raise VirtStudioError(f"{dom.name()} has no snapshot called {name} any more.")
    return dom, snap, snaps


def _current_chains(dom: libvirt.virDomain) -> dict[str, list[str]]:
    """Each disk's files, top first, read from the files (a local machine's)."""
    return DiskReader().machine_chains(dom)


def _snapshot_files(snaps: list[SnapshotInfo], skip: str) -> set[str]:
    """Files other snapshots of the machine still need: their bases and memory."""
    needed: set[str] = set()
    for snap in snaps:
        if snap.name == skip:
            continue
        needed.update(d.base for d in snap.disks if d.kind == "external" and d.base)
        if snap.memory_file:
            needed.add(snap.memory_file)
    return needed


def _is_local(conn: libvirt.virConnect) -> bool:
    """Whether the host's files are this computer's files (only then are they read here)."""
    try:
        require_local(conn.getURI(), "Reading the disk files")
    except VirtStudioError:
        return False
    return True


def _left_over(before: list[str], after: set[str], needed: set[str]) -> list[str]:
    """Files of ``before`` that nothing reads once the disk reads ``after``."""
    return [p for p in before if p not in after and p not in needed and Path(p).exists()]


_LEFT = "left for you to remove: nothing reads it any more"
_DISCARDED = "deleted: it holds only the changes made since the last snapshot, which are lost"


def plan_revert(conn: libvirt.virConnect, uuid: str, name: str) -> SnapshotPlan:
    """Work out a revert on the host's worker or a job thread (reads libvirt and images)."""
    dom, snap, snaps = _lookup(conn, uuid, name)
    running = bool(dom.isActive())
    reader = DiskReader(local=_is_local(conn))
    chains = reader.machine_chains(dom)
    if not snap.external:
        # The file that holds the snapshot, as its snapshot table says (the record only
        # names where to look first), is rewritten in place.
        candidates = [p for chain in chains.values() for p in chain]
        holders = {d.target: holder(reader, snap, d, candidates) or d.base
                   for d in snap.disks if d.kind == "internal" and d.base}
        # Never under another machine's feet.
        others = files_of_other_domains(conn, uuid)
        for path in holders.values():
            readers = others.get(path, [])
            if readers:
                raise VirtStudioError(
                    f"{', '.join(sorted(set(readers)))} read{'s' if len(readers) == 1 else ''} "
                    f"{path} as a base; reverting would change their disks too. "
                    "Nothing was changed.")
        # Refuse when an external snapshot reads that file as (part of) its disk.
        outer = snapshot_needs(reader, snaps, chains, name, kinds=("external",))
        for path in holders.values():
            users = [u.removeprefix("the snapshot ") for u in outer.users(path)]
            if users:
                raise VirtStudioError(
                    f"Reverting to {name} rewrites {Path(path).name} in place, and the "
                    f"external snapshot{'s' if len(users) != 1 else ''} {', '.join(users)} "
                    f"keep{'s' if len(users) == 1 else ''} it as "
                    f"{'its' if len(users) == 1 else 'their'} "
                    "disk. Delete those first. Nothing was changed.")
        needed = snapshot_needs(reader, snaps, chains).files() | set(others)
        fates, leftovers = [], []
        for disk in snap.disks:
            if disk.target not in holders or not reader.local:
                continue
            after = set(reader.chain(holders[disk.target], "qcow2"))
            for path in _left_over(chains.get(disk.target, []), after, needed):
                leftovers.append(path)
                fates.append(FileFate(path, _LEFT))
        lost = "its disks and memory since then" if running else "its disks' changes since then"
        return SnapshotPlan(snap, f"{dom.name()} returns to {name}; {lost} are lost.",
                            tuple(fates), memory_file="", leftovers=tuple(leftovers))
    if not dom.isPersistent():
        raise VirtStudioError("Only a defined (persistent) machine can revert to an external "
                              "snapshot.")
    if snap.has_memory and not (snap.memory_file and Path(snap.memory_file).exists()):
        raise VirtStudioError(f"The memory saved with {name} ({snap.memory_file or 'no file'}) "
                              "is missing; nothing was changed.")
    others = files_of_other_domains(conn, uuid)
    needs = snapshot_needs(reader, snaps, chains)
    needed = needs.files() | set(others)
    fates, disks, leftovers = [], [], []
    for disk in snap.disks:
        if disk.kind != "external":
            continue
        if not disk.base or not Path(disk.base).exists():
            raise VirtStudioError(f"The disk image {disk.base or '(unknown)'} that {name} "
                                  f"keeps for {disk.target} is missing; nothing was changed.")
        top = (chains.get(disk.target) or [""])[0]
        discard = ""
        if top and top != disk.base and top not in needed:
            discard = top
            fates.append(FileFate(top, _DISCARDED))
        elif top and top != disk.base:
            users = [*others.get(top, []), *needs.users(top)]
            fates.append(FileFate(top, f"kept as it is ({', '.join(users)} "
                                       f"need{'s' if len(users) == 1 else ''} it)"))
        after = set(reader.chain(disk.base, read_as(disk)))
        for path in _left_over(chains.get(disk.target, [])[1:], after, needed):
            leftovers.append(path)
            fates.append(FileFate(path, _LEFT))
        overlay = disk.overlay or str(Path(disk.base).with_suffix("")) + f".{name}.qcow2"
        if overlay != discard:
            overlay = str(unique_path(Path(overlay)))
        fates.append(FileFate(disk.base, "unchanged: it becomes the read-only base again"))
        if overlay == discard:
            fates.remove(FileFate(top, _DISCARDED))
            fates.append(FileFate(overlay, "replaced by a new empty overlay: the changes made "
                                           "since the last snapshot in it are lost"))
        else:
            fates.append(FileFate(overlay, f"created: a new empty overlay for {disk.target}"))
        disks.append(DiskRevert(disk.target, disk.base, overlay, discard))
    if snap.has_memory:
        fates.append(FileFate(snap.memory_file, "read to restore the memory; kept"))
    stop = "stopped (its memory now is lost), then " if running else ""
    after = ("resumes where it was" if snap.state == "running" else "is restored paused"
             ) if snap.has_memory else "stays shut off"
    summary = f"{dom.name()} is {stop}set back to {name} and {after}."
    return SnapshotPlan(snap, summary, tuple(fates), disks=tuple(disks),
                        memory_file=snap.memory_file if snap.has_memory else "",
                        leftovers=tuple(leftovers))


def _other_branch(reader: DiskReader, snaps: list[SnapshotInfo], name: str,
                  disk: SnapshotDisk) -> str:
    """A snapshot whose disk reads ``disk.base`` without going through its overlay.

    Merging the overlay into the base would change that snapshot's disk, so such a
    snapshot (left behind on another branch by a revert) forbids the merge.
    """
    for other in snaps:
        if other.name == name:
            continue
        for their in other.disks:
            if their.kind != "external" or their.target != disk.target or not their.base:
                continue
            chain = reader.chain(their.base, read_as(their))
            if disk.base in chain and disk.overlay not in chain:
                return other.name
    return ""


def _merge_blocker(reader: DiskReader, snaps: list[SnapshotInfo], snap: SnapshotInfo,
                   disk: SnapshotDisk, chain: list[str], others: dict[str, list[str]]) -> str:
    """Why ``disk``'s overlay must not be merged into its base; "" when it may be.

    What the overlay reads comes from the files: the machine must run on the
    overlay, and the overlay must read the base directly."""
    readers = sorted(set(others.get(disk.overlay, []) + others.get(disk.base, [])))
    if readers:
        return (f"merging would change what {', '.join(readers)} "
                f"read{'s' if len(readers) == 1 else ''} ({Path(disk.base).name})")
    if disk.overlay not in chain:
        return f"{disk.target} no longer runs on {Path(disk.overlay).name}"
    below = chain[chain.index(disk.overlay) + 1:chain.index(disk.overlay) + 2]
    if below != [disk.base]:
        return (f"{Path(disk.overlay).name} reads "
                f"{Path(below[0]).name if below else 'no file'}, not {Path(disk.base).name}")
    if branch := _other_branch(reader, snaps, snap.name, disk):
        return (f"merging would change the snapshot {branch} on another branch, which "
                f"reads {Path(disk.base).name}")
    if inside := reader.internal(disk.overlay):
        return (f"{Path(disk.overlay).name} holds the internal snapshot"
                f"{'s' if len(inside) > 1 else ''} {', '.join(inside)}")
    parent = next((s for s in snaps if s.name == snap.parent), None)
    if parent is not None and not parent.external:
        return f"libvirt does not merge a snapshot taken after the internal one {parent.name}"
    return ""


def plan_delete(conn: libvirt.virConnect, uuid: str, name: str) -> SnapshotPlan:
    dom, snap, snaps = _lookup(conn, uuid, name)
    children = [s.name for s in snaps if s.parent == name]
    reader = DiskReader(local=_is_local(conn))
    chains = reader.machine_chains(dom)
    in_use = {p for chain in chains.values() for p in chain}
    if not snap.external:
        # A file that held only this snapshot and that the machine no longer reads (it
        # was kept by a revert for the snapshot's sake) is then needed by nobody.
        needed = (snapshot_needs(reader, snaps, chains, name).files()
                  | set(files_of_other_domains(conn, uuid)) | in_use)
        fates, leftovers = [], []
        for d in snap.disks:
            if d.kind != "internal":
                continue
            path = holder(reader, snap, d, list(in_use)) or d.base
            if path and reader.local and path not in needed and Path(path).exists():
                leftovers.append(path)
                fates.append(FileFate(path, _LEFT))
            else:
                fates.append(FileFate(path or d.target, "keeps its data; the snapshot's "
                                                        "blocks inside it are freed"))
        return SnapshotPlan(snap, f"The snapshot {name} is deleted; you can no longer return "
                                  "to it. The machine itself is not changed.", tuple(fates),
                            leftovers=tuple(leftovers))
    require_local(conn.getURI(), "Deleting an external snapshot")
    if children:
        # Merging is not done under a snapshot taken later, and removing only the record
        # lets libvirt point the later snapshots at other files: refuse instead.
        raise VirtStudioError(
            f"{', '.join(children)} {'was' if len(children) == 1 else 'were'} taken after "
            f"{name} and read{'s' if len(children) == 1 else ''} its files; delete "
            f"{'it' if len(children) == 1 else 'them'} first. Nothing was changed.")
    others = files_of_other_domains(conn, uuid)
    fates: list[FileFate] = []
    blockers: list[str] = []
    for disk in snap.disks:
        if disk.kind != "external":
            continue
        blocker = _merge_blocker(reader, snaps, snap, disk, chains.get(disk.target, []),
                                 others)
        if blocker:
            blockers.append(blocker)
        else:
            fates.append(FileFate(disk.base, f"receives the changes kept in "
                                             f"{Path(disk.overlay).name} and stays"))
            fates.append(FileFate(disk.overlay, f"merged into {Path(disk.base).name}, then "
                                                "removed"))
    if blockers:
        needed = snapshot_needs(reader, snaps, chains, name).files() | set(others) | in_use
        mine = [p for d in snap.disks if d.kind == "external" and d.base
                for p in [*reader.chain(d.base, read_as(d)), d.overlay] if p]
        if snap.memory_file:
            mine.append(snap.memory_file)
        mine = list(dict.fromkeys(mine))
        leftovers = _left_over(mine, set(), needed)
        files = [FileFate(p, _LEFT if p in leftovers else "kept as it is") for p in mine]
        return SnapshotPlan(
            snap, f"{name}'s files are not merged: {'; '.join(blockers)}. Only the record of "
                  f"{name} is removed; every file stays.",
            tuple(files), metadata_only=True, leftovers=tuple(leftovers))
    memory = ""
    if snap.memory_file and snap.memory_file not in _snapshot_files(snaps, name):
        memory = snap.memory_file
        fates.append(FileFate(memory, f"deleted: the memory saved with {name}"))
    return SnapshotPlan(snap, f"The snapshot {name} is deleted and its overlay merged; the "
                              "machine's current disks keep every change.",
                        tuple(fates), memory_file=memory)


# ---- revert and delete as jobs -----------------------------------------------------------


def _replan(planner: Callable[[libvirt.virConnect, str, str], SnapshotPlan],
            conn: libvirt.virConnect, uuid: str, agreed: SnapshotPlan) -> SnapshotPlan:
    """Work the plan out again in the job: act only if it is still what the user agreed to."""
    fresh = planner(conn, uuid, agreed.snapshot.name)
    if (fresh.files, fresh.metadata_only, fresh.disks) != (
            agreed.files, agreed.metadata_only, agreed.disks):
        raise VirtStudioError("The machine's disks or snapshots changed since you were "
                              "asked; nothing was changed. Try again.")
    return fresh


def _revert_external(job: Job, conn: libvirt.virConnect, dom: libvirt.virDomain,
                     plan: SnapshotPlan) -> None:
    snap = plan.snapshot
    if dom.isActive():
        job.report(0.1, f"Stopping {dom.name()}")
        dom.destroy()
    staged = []
    base_formats = {d.target: d.base_format or "raw" for d in snap.disks}
    try:
        for disk in plan.disks:
            temp = Path(disk.new_overlay + ".new")
            temp.unlink(missing_ok=True)
            job.report(0.3, f"Creating an overlay on {disk.base} for {disk.target}")
            qemu_img.create_overlay(Path(disk.base), temp,
                                    base_fmt=base_formats.get(disk.target, "raw"))
            if qemu_img.info(temp, "qcow2").backing != disk.base:
                raise VirtStudioError(f"The new overlay for {disk.target} does not read from "
                                      f"{disk.base}; nothing was changed.")
            staged.append((temp, disk))
    except BaseException:
        for temp, _disk in staged:
            temp.unlink(missing_ok=True)
        raise
    # From here on the user agreed to lose the current tops: replace them in place.
    for temp, disk in staged:
        os.replace(temp, disk.new_overlay)
        job.log(f"{disk.target} now runs on {disk.new_overlay}")
    sources = {d.target: d.new_overlay for d in plan.disks}
    inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    conn.defineXML(repoint_disks(inactive, sources))
    if plan.memory_file:
        job.report(0.6, f"Restoring the memory saved with {snap.name}")
        saved = conn.saveImageGetXMLDesc(plan.memory_file,
                                         libvirt.VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)
        flags = (libvirt.VIR_DOMAIN_SAVE_PAUSED if snap.state == "paused"
                 else libvirt.VIR_DOMAIN_SAVE_RUNNING)
        conn.restoreFlags(plan.memory_file, repoint_disks(saved, sources), flags)
    dom = conn.lookupByUUIDString(dom.UUIDString())
    now = _current_chains(dom)
    for disk in plan.disks:
        if (now.get(disk.target) or [""])[0] != disk.new_overlay:
            raise VirtStudioError(f"{disk.target} does not use {disk.new_overlay} after the "
                                  "revert; check the machine's disks before starting it.")
    record = dom.snapshotLookupByName(snap.name)
    dom.snapshotCreateXML(record.getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE),
                          libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
                          | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)
    for disk in plan.disks:
        if disk.discard and disk.discard != disk.new_overlay and Path(disk.discard).exists():
            job.log(f"Deleting {disk.discard}")
            Path(disk.discard).unlink()


def revert_snapshot(runner: JobRunner, host: HostConnection, domain: Domain,
                    plan: SnapshotPlan) -> Job:
    """Revert as agreed in ``plan``; the job stops if the host changed since."""
    uuid, name = domain.uuid, plan.snapshot.name

    def work(job: Job) -> None:
        conn = host.virconn
        fresh = _replan(plan_revert, conn, uuid, plan)
        dom = conn.lookupByUUIDString(uuid)
        if fresh.snapshot.external:
            require_local(host.uri, "Reverting to an external snapshot")
            _revert_external(job, conn, dom, fresh)
        else:
            job.report(None, f"Reverting {domain.name} to {name}")
            dom.revertToSnapshot(dom.snapshotLookupByName(name), 0)
        for path in fresh.leftovers:
            job.log(f"Left for you to remove (nothing reads it): {path}")
        job.report(1.0, f"{domain.name} is back at {name}")
        host.refresh_domain(uuid)

    return runner.submit(f"Revert {domain.name} to {name}", work, host=host.name,
                         target=domain.name)


def check_image(path: str, fmt: str) -> str:
    """qemu-img check's verdict on ``path`` read as ``fmt``; raise when it finds corruption."""
    return qemu_img.check(Path(path), fmt=fmt or "raw")


def _delete_lost(exc: libvirt.libvirtError, host: str, machine: str, plan: SnapshotPlan,
                 was_running: bool) -> VirtStudioError:
    """What a daemon death during a snapshot delete leaves, and what to do about each."""
    snap = plan.snapshot
    name = snap.name
    if plan.metadata_only or not snap.external:
        what = "every file stays" if plan.metadata_only else "its data stays in the disk files"
        return lost_connection_error(
            exc, host, f"deleting snapshot {name}", [],
            [f"the snapshot {name} may still be listed"],
            [f"the snapshot {name}, if it is still listed after reconnecting ({what}): "
             "delete it again"])
    merges = [d for d in snap.disks if d.kind == "external" and d.overlay and d.base]
    left = [f"{d.overlay} (if {name} is still listed after reconnecting, {d.target} still "
            f"runs on it and {d.base} may hold part of its changes already: do not revert "
            f"to {name}; delete it again, which finishes the merge and removes this file)"
            for d in merges]
    if not was_running:
        # libvirt merges a shut-off machine's files in a paused QEMU of its own, which
        # outlives the daemon with the merge unfinished.
        left.append(f"the machine {machine}, if it shows as running and paused after "
                    "reconnecting (that is the QEMU the host started for the merge): force "
                    f"it off, then delete {name} again")
    if plan.memory_file:
        left.append(f"{plan.memory_file} (the memory saved with {name}: deleting {name} "
                    "again removes it; once it is no longer listed, remove the file "
                    "yourself)")
    return lost_connection_error(
        exc, host, f"deleting snapshot {name} and merging "
        + ", ".join(f"{Path(d.overlay).name} into {Path(d.base).name}" for d in merges),
        [], [f"the snapshot {name} may still be listed", "the merge may be unfinished"], left)


def delete_snapshot(runner: JobRunner, host: HostConnection, domain: Domain,
                    plan: SnapshotPlan) -> Job:
    uuid, name = domain.uuid, plan.snapshot.name

    def work(job: Job) -> None:
        conn = host.virconn
        fresh = _replan(plan_delete, conn, uuid, plan)
        dom = conn.lookupByUUIDString(uuid)
        record = dom.snapshotLookupByName(name)
        was_running = bool(dom.isActive())
        try:
            if fresh.metadata_only:
                job.report(None, f"Removing the record of {name}; every file stays")
                record.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            else:
                job.report(None, f"Deleting {name}" + (" and merging its overlay"
                                                       if fresh.snapshot.external else ""))
                record.delete(0)
        except libvirt.libvirtError as exc:
            if not connection_lost(exc):
                raise
            raise _delete_lost(exc, host.name, domain.name, fresh, was_running) from exc
        if fresh.snapshot.external and not fresh.metadata_only:
            dom = conn.lookupByUUIDString(uuid)
            chains = _current_chains(dom)
            for disk in fresh.snapshot.disks:
                if disk.kind != "external":
                    continue
                if disk.overlay in chains.get(disk.target, []):
                    raise VirtStudioError(f"{disk.target} still reads {disk.overlay} after "
                                          "the merge; it was kept.")
                if dom.isActive():
                    job.log(f"{disk.base} is in use; qemu-img check it once the machine stops")
                else:
                    job.log(f"{disk.base}: {check_image(disk.base, disk.base_format)}")
            if fresh.memory_file and Path(fresh.memory_file).exists():
                job.log(f"Deleting {fresh.memory_file}")
                Path(fresh.memory_file).unlink()
        for path in fresh.leftovers:
            job.log(f"Left for you to remove (nothing reads it): {path}")
        job.report(1.0, f"Deleted {name}")
        host.refresh_domain(uuid)

    return runner.submit(f"Delete snapshot {name} of {domain.name}", work, host=host.name,
                         target=domain.name)
