"""Changes to a machine's hardware: checked as typed, applied live where libvirt allows.

Each change is a small value.  ``apply_changes`` runs them on a job thread:
on a running machine it first tries the live call (attachDeviceFlags,
setMemoryFlags, ...) together with the saved configuration; what cannot
change live is written to the saved configuration only and reported as
"applies at next boot".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.machines import config_edits as ce
from virtstudio.machines.config_edits import BOOT_DEVICES as BOOT_DEVICES
from virtstudio.machines.config_edits import next_target as next_target
from virtstudio.machines.device_choices import DISK_BUSES as DISK_BUSES
from virtstudio.machines.device_choices import DISK_CACHES as DISK_CACHES
from virtstudio.machines.device_choices import GRAPHICS as GRAPHICS
from virtstudio.machines.device_choices import NIC_MODELS as NIC_MODELS
from virtstudio.machines.device_choices import VIDEO_MODELS as VIDEO_MODELS
from virtstudio.machines.disk_files import require_local
from virtstudio.machines.xml_edit import require_saved
from virtstudio.storage import qemu_img
from virtstudio.storage.volumes import VolumeSpec, check_spec, volume_xml
from virtstudio.xml import Device, Domain, Node, Volume
from virtstudio.xml.io import define, domain_for_edit, running_domain

MAX_VCPUS = 512
_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")

# QEMU's limits: VNC's DES challenge uses 8 bytes; SPICE tickets hold 60.
DISPLAY_PASSWORD_MAX = {"vnc": 8, "spice": 60}

NOW = "applied now"
NEXT_BOOT = "applies at next boot"
SAVED = "saved"


# ---- checks as the user types ------------------------------------------------------


def check_display_password(kinds: Iterable[str], text: str) -> str:
    """What is wrong with a new password for displays of ``kinds``; "" if nothing."""
    kinds = [k for k in kinds if k in DISPLAY_PASSWORD_MAX]
    if not text:
        return ""
    if not kinds:
        return "A machine without graphics has no display to protect with a password."
    if any(not " " < c <= "~" for c in text):
        return "Use letters, digits and punctuation only (no spaces) in a display password."
    kind = min(kinds, key=DISPLAY_PASSWORD_MAX.__getitem__)  # one password serves them all
    limit = DISPLAY_PASSWORD_MAX[kind]
    if len(text) > limit:
        return f"A {kind.upper()} password is at most {limit} characters long."
    return ""


def check_vcpus(count: int) -> str:
    if count < 1:
        return "A machine needs at least one vCPU."
    if count > MAX_VCPUS:
        return f"At most {MAX_VCPUS} vCPUs."
    return ""


def check_memory(current_mib: int, maximum_mib: int) -> str:
    if current_mib <= 0:
        return "Memory must be above zero."
    if maximum_mib <= 0:
        return "Maximum memory must be above zero."
    if current_mib > maximum_mib:
        return (f"Memory ({current_mib} MiB) cannot be above the maximum "
                f"({maximum_mib} MiB); raise the maximum too.")
    return ""


def check_mac(text: str) -> str:
    mac = text.strip().lower()
    if not mac:
        return ""  # libvirt picks one
    if not _MAC_RE.fullmatch(mac):
        return "A MAC address is six pairs of hex digits with colons, like 52:54:00:12:34:56."
    if int(mac[:2], 16) & 1:
        return "That is a multicast address; a network card needs a unicast one."
    if mac == "00:00:00:00:00:00":
        return "00:00:00:00:00:00 is not a usable address."
    return ""


def check_new_disk(size: int, pool: StoragePool, name: str) -> str:
    """Problems with a new disk volume of ``size`` bytes in ``pool``; "" when none."""
    problem = check_spec(VolumeSpec(name=name, size=size), pool)
    if problem:
        return problem
    if size > pool.available:
        return (f"{format_bytes(size)} is larger than the {format_bytes(pool.available)} "
                f"free in the pool {pool.name}.")
    return ""


# ---- the changes ---------------------------------------------------------------------


@dataclass(frozen=True)
class SetVcpus:
    count: int

    def describe(self) -> str:
        return f"vCPUs: {self.count}"


@dataclass(frozen=True)
class SetMemory:
    current_mib: int
    maximum_mib: int

    def describe(self) -> str:
        return f"Memory: {self.current_mib} MiB (maximum {self.maximum_mib} MiB)"


@dataclass(frozen=True)
class SetBootOrder:
    devices: tuple[str, ...]

    def describe(self) -> str:
        return f"Boot order: {', '.join(self.devices) or 'none'}"


@dataclass(frozen=True)
class SetGraphics:
    kind: str

    def describe(self) -> str:
        return f"Graphics: {self.kind.upper() if self.kind != 'none' else 'none'}"


@dataclass(frozen=True)
class SetDisplayPassword:
    password: str = field(repr=False)  # "" removes it

    def describe(self) -> str:  # never the password itself: this text goes to the log
        return "Display password: set" if self.password else "Display password: removed"


@dataclass(frozen=True)
class SetVideo:
    model: str

    def describe(self) -> str:
        return f"Video: {self.model}"


@dataclass(frozen=True)
class AddDisk:
    target: str
    bus: str = "virtio"
    cache: str = "default"
    path: str = ""  # an existing image; empty when new_volume is set
    fmt: str = "qcow2"
    pool_uuid: str = ""
    new_volume: VolumeSpec | None = None

    def describe(self) -> str:
        if self.new_volume is not None:
            return (f"Add disk {self.target}: new {format_bytes(self.new_volume.size)} "
                    f"volume {self.new_volume.name}")
        return f"Add disk {self.target}: {self.path}"


@dataclass(frozen=True)
class RemoveDisk:
    target: str

    def describe(self) -> str:
        return f"Remove disk {self.target} (its image stays)"


@dataclass(frozen=True)
class ResizeDisk:
    target: str
    size: int

    def describe(self) -> str:
        return f"Grow disk {self.target} to {format_bytes(self.size)}"


@dataclass(frozen=True)
class ChangeDisk:
    """Move a disk to another bus and/or give it another cache mode (None keeps it)."""

    target: str
    bus: str | None = None
    cache: str | None = None

    def describe(self) -> str:
        parts = [f"bus {self.bus}" if self.bus else "", f"cache {self.cache}" if self.cache
                 else ""]
        return f"Disk {self.target}: {', '.join(p for p in parts if p) or 'unchanged'}"


@dataclass(frozen=True)
class SetNic:
    """Add a network card (``old_mac`` empty) or change the one with ``old_mac``."""

    kind: str  # network or bridge
    source: str
    model: str = "virtio"  # a change keeps the card's model when this is its model
    mac: str = ""
    old_mac: str = ""

    def describe(self) -> str:
        verb = "Change network card" if self.old_mac else "Add network card"
        return f"{verb}: {self.kind} {self.source}, {self.model}, MAC {self.mac or 'automatic'}"


@dataclass(frozen=True)
class RemoveNic:
    mac: str

    def describe(self) -> str:
        return f"Remove network card {self.mac}"


Change = (SetVcpus | SetMemory | SetBootOrder | SetGraphics | SetDisplayPassword | SetVideo
          | AddDisk | RemoveDisk | ResizeDisk | ChangeDisk | SetNic | RemoveNic)


@dataclass
class Outcome:
    lines: list[tuple[str, str]] = field(default_factory=list)  # (change, when)

    @property
    def next_boot(self) -> list[str]:
        return [text for text, when in self.lines if when == NEXT_BOOT]


# ---- the configuration edits -----------------------------------------------------------


def edit_config(change: Change, domain: Domain) -> bool:
    """Write ``change`` into ``domain`` (a saved configuration); True when a live call
    should follow (memory: only when the current size changed)."""
    if isinstance(change, SetVcpus):
        ce.set_vcpus(domain, change.count)
    elif isinstance(change, SetMemory):
        return ce.set_memory(domain, change.current_mib, change.maximum_mib)
    elif isinstance(change, SetBootOrder):
        ce.set_boot_order(domain, change.devices)
    elif isinstance(change, SetGraphics):
        ce.set_graphics(domain, change.kind)
    elif isinstance(change, SetDisplayPassword):
        ce.set_display_password(domain, change.password)
    elif isinstance(change, SetVideo):
        ce.set_video(domain, change.model)
    elif isinstance(change, ChangeDisk):
        ce.change_disk(domain, change.target, change.bus, change.cache)
    elif isinstance(change, SetNic) and change.old_mac:
        ce.change_nic(domain, change.old_mac, change.kind, change.source, change.model,
                      change.mac)
    elif isinstance(change, AddDisk):
        raise VirtStudioError("A new disk needs its image path first.")
    elif isinstance(change, SetNic):
        ce.devices(domain).add(ce.new_nic(change.kind, change.source, change.model,
                                          change.mac))
    elif isinstance(change, RemoveDisk):
        ce.find_disk(domain, change.target).remove()
    elif isinstance(change, RemoveNic):
        ce.find_nic(domain, change.mac).remove()
    else:
        raise VirtStudioError(f"{change.describe()} is not a configuration edit.")
    return True


def _device(domain: Domain, change: RemoveDisk | RemoveNic) -> Device:
    if isinstance(change, RemoveDisk):
        return ce.find_disk(domain, change.target)
    return ce.find_nic(domain, change.mac)


# ---- applying --------------------------------------------------------------------------


def _try_live(call: Callable[[], object], job: Job, what: str) -> bool:
    try:
        call()
    except libvirt.libvirtError as exc:
        job.log(f"{what} cannot change while the machine runs ({exc.get_error_message()})")
        return False
    return True


def _redefine(conn: libvirt.virConnect, dom: libvirt.virDomain,
              mutate: Callable[[Domain], object]) -> object:
    """Edit the saved configuration, read with its secrets so none is lost on define."""
    domain = domain_for_edit(dom)
    result = mutate(domain)
    define(conn, domain)
    return result


def _create_volume(conn: libvirt.virConnect, change: AddDisk, job: Job) -> str:
    assert change.new_volume is not None
    pool = conn.storagePoolLookupByUUIDString(change.pool_uuid)
    job.log(f"Creating volume {change.new_volume.name} in pool {pool.name()}")
    vol = pool.createXML(volume_xml(change.new_volume), 0)
    return vol.path()


def _apply_one(conn: libvirt.virConnect, dom: libvirt.virDomain, change: Change,
               job: Job) -> str:
    active = bool(dom.isActive())
    live = libvirt.VIR_DOMAIN_AFFECT_LIVE
    if isinstance(change, SetVcpus):
        _redefine(conn, dom, lambda domain: edit_config(change, domain))
        if active and _try_live(lambda: dom.setVcpusFlags(change.count, live), job, "vCPUs"):
            return NOW
    elif isinstance(change, SetMemory):
        current_changed = _redefine(conn, dom, lambda domain: edit_config(change, domain))
        if active and current_changed and _try_live(
                lambda: dom.setMemoryFlags(change.current_mib * 1024, live), job, "Memory"):
            return NOW
    elif isinstance(change, AddDisk) or (isinstance(change, SetNic) and not change.old_mac):
        if isinstance(change, AddDisk):
            path = _create_volume(conn, change, job) if change.new_volume else change.path
            device: Device = ce.new_disk(change.target, change.bus, path, change.fmt,
                                         change.cache)
        else:
            device = ce.new_nic(change.kind, change.source, change.model, change.mac)
        xml = device.to_xml()
        _redefine(conn, dom, lambda domain: ce.devices(domain).add(Node.from_xml(xml)))
        if active and _try_live(lambda: dom.attachDeviceFlags(xml, live), job,
                                "Adding the device"):
            return NOW
    elif isinstance(change, RemoveDisk | RemoveNic):
        _redefine(conn, dom, lambda domain: edit_config(change, domain))
        if active:
            device_xml = _device(running_domain(dom), change).to_xml()
            if _try_live(lambda: dom.detachDeviceFlags(device_xml, live), job,
                         "Removing the device"):
                return NOW
    elif isinstance(change, ResizeDisk):
        return _resize(conn, dom, change, job)
    elif isinstance(change, SetDisplayPassword):
        _redefine(conn, dom, lambda domain: edit_config(change, domain))
        # QEMU changes a password only on a display started with one, and "removing"
        # one live leaves an empty password that is still asked for: both wait for a boot.
        if active and change.password and _set_live_password(dom, change.password, job):
            return NOW
    else:
        _redefine(conn, dom, lambda domain: edit_config(change, domain))
    return NEXT_BOOT if active else SAVED


def _set_live_password(dom: libvirt.virDomain, password: str, job: Job) -> bool:
    """Change the running display's password (QEMU's set_password), every display."""
    running = running_domain(dom, secure=True)
    for graphics in ce.devices(running).graphics:
        if graphics.type not in ("vnc", "spice", "rdp"):
            continue
        graphics.set_password(password)
        xml = graphics.to_xml()
        if not _try_live(lambda xml=xml: dom.updateDeviceFlags(
                xml, libvirt.VIR_DOMAIN_AFFECT_LIVE), job, "The display password"):
            return False
    return True


def _resize(conn: libvirt.virConnect, dom: libvirt.virDomain, change: ResizeDisk,
            job: Job) -> str:
    if dom.isActive():
        dom.blockResize(change.target, change.size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return NOW
    disk = ce.find_disk(Domain.from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)),
                        change.target)
    path = disk.source_file or disk.source_dev
    try:
        vol = conn.storageVolLookupByPath(path or "")
    except libvirt.libvirtError:
        raise VirtStudioError(
            f"{path or change.target} is not in a storage pool, so it can only grow while "
            "the machine runs.") from None
    declared = disk.driver_type or "raw"
    recorded = Volume.from_xml(vol.XMLDesc(0)).format
    if disk.source_file and declared != (recorded or "raw"):
        # A dir pool guesses a file's format from its bytes, which the guest wrote; the
        # machine's declared format is what the disk is, so grow it as that.
        require_local(conn.getURI(), f"Growing {change.target} (a {declared} disk)")
        job.log(f"Growing {path} as {declared} to {format_bytes(change.size)}")
        qemu_img.resize(Path(path or ""), change.size, fmt=declared)
        vol.storagePoolLookupByVolume().refresh(0)
        return SAVED
    capacity = vol.info()[1]
    if change.size < capacity:
        raise VirtStudioError(f"Shrinking {change.target} below {format_bytes(capacity)} "
                              "would destroy data; only growing is offered.")
    job.log(f"Growing {path} to {format_bytes(change.size)}")
    vol.resize(change.size, 0)
    return SAVED


def apply_changes(runner: JobRunner, host: HostConnection, uuid: str, name: str,
                  changes: list[Change],
                  done: Callable[[Outcome], None] | None = None,
                  saved: str | None = None) -> Job:
    """Apply ``changes`` in order as one job; ``done`` gets what applied when.

    Each change is written into the saved XML read afresh, so settings changed
    elsewhere stay.  With ``saved`` (the saved XML the user last saw), nothing
    applies unless the saved configuration is still that.
    """
    if not changes:
        raise VirtStudioError("Nothing to apply.")

    def work(job: Job) -> None:
        conn = host.virconn
        dom = conn.lookupByUUIDString(uuid)
        if not dom.isPersistent():
            raise VirtStudioError(f"{name} is transient: it has no saved configuration "
                                  "to change.")
        if saved is not None:
            require_saved(conn, uuid, saved, name)
        outcome = Outcome()
        try:
            for i, change in enumerate(changes):
                job.report(i / len(changes), change.describe())
                when = _apply_one(conn, dom, change, job)
                job.log(f"{change.describe()}: {when}")
                outcome.lines.append((change.describe(), when))
        finally:
            host.refresh_domain(uuid)
        if done is not None:
            done(outcome)

    return runner.submit(f"Change hardware of {name}", work, host=host.name, target=name)
