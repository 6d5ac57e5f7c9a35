"""Clone a shut-off machine: a full copy or a linked clone per disk, new name, MACs and UUID.

A linked clone reads its unchanged blocks from the source's disk, so that disk
must never change again: the source machine moves onto a new overlay of its
own at the same time, and the old file becomes the read-only base of both.

Each disk is read in the format the machine's definition gives it (its
<driver type>), never the one its bytes suggest: a guest can write anything
into a raw disk, a qcow2 header naming a host file included.  A backing file
outside every storage pool is read only when the user typed its name.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_xml import parse_domain_xml
from virtstudio.core.entities import Domain
from virtstudio.core.errors import (
    VirtStudioError,
    connection_lost,
    describe,
    lost_connection_error,
)
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.machines.disk_files import name_problem, repoint_disks, require_local, unique_path
from virtstudio.storage import backing_chains, qemu_img
from virtstudio.storage.backing_chains import ChainReview, PoolPlaces
from virtstudio.xml import Domain as DomainXML
from virtstudio.xml.base import remove_element


class DiskMode(enum.Enum):
    COPY = "Full copy"
    LINKED = "Linked clone (qcow2 overlay)"
    SHARE = "Shared (same file, read-only media)"


@dataclass(frozen=True)
class CloneDisk:
    target: str
    source: str
    fmt: str
    modes: tuple[DiskMode, ...]
    default: DiskMode


def clone_disks(domain: Domain) -> list[CloneDisk]:
    """The disks of ``domain`` and what a clone may do with each."""
    disks = []
    for disk in domain.summary.disks:
        if not disk.source:
            continue
        if disk.device in ("cdrom", "floppy") or disk.readonly or disk.shareable:
            disks.append(CloneDisk(disk.target, disk.source, disk.fmt, (DiskMode.SHARE,),
                                   DiskMode.SHARE))
        elif disk.source_type == "file" and (disk.fmt or "raw") in qemu_img.FORMATS:
            disks.append(CloneDisk(disk.target, disk.source, disk.fmt or "raw",
                                   (DiskMode.COPY, DiskMode.LINKED), DiskMode.COPY))
        else:
            disks.append(CloneDisk(disk.target, disk.source, disk.fmt, (), DiskMode.COPY))
    return disks


def new_disk_path(disk: CloneDisk, clone_name: str, mode: DiskMode) -> str:
    suffix = ".img" if mode is DiskMode.COPY and disk.fmt == "raw" else ".qcow2"
    return str(Path(disk.source).parent / f"{clone_name}-{disk.target}{suffix}")


def check_clone(host: HostConnection, domain: Domain, name: str,
                modes: dict[str, DiskMode]) -> str:
    """What stops this clone; "" when nothing does.  Reads only the cache."""
    problem = name_problem(name, "machine")
    if problem:
        return problem
    if host.find_domain_by_name(name) is not None:
        return f"{host.name} has a machine called {name} already."
    if domain.state.is_active:
        return (f"Shut {domain.name} down first: its disks change while it runs, so a "
                "copy would not be consistent.")
    for disk in clone_disks(domain):
        mode = modes.get(disk.target, disk.default)
        if not disk.modes:
            return (f"{disk.target} ({disk.source}) is not a qcow2 or raw file disk; it cannot "
                    "be cloned here.")
        if mode not in disk.modes:
            return f"{disk.target} cannot be cloned as “{mode.value}”."
    return ""


def clone_chains(domain: Domain, places: PoolPlaces) -> dict[str, ChainReview | str]:
    """Each copied or linked disk's backing chain, or why it could not be read.

    Runs qemu-img: call it on a job or worker thread.
    """
    chains: dict[str, ChainReview | str] = {}
    for disk in clone_disks(domain):
        if DiskMode.COPY not in disk.modes:
            continue
        try:
            chains[disk.target] = backing_chains.review(Path(disk.source), disk.fmt, places)
        except VirtStudioError as exc:
            chains[disk.target] = exc.message
    return chains


def _random_mac(used: set[str], rng: random.Random) -> str:
    while True:
        mac = "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            used.add(mac)
            return mac


def clone_xml(xml: str, name: str, disks: dict[str, tuple[str, str]], used_macs: set[str],
              rng: random.Random | None = None) -> str:
    """The new machine's definition: new name, no UUID (libvirt makes one), new MACs.

    What must differ between two machines goes or is made anew; everything else is
    the source's, as it was written."""
    rng = rng or random.SystemRandom()
    xml = repoint_disks(xml, {t: p for t, (p, _f) in disks.items()},
                        {t: f for t, (_p, f) in disks.items()})
    domain = DomainXML.from_xml(xml)
    domain.name = name
    domain.uuid = None
    for entry in domain.element.findall("sysinfo/system/entry[@name='uuid']"):
        # libvirt refuses an SMBIOS UUID other than the machine's own: the clone's
        # new one is filled in by libvirt when the entry is absent.
        remove_element(entry)
    domain.prune("sysinfo/system")
    if domain.os is not None:
        domain.os.nvram = None  # libvirt gives the clone fresh variables from the template
    devices = domain.devices
    if devices is not None:
        for nic in devices.interfaces:
            nic.mac = _random_mac(used_macs, rng)
            for target in nic.element.findall("target"):
                remove_element(target)  # a tap device belongs to one machine
        for gfx in devices.graphics:
            if (gfx.port or -1) != -1 or (gfx.tls_port or -1) != -1:
                gfx.port = gfx.tls_port = None
                gfx.autoport = True
            if (gfx.websocket or -1) > 0:
                gfx.websocket = -1
        for chardev in [*devices.element.findall("serial"), *devices.element.findall("console")]:
            for log in chardev.findall("log"):
                remove_element(log)  # two machines must not write one log file
    return domain.to_xml()


