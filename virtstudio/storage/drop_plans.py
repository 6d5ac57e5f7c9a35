"""What a drop onto Storage (or onto a machine) will do, said before it is done.

Each planner checks everything it can first (device free, names, sizes,
host) and returns a DropPlan: the exact list of what will be written, and the
work that writes it as a job.  Nothing runs until the user agrees and the
plan is submitted.  Bad input raises VirtStudioError with a plain message.
"""

from __future__ import annotations

import itertools
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain, StoragePool, Volume
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.privileged.client import run_privileged
from virtstudio.storage import backing_chains, lvm, qemu_img
from virtstudio.storage.host_devices import BlockDevice, find_device
from virtstudio.storage.pools import PoolSpec, check_pool_spec, pool_xml

MiB = 1024 * 1024
EXTENT = 4 * MiB  # LVM's default physical extent
IMAGE_SUFFIXES = (".qcow2", ".img", ".raw", ".iso", ".vmdk", ".vdi", ".vhd", ".vhdx")
IMPORT_POOL_TYPES = ("dir", "fs", "netfs")


@dataclass(frozen=True)
class DropPlan:
    title: str
    writes: tuple[str, ...]  # each thing that will be written, in order
    verb: str  # the confirm button's text
    work: Callable[[Job], None]
    host: str
    target: str
    cancellable: bool = False
    reads: tuple[str, ...] = ()  # the files that will be read, when that matters
    confirm_names: tuple[str, ...] = ()  # files the user confirms by typing their names
    # When set, Go stays off until the user has typed exactly this (a device to be erased).
    type_to_confirm: str = ""

    def missing_confirmations(self, confirmed: Collection[str]) -> tuple[str, ...]:
        return tuple(path for path in self.confirm_names if path not in confirmed)

    def submit(self, runner: JobRunner, confirmed: Collection[str] = ()) -> Job:
        """Start the work; refused while a file in ``confirm_names`` is not confirmed."""
        missing = self.missing_confirmations(confirmed)
        if missing:
            raise VirtStudioError(f"Type the name of {', '.join(missing)} to confirm that it "
                                  "may be read; nothing was done.")
        return runner.submit(self.title, self.work, host=self.host, target=self.target,
                             cancellable=self.cancellable)


def _local_host(host: HostConnection, what: str) -> None:
    """Devices and files of this computer may only become pools of a host on it."""
    if host.is_demo:
        raise VirtStudioError("The demo host is not a real host: nothing on this computer "
                              "is changed for it.")
    if uri_mod.parse(host.uri).is_remote:
        raise VirtStudioError(f"{what} is on this computer, and {host.name} is another "
                              "host: choose a local connection (qemu:///system).")


def _pool_names(host: HostConnection) -> set[str]:
    return {p.name for p in list(host.pools.values())}


def _define_and_start(host: HostConnection, spec: PoolSpec, job: Job) -> None:
    xml = pool_xml(spec)
    job.log(xml)
    pool = host.virconn.storagePoolDefineXML(xml, 0)
    try:
        pool.create(0)
        pool.setAutostart(1)
    except Exception:
        pool.undefine()
        raise
    host.refresh_pool(pool.UUIDString())


# ---- a free disk becomes an LVM thin pool ---------------------------------------------

# Reasons host_devices gives for a device that only carries something a wipe erases;
# every other reason (mounted, swap, held, root, read-only) refuses the drop.
_ERASABLE = ("holds a ", "has a ", "has partitions")


def _erased_on(device: BlockDevice) -> str:
    """What writing ``device`` erases first ("" when it is blank); refuses a busy device."""
    if not device.in_use:
        return ""
    if device.mountpoints or not device.in_use.startswith(_ERASABLE):
        raise VirtStudioError(f"{device.path} {device.in_use}; nothing was changed.")
    if device.fstype:
        return f"the {device.fstype} signature (a file system or volume)"
    if device.partitions:
        return f"its partition table and partitions ({', '.join(device.partitions)})"
    if device.in_use.startswith("has a "):
        return "the " + device.in_use.removeprefix("has a ")
    return f"what it holds ({device.in_use})"


def _erase_line(device: BlockDevice, erased: str) -> tuple[str, ...]:
    if not erased:
        return ()
    return (f"Erased first: {erased}, on {device.describe()}. Type {device.path} below "
            "to agree",)

