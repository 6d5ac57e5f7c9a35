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
import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_xml import parse_domain_xml
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.machines.disk_files import name_problem, repoint_disks, require_local, unique_path
from virtstudio.storage import backing_chains, qemu_img
from virtstudio.storage.backing_chains import ChainReview, PoolPlaces


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
    """The new machine's definition: new name, no UUID (libvirt makes one), new MACs."""
    rng = rng or random.SystemRandom()
    xml = repoint_disks(xml, {t: p for t, (p, _f) in disks.items()},
                        {t: f for t, (_p, f) in disks.items()})
    root = ET.fromstring(xml)
    root.find("name").text = name  # type: ignore[union-attr]
    for tag in ("uuid",):
        for el in root.findall(tag):
            root.remove(el)
    os_el = root.find("os")
    if os_el is not None:
        for nvram in os_el.findall("nvram"):
            os_el.remove(nvram)  # libvirt gives the clone fresh variables from the template
    for nic in root.findall("devices/interface"):
        mac = nic.find("mac")
        if mac is None:
            mac = ET.SubElement(nic, "mac")
        mac.set("address", _random_mac(used_macs, rng))
        for target in nic.findall("target"):
            nic.remove(target)
    for gfx in root.findall("devices/graphics"):
        if gfx.get("port") not in (None, "-1"):
            gfx.attrib.pop("port", None)
            gfx.set("autoport", "yes")
    for parent in root.findall("devices/serial") + root.findall("devices/console"):
        for log in parent.findall("log"):
            parent.remove(log)  # two machines must not write one log file
    return ET.tostring(root, encoding="unicode")


def _macs_in_use(conn: libvirt.virConnect) -> set[str]:
    used = set()
    for dom in conn.listAllDomains(0):
        try:
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError:
            continue  # removed meanwhile: its MACs are free again
        for mac in ET.fromstring(xml).findall("devices/interface/mac"):
            used.add(mac.get("address", "").lower())
    return used


def _formats_now(xml: str) -> dict[str, str]:
    return {d.target: d.fmt or "raw" for d in parse_domain_xml(xml).disks}


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
        created: list[Path] = []
        new_disks: dict[str, tuple[str, str]] = {}
        source_tops: dict[str, str] = {}
        try:
            for i, disk in enumerate(disks):
                mode = modes.get(disk.target, disk.default)
                if mode is DiskMode.SHARE:
                    continue
                path = Path(new_disk_path(disk, name, mode))
                if path.exists():
                    raise VirtStudioError(f"{path} exists already; nothing was overwritten.")
                if mode is DiskMode.LINKED:
                    job.report(i / len(disks), f"{disk.target}: linked clone of {disk.source}")
                    qemu_img.create_overlay(Path(disk.source), path, base_fmt=disk.fmt)
                    created.append(path)
                    top = unique_path(Path(disk.source).parent
                                      / f"{source_name}-{disk.target}.qcow2")
                    qemu_img.create_overlay(Path(disk.source), top, base_fmt=disk.fmt)
                    created.append(top)
                    source_tops[disk.target] = str(top)
                    new_disks[disk.target] = (str(path), "qcow2")
                else:
                    job.report(i / len(disks), f"{disk.target}: copying {disk.source}")
                    fmt = "raw" if disk.fmt == "raw" else "qcow2"
                    created.append(path)
                    qemu_img.convert(
                        Path(disk.source), path, fmt=disk.fmt, target_format=fmt,
                        layers=list(chains[disk.target].layers),
                        progress=lambda f, i=i: job.report((i + f) / len(disks)),
                        cancelled=lambda: job.cancel_requested)
                    job.check_cancelled()
                    new_disks[disk.target] = (str(path), fmt)
            xml = clone_xml(original, name, new_disks, _macs_in_use(conn))
            if source_tops:
                job.log(f"{source_name} continues on new overlays: "
                        + ", ".join(source_tops.values()))
                conn.defineXML(repoint_disks(original, source_tops))
            try:
                clone = conn.defineXML(xml)
            except libvirt.libvirtError:
                if source_tops:
                    conn.defineXML(original)
                raise
        except BaseException:
            for path in created:
                path.unlink(missing_ok=True)
            raise
        job.report(1.0, f"Defined {name} ({clone.UUIDString()})")
        host.refresh_domain(uuid)
        host.refresh_domain(clone.UUIDString())

    return runner.submit(f"Clone {source_name} as {name}", work, host=host.name,
                         target=source_name, cancellable=True)