def _macs_in_use(conn: libvirt.virConnect) -> set[str]:
    used = set()
    for dom in conn.listAllDomains(0):
        try:
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError:
            continue  # removed meanwhile: its MACs are free again
        devices = DomainXML.from_xml(xml).devices
        used.update((nic.mac or "").lower() for nic in (devices.interfaces if devices else ()))
    return used


def _formats_now(xml: str) -> dict[str, str]:
    return {d.target: d.fmt or "raw" for d in parse_domain_xml(xml).disks}


class _CloneSteps:
    """What a clone job has done so far, so that a failure undoes exactly that.

    The order keeps the source whole until the end: the clone's disks and the
    source's new overlays are new files nobody uses; then the clone is defined;
    the source is moved onto its overlays last.  Until that last step the source
    still runs from its old files, so undoing means deleting new files and the
    new definition, never a file the source uses."""

    def __init__(self, job: Job, host: str, source_name: str, name: str) -> None:
        self.job, self.host, self.source_name, self.name = job, host, source_name, name
        self.clone_files: list[Path] = []   # the clone's disks
        self.source_tops: dict[str, str] = {}  # target -> the source's new overlay
        self.clone_defined = False  # True once defineXML was sent (it may have arrived)
        self.source_moved = False  # True once the source's redefinition was sent
        self.done: list[str] = []
        self.step = "preparation"

    def begin(self, step: str, progress: float | None = None) -> None:
        self.step = step
        # "vda: ..." keeps its device name as written; other steps read as a sentence.
        status = step if ":" in step.split(" ")[0] else step[0].upper() + step[1:]
        self.job.report(progress, status)

    def undo(self, conn: libvirt.virConnect, exc: BaseException) -> BaseException:
        """Undo what was done; return the exception to raise, naming what is left."""
        tops = [Path(p) for p in self.source_tops.values()]
        uses = _files_of(conn, self.source_name) if self.source_moved else set()
        if uses and any(str(p) in uses for p in tops):
            # The redefinition arrived before the reply was lost: the clone is whole.
            self.job.log(f"{self.source_name} uses its new overlays: the clone is complete")
            return VirtStudioError(
                f"{self.name} was cloned, but the connection to {self.host} was lost "
                "before it said so; reconnect to see it.", describe(exc).detail)
        left: list[str] = []
        keep: set[Path] = set()
        if uses is None:
            # Sent, but whether it arrived cannot be read: keep everything, say how to tell.
            keep.update([*self.clone_files, *tops])
            over = ", ".join(map(str, tops))
            left.append(f"the machine {self.name} with its disks "
                        + ", ".join(map(str, self.clone_files))
                        + f", and {self.source_name}'s new overlays {over}: if "
                        f"{self.source_name}'s disks are {over} now, the clone is complete; "
                        f"otherwise delete {self.name} with its disks, then {over}")
        elif self.clone_defined:
            try:
                _undefine(conn.lookupByName(self.name))
                self.job.log(f"Removed the machine {self.name}")
            except libvirt.libvirtError as undefine_exc:
                if connection_lost(undefine_exc):
                    keep.update(self.clone_files)
                    left.append(f"the machine {self.name}, if it is listed, with its disks "
                                + ", ".join(map(str, self.clone_files))
                                + " (delete it together with its disks)")
                # otherwise it was never defined: nothing to undo
        removed = [p for p in [*self.clone_files, *tops] if p not in keep and p.exists()]
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            self.job.log("Removed " + ", ".join(map(str, removed)))
            self.done.append("removed " + ", ".join(map(str, removed)) + " again")
        if not connection_lost(exc):
            if left:
                self.job.log("Left: " + "; ".join(left))
            return exc
        not_done = [self.step]
        if uses is not None:
            not_done.append(f"{self.source_name} was not changed and still uses its own disks")
        return lost_connection_error(exc, self.host, self.step, self.done, not_done, left)


def _files_of(conn: libvirt.virConnect, name: str) -> set[str] | None:
    """The disk files machine ``name`` uses now, or None when that cannot be read."""
    try:
        xml = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    except libvirt.libvirtError:
        return None
    return {d.source for d in parse_domain_xml(xml).disks if d.source}


def _undefine(dom: libvirt.virDomain) -> None:
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError as exc:
        if connection_lost(exc):
            raise
        dom.undefine()