def max_thin_pool_size(device_size: int) -> int:
    """The largest thin pool that fits on a new volume group on one device.

    One extent goes to the PV label and metadata area, and the pool's own
    metadata LV and its spare take about 0.2 % each, at least one extent.
    """
    extents = (device_size - MiB) // EXTENT
    metadata = max(1, -(-extents * 2 // 1000))
    return max(0, extents - 2 * metadata) * EXTENT


def default_thin_pool_size(device_size: int) -> int:
    return min(max_thin_pool_size(device_size), device_size * 9 // 10 // EXTENT * EXTENT)


def plan_lvm_thin_pool(host: HostConnection, device: BlockDevice, vg: str,
                       size: int | None = None, thin_pool: str = "thinpool") -> DropPlan:
    """VG on ``device``, a thin pool in it, and a libvirt logical pool over the VG."""
    _local_host(host, device.path)
    erased = _erased_on(device)
    lvm.validate_name(vg, "volume group")
    lvm.validate_name(thin_pool, "thin pool")
    problem = check_pool_spec(PoolSpec("logical", vg, source_name=vg), _pool_names(host))
    if problem:
        raise VirtStudioError(problem)
    fits = max_thin_pool_size(device.size)
    size = default_thin_pool_size(device.size) if size is None else size
    size = size // EXTENT * EXTENT
    if size <= 0 or size > fits:
        raise VirtStudioError(f"A {format_bytes(size)} thin pool does not fit on "
                              f"{device.path}: at most {format_bytes(fits)}.")
    spec = PoolSpec("logical", vg, source_name=vg)
    writes = (*_erase_line(device, erased),
        f"LVM physical volume metadata on {device.describe()}: everything on it is lost",
        f"Volume group {vg} on {device.path}",
        f"Thin pool {vg}/{thin_pool} of {format_bytes(size)}; thin volumes in it may "
        "promise more than that and take space as they are written",
        f"libvirt storage pool {vg} (logical, over /dev/{vg}), started and autostarted",
    )

    def work(job: Job) -> None:
        job.report(0.1, f"Creating volume group {vg} on {device.path}")
        run_privileged("create_volume_group", name=vg, devices=[device.path],
                       wipe=bool(erased))
        job.report(0.4, f"Creating thin pool {vg}/{thin_pool}")
        run_privileged("create_thin_pool", vg=vg, name=thin_pool, size=size)
        job.report(0.7, f"Adding the libvirt pool {vg}")
        _define_and_start(host, spec, job)

    return DropPlan(f"Make LVM thin pool on {device.path}", writes, "Create Thin Pool", work,
                    host.name, device.path, type_to_confirm=device.path if erased else "")


# ---- a free disk becomes a disk pool --------------------------------------------------

def plan_disk_pool(host: HostConnection, device: BlockDevice, name: str,
                   label: str = "gpt") -> DropPlan:
    """A new partition table on ``device`` and a libvirt disk pool whose volumes are partitions."""
    _local_host(host, device.path)
    erased = _erased_on(device)
    if device.kind == "part":
        raise VirtStudioError(f"{device.path} is a partition: a disk pool needs a whole disk.")
    spec = PoolSpec("disk", name, source_device=device.path, source_format=label)
    problem = check_pool_spec(spec, _pool_names(host))
    if problem:
        raise VirtStudioError(problem)
    writes = (*_erase_line(device, erased),
        f"A new {label.upper()} partition table on {device.describe()}: everything on it "
        "is lost",
        f"libvirt storage pool {name} (disk): each volume made in it is a partition",
    )

    def work(job: Job) -> None:
        job.report(0.2, f"Writing a {label} partition table on {device.path}")
        run_privileged("create_partition_table", device=device.path, label=label,
                       wipe=bool(erased))
        job.report(0.6, f"Adding the libvirt pool {name}")
        _define_and_start(host, spec, job)

    return DropPlan(f"Make disk pool on {device.path}", writes, "Create Disk Pool", work,
                    host.name, device.path, type_to_confirm=device.path if erased else "")


# ---- a folder becomes a dir pool ------------------------------------------------------

def pool_name_for(path: Path, taken: set[str]) -> str:
    """A free pool name made from a folder's or device's name."""
    base = "".join(c if c.isalnum() or c in "._+-" else "-" for c in path.name).strip("-.")
    base = (base or "pool")[:48]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def plan_dir_pool(host: HostConnection, folder: Path, name: str) -> DropPlan:
    if not folder.is_absolute() or not folder.is_dir():
        raise VirtStudioError(f"{folder} is not a folder; nothing was changed.")
    if not host.is_demo:
        _local_host(host, str(folder))
    spec = PoolSpec("dir", name, target_path=str(folder))
    problem = check_pool_spec(spec, _pool_names(host))
    if problem:
        raise VirtStudioError(problem)
    taken = [p.name for p in list(host.pools.values()) if p.target_path == str(folder)]
    if taken:
        raise VirtStudioError(f"{folder} is already the pool {taken[0]}.")
    count = sum(1 for _ in itertools.islice(folder.iterdir(), 10000))
    writes = (
        f"libvirt storage pool {name} (dir) on {folder}, started and autostarted",
        f"Nothing inside {folder} is changed; its {count} entr{'y' if count == 1 else 'ies'} "
        "show as volumes",
    )
    return DropPlan(f"Make folder pool {name}", writes, "Create Pool",
                    lambda job: _define_and_start(host, spec, job), host.name, str(folder))


# ---- an image file becomes a volume ---------------------------------------------------

def plan_import(host: HostConnection, pool: StoragePool, image: Path, *,
                source_format: str = "raw", target_format: str = "qcow2") -> DropPlan:
    """Copy ``image``, read as ``source_format``, into ``pool`` as a new volume.

    The file's format is the user's word (raw unless they say otherwise), never
    a guess from its bytes.  Its backing chain is listed, and a backing file
    outside every storage pool is named in ``confirm_names``.  The job reads
    the chain again and stops if it changed.
    """
    if not image.is_file():
        raise VirtStudioError(f"{image} is not a file; nothing was imported.")
    _local_host(host, str(image))
    if uri_mod.parse(host.uri).is_test:
        raise VirtStudioError(f"{host.name} is libvirt's test driver: it has no real folders "
                              "to import into.")
    if pool.pool_type not in IMPORT_POOL_TYPES or not pool.active:
        raise VirtStudioError(f"Images are imported into a running folder pool; {pool.name} "
                              f"is a {'stopped ' if not pool.active else ''}{pool.pool_type} "
                              "pool.")
    qemu_img.check_format(source_format, f"{image.name}'s chosen format")
    places = backing_chains.pool_places(list(host.pools.values()))
    chain = backing_chains.review(image, source_format, places)
    name = image.stem + (".qcow2" if target_format == "qcow2" else ".raw")
    if image.suffix == ".iso":
        name, target_format = image.name, "raw"
    target = Path(pool.target_path) / name
    if any(v.name == name for v in pool.volumes) or target.exists():
        raise VirtStudioError(f"The pool {pool.name} has a volume called {name} already.")
    need = qemu_img.measure(image, fmt=source_format, target_format=target_format,
                            layers=list(chain.layers)).required
    if need > pool.available:
        raise VirtStudioError(f"Importing {image.name} needs {format_bytes(need)}; the pool "
                              f"{pool.name} has {format_bytes(pool.available)} free.")
    writes = (
        f"A new volume {name} in {pool.name} ({target}): {target_format}, "
        f"{format_bytes(chain.top.virtual_size)} virtual, about {format_bytes(need)} written",
        f"{image} itself is only read"
        + (", and so are its backing files" if len(chain.layers) > 1 else ""),
    )
    uuid = pool.uuid

    def work(job: Job) -> None:
        fresh = backing_chains.review(image, source_format, places)
        if not fresh.same_files(chain):
            raise VirtStudioError(f"{image.name} or its backing files changed since you were "
                                  "asked; nothing was imported.")
        job.report(0.0, f"Copying {image.name} into {pool.name}")
        qemu_img.convert(image, target, fmt=source_format, target_format=target_format,
                         layers=list(fresh.layers),
                         progress=lambda fraction: job.report(fraction),
                         cancelled=lambda: job.cancel_requested)
        job.check_cancelled()
        host.virconn.storagePoolLookupByUUIDString(uuid).refresh(0)
        job.report(1.0, f"Imported as {target}")

    return DropPlan(f"Import {image.name}", writes, "Import", work, host.name, name,
                    cancellable=True, reads=tuple(chain.lines()), confirm_names=chain.outside)


# ---- a volume dropped on a machine ----------------------------------------------------

def _free_target(domain: Domain, prefix: str = "vd") -> str:
    used = {d.target for d in domain.summary.disks}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if f"{prefix}{letter}" not in used:
            return f"{prefix}{letter}"
    raise VirtStudioError(f"{domain.name} has no free disk slot left.")


def disk_xml(volume: Volume, pool: StoragePool, target: str) -> str:
    root = ET.Element("disk", type="volume", device="disk")
    fmt = volume.format if volume.format in ("qcow2", "raw") else "raw"
    ET.SubElement(root, "driver", name="qemu", type=fmt)
    ET.SubElement(root, "source", pool=pool.name, volume=volume.name)
    ET.SubElement(root, "target", dev=target, bus="virtio")
    return ET.tostring(root, encoding="unicode")


def plan_attach(host: HostConnection, domain: Domain, pool: StoragePool,
                volume: Volume) -> DropPlan:
    users = [d.name for d in list(host.domains.values())
             if any(disk.source in (volume.path, f"{pool.name}/{volume.name}")
                    for disk in d.summary.disks)]
    if domain.name in users:
        raise VirtStudioError(f"{volume.name} is already a disk of {domain.name}.")
    if users:
        raise VirtStudioError(f"{volume.name} is a disk of {', '.join(users)}; two machines "
                              "writing one disk corrupt it, so it was not attached.")
    if volume.format == "iso":
        raise VirtStudioError(f"{volume.name} is an ISO image; attach it as a CD-ROM instead.")
    target = _free_target(domain)
    xml = disk_xml(volume, pool, target)
    live = domain.state.is_active
    writes = (
        f"{domain.name}'s definition gets the disk {target} (virtio): {volume.name} "
        f"from {pool.name}, {format_bytes(volume.capacity)}",
        f"It is plugged in now, while {domain.name} runs" if live
        else f"It appears when {domain.name} next starts",
        "The volume's data is not changed",
    )
    # A dir pool records the format it guessed from the file's bytes, backing file included:
    # the machine would read that file, so one outside every pool needs the user's word.
    places = backing_chains.pool_places(list(host.pools.values()))
    outside = (volume.backing,) if volume.backing and not places.holds(volume.backing) else ()
    reads = (f"{volume.name} is recorded as {volume.format} with the backing file "
             f"{volume.backing}, which {domain.name} will read"
             + (", outside every storage pool" if outside else ""),) if volume.backing else ()
    attach = _attach_work(host, domain.uuid, xml)
    uuid, name, backing = pool.uuid, volume.name, volume.backing

    def work(job: Job) -> None:
        fresh = ET.fromstring(host.virconn.storagePoolLookupByUUIDString(uuid)
                              .storageVolLookupByName(name).XMLDesc(0))
        if (fresh.findtext("backingStore/path", "") or "") != backing:
            raise VirtStudioError(f"{name}'s backing file changed since you were asked; it "
                                  "was not attached.")
        attach(job)

    return DropPlan(f"Attach {volume.name} to {domain.name}", writes, "Attach", work,
                    host.name, domain.name, reads=reads, confirm_names=outside)


def block_device_problem(path: str) -> str:
    """Why ``path`` must not become a machine's disk, or "" (disks, partitions, LVs)."""
    try:
        device = find_device(path)
    except VirtStudioError:  # a logical volume, which the device list leaves out
        return lvm.device_in_use(path).rstrip(".")
    return f"{device.path} {device.in_use}" if device.in_use else ""


def plan_attach_block(host: HostConnection, domain: Domain, path: str) -> DropPlan:
    """A block device of this computer (a free disk, a thin volume) as a machine's disk."""
    _local_host(host, path)
    problem = block_device_problem(path)
    if problem:
        raise VirtStudioError(f"{problem}; it was not attached.")
    real = os.path.realpath(path)
    users = [d.name for d in list(host.domains.values())
             if any(disk.source and os.path.realpath(disk.source) == real
                    for disk in d.summary.disks)]
    if users:
        raise VirtStudioError(f"{path} is already a disk of {', '.join(users)}; it was not "
                              "attached again.")
    target = _free_target(domain)
    root = ET.Element("disk", type="block", device="disk")
    ET.SubElement(root, "driver", name="qemu", type="raw", cache="none")
    ET.SubElement(root, "source", dev=path)
    ET.SubElement(root, "target", dev=target, bus="virtio")
    xml = ET.tostring(root, encoding="unicode")
    live = domain.state.is_active
    writes = (
        f"{domain.name}'s definition gets the disk {target} (virtio): the block device {path}; "
        "the guest may write all of it",
        f"It is plugged in now, while {domain.name} runs" if live
        else f"It appears when {domain.name} next starts",
        f"Nothing is written to {path} now",
    )
    return DropPlan(f"Attach {path} to {domain.name}", writes, "Attach",
                    _attach_work(host, domain.uuid, xml), host.name, domain.name)


def _attach_work(host: HostConnection, uuid: str, xml: str) -> Callable[[Job], None]:
    def work(job: Job) -> None:
        job.log(xml)
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        dom = host.virconn.lookupByUUIDString(uuid)
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        dom.attachDeviceFlags(xml, flags)
        host.refresh_domain(uuid)

    return work


def classify_path(path: Path) -> str:
    """"folder", "image", "device" or "" for a dropped local path."""
    if path.is_dir():
        return "folder"
    real = Path(os.path.realpath(path))
    if real.is_block_device():
        return "device"
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return ""