def _make_clone(job: Job, host: HostConnection, conn: libvirt.virConnect,
                disks: list[CloneDisk], modes: dict[str, DiskMode],
                chains: dict[str, ChainReview], original: str, source_name: str,
                name: str) -> None:
    steps = _CloneSteps(job, host.name, source_name, name)
    new_disks: dict[str, tuple[str, str]] = {}
    try:
        for i, disk in enumerate(disks):
            mode = modes.get(disk.target, disk.default)
            if mode is DiskMode.SHARE:
                continue
            job.check_cancelled()
            path = Path(new_disk_path(disk, name, mode))
            if path.exists():
                raise VirtStudioError(f"{path} exists already; nothing was overwritten.")
            if mode is DiskMode.LINKED:
                steps.begin(f"{disk.target}: linked clone of {disk.source}", i / len(disks))
                qemu_img.create_overlay(Path(disk.source), path, base_fmt=disk.fmt)
                steps.clone_files.append(path)
                new_disks[disk.target] = (str(path), "qcow2")
                steps.done.append(f"created {path}")
            else:
                steps.begin(f"{disk.target}: copying {disk.source}", i / len(disks))
                fmt = "raw" if disk.fmt == "raw" else "qcow2"
                steps.clone_files.append(path)
                qemu_img.convert(
                    Path(disk.source), path, fmt=disk.fmt, target_format=fmt,
                    layers=list(chains[disk.target].layers),
                    progress=lambda f, i=i: job.report((i + f) / len(disks)),
                    cancelled=lambda: job.cancel_requested)
                new_disks[disk.target] = (str(path), fmt)
                steps.done.append(f"copied {disk.source} to {path}")
        for disk in disks:
            if modes.get(disk.target, disk.default) is not DiskMode.LINKED:
                continue
            job.check_cancelled()
            top = unique_path(Path(disk.source).parent / f"{source_name}-{disk.target}.qcow2")
            steps.begin(f"creating {source_name}'s new overlay {top}")
            qemu_img.create_overlay(Path(disk.source), top, base_fmt=disk.fmt)
            steps.source_tops[disk.target] = str(top)
            steps.done.append(f"created {top}")
        job.check_cancelled()
        # libvirt cannot take a definition back once sent, and a linked clone's source
        # must then move onto its overlays: from here the job runs to its end.
        job.refuse_cancel(
            f"{name} is being defined" + (
                f" and {source_name} moved onto its new overlays; stopping between the two "
                f"would leave the clone reading a disk {source_name} still writes"
                if steps.source_tops else f"; delete {name} afterwards to undo the clone"))
        job.check_cancelled()  # a cancel that came just before still counts
        steps.begin(f"defining {name}")
        xml = clone_xml(original, name, new_disks, _macs_in_use(conn))
        steps.clone_defined = True
        clone = conn.defineXML(xml)
        steps.done.append(f"defined {name}")
        if steps.source_tops:
            steps.begin(f"moving {source_name} onto its new overlays")
            job.log("New overlays: " + ", ".join(steps.source_tops.values()))
            steps.source_moved = True
            conn.defineXML(repoint_disks(original, steps.source_tops))
            steps.done.append(f"moved {source_name} onto its new overlays")
    except BaseException as exc:
        reported = steps.undo(conn, exc)
        if reported is exc:
            raise
        raise reported from exc
    job.report(1.0, f"Defined {name} ({clone.UUIDString()})")
    host.refresh_domain(clone.UUIDString())


def clone_domain(runner: JobRunner, host: HostConnection, domain: Domain, name: str,
                 modes: dict[str, DiskMode], confirmed: Collection[str] = ()) -> Job:
    """Clone as a job; ``confirmed`` are backing files outside the pools the user named."""
    problem = check_clone(host, domain, name, modes)
    if problem:
        raise VirtStudioError(problem)
    require_local(host.uri, "Cloning")
    disks = clone_disks(domain)
    uuid, source_name = domain.uuid, domain.name

    def work(job: Job) -> None:
        conn = host.virconn
        source = conn.lookupByUUIDString(uuid)
        if source.isActive():
            raise VirtStudioError(f"{source_name} was started meanwhile; nothing was cloned.")
        try:
            conn.lookupByName(name)
        except libvirt.libvirtError:
            pass
        else:
            raise VirtStudioError(f"{host.name} has a machine called {name} already.")
        original = source.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                                  | libvirt.VIR_DOMAIN_XML_SECURE)
        formats = _formats_now(original)
        places = backing_chains.pool_places(list(host.pools.values()))
        chains: dict[str, ChainReview] = {}
        for disk in disks:
            if modes.get(disk.target, disk.default) is DiskMode.SHARE:
                continue
            if formats.get(disk.target) != disk.fmt:
                raise VirtStudioError(f"{source_name}'s disk {disk.target} changed since you "
                                      "were asked; nothing was cloned.")
            chains[disk.target] = backing_chains.review(Path(disk.source), disk.fmt, places)
            backing_chains.require_confirmed(chains[disk.target], confirmed, disk.source)
        _make_clone(job, host, conn, disks, modes, chains, original, source_name, name)
        host.refresh_domain(uuid)

    return runner.submit(f"Clone {source_name} as {name}", work, host=host.name,
                         target=source_name, cancellable=True)
