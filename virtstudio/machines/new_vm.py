"""What a new virtual machine should be (VmSpec), what is wrong with it, and its XML.

``validate`` answers per field in plain words, so a form can show each
message next to the field it is about and keep its button disabled while any
is left.  ``to_domain_xml`` writes libvirt domain XML from a valid spec.
"""

from __future__ import annotations

import enum
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.units import format_bytes
from virtstudio.machines.host_caps import HostFacts
from virtstudio.machines.os_variants import DEFAULT_VARIANT, OsVariant
from virtstudio.storage.backing_chains import ChainReview
from virtstudio.storage.qemu_img import ImageInfo
from virtstudio.storage.sizes import parse_size

GiB = 1024**3
MiB = 1024**2
MAX_NAME = 64
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Linux interface names: at most 15 bytes, no slash, colon or whitespace.
_BRIDGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}")
GRAPHICS = ("spice", "vnc")
IMAGE_FORMATS = ("raw", "qcow2")  # what an imported or existing image may be read as


class InstallSource(enum.Enum):
    ISO = "Install from an ISO image"
    IMPORT = "Import an existing disk image"
    PXE = "Network boot (PXE)"
    KERNEL = "Direct kernel boot"


class DiskChoice(enum.Enum):
    NEW = "new"
    EXISTING = "existing"
    NONE = "none"


class NetworkChoice(enum.Enum):
    VIRTUAL = "virtual"
    BRIDGE = "bridge"
    NONE = "none"


class Field(enum.StrEnum):
    """The form fields a message can be about."""

    NAME = "name"
    ISO = "iso"
    IMPORT = "import"
    IMPORT_FORMAT = "import_format"
    IMPORT_CHAIN = "import_chain"
    KERNEL = "kernel"
    INITRD = "initrd"
    ARCH = "arch"
    MACHINE = "machine"
    DOMAIN_TYPE = "domain_type"
    FIRMWARE = "firmware"
    VCPUS = "vcpus"
    MEMORY = "memory"
    DISK_POOL = "disk_pool"
    DISK_SIZE = "disk_size"
    DISK_PATH = "disk_path"
    DISK_FORMAT = "disk_format"
    DISK_CHAIN = "disk_chain"
    NETWORK = "network"
    GRAPHICS = "graphics"


@dataclass
class VmSpec:
    name: str = ""
    source: InstallSource = InstallSource.ISO
    iso: str = ""  # a local file or a pool volume's path
    import_path: str = ""
    import_format: str = ""  # "raw" or "qcow2", as the user chose; never guessed
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    os_variant: OsVariant = DEFAULT_VARIANT
    arch: str = ""
    machine: str = ""
    domain_type: str = ""
    firmware: str = "bios"  # or "uefi"
    vcpus: int = 2
    memory_mib: int = 2048
    disk: DiskChoice = DiskChoice.NEW
    disk_pool: str = ""
    disk_size: int = 20 * GiB
    disk_path: str = ""  # an existing image, for DiskChoice.EXISTING
    disk_format: str = ""  # "raw" or "qcow2", as the user chose; never guessed
    network: NetworkChoice = NetworkChoice.VIRTUAL
    network_source: str = ""  # a libvirt network's or a host bridge's name
    graphics: str = "spice"
    customize: bool = False  # define only, so the user can edit it before the first start

    @property
    def volume_name(self) -> str:
        return f"{self.name}.qcow2"

    @property
    def has_new_volume(self) -> bool:
        return self.source is not InstallSource.IMPORT and self.disk is DiskChoice.NEW

    @property
    def existing_image(self) -> tuple[str, str] | None:
        """The image file that becomes the disk and its chosen format; None for a new disk."""
        if self.source is InstallSource.IMPORT:
            return self.import_path, self.import_format
        if self.disk is DiskChoice.EXISTING:
            return self.disk_path, self.disk_format
        return None


@dataclass
class HostContext:
    """What the checks need to know about the target host, read without calling libvirt."""

    name: str
    facts: HostFacts
    domain_names: frozenset[str] = frozenset()
    pools: Mapping[str, StoragePool] = field(default_factory=dict)
    networks: Mapping[str, bool] = field(default_factory=dict)  # name -> running
    local: bool = True  # files can be checked on this computer
    file_exists: Callable[[str], bool] = os.path.isfile

    def known_volume(self, path: str) -> bool:
        return any(v.path == path for p in self.pools.values() for v in p.volumes)

    def path_exists(self, path: str) -> bool | None:
        """True or False where it can be known; None for a remote host's own files."""
        if self.known_volume(path):
            return True
        return self.file_exists(path) if self.local else None


def parse_memory_mib(text: str) -> int:
    """MiB in ``text``: a plain number is MiB, "2G" or "1.5 GiB" carry their unit."""
    text = text.strip()
    if not text:
        return 0
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"0+(\.0*)?\s*[A-Za-z]*", text):
        return 0
    return parse_size(text) // MiB


def parse_disk_size(text: str) -> int:
    """Bytes in ``text``: a plain number is GiB, "512M" or "1.5T" carry their unit."""
    text = text.strip()
    if not text:
        return 0
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * GiB)
    if re.fullmatch(r"0+(\.0*)?\s*[A-Za-z]*", text):
        return 0
    return parse_size(text)


def suggest_name(base: str, taken: set[str] | frozenset[str]) -> str:
    """A free name built from ``base`` (an OS variant's id), for a user who accepts defaults."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", base.removesuffix("-generic")) or "vm"
    if stem not in taken:
        return stem
    number = 2
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def check_name(name: str, ctx: HostContext) -> str:
    if not name:
        return "Enter a name for the machine."
    if " " in name or "\t" in name:
        return "A name cannot contain spaces: use - or _ instead."
    if "/" in name:
        return "A name cannot contain slashes (/)."
    if len(name) > MAX_NAME:
        return f"Use at most {MAX_NAME} characters."
    if not _NAME_RE.fullmatch(name):
        return ("Use letters, digits, dots, dashes and underscores, "
                "starting with a letter or digit.")
    if name in ctx.domain_names:
        return f"{ctx.name} already has a machine called {name}."
    return ""


def _check_file(path: str, ctx: HostContext, what: str, empty: str) -> str:
    if not path:
        return empty
    if not os.path.isabs(path):
        return f"Give the {what}'s full path, starting with /."
    if ctx.path_exists(path) is False:
        return f"There is no {what} at {path}."
    return ""


def _check_source(spec: VmSpec, ctx: HostContext) -> dict[Field, str]:
    found: dict[Field, str] = {}
    if spec.source is InstallSource.ISO:
        found[Field.ISO] = _check_file(spec.iso, ctx, "ISO image",
                                       "Choose an ISO image: a file, or a volume in a pool.")
    elif spec.source is InstallSource.IMPORT:
        found[Field.IMPORT] = _check_file(spec.import_path, ctx, "disk image",
                                          "Choose the disk image to import.")
        if spec.import_format not in IMAGE_FORMATS:
            found[Field.IMPORT_FORMAT] = "Choose the image's format: raw or qcow2."
    elif spec.source is InstallSource.KERNEL:
        found[Field.KERNEL] = _check_file(spec.kernel, ctx, "kernel",
                                          "Enter the path of the kernel to boot.")
        if spec.initrd:
            found[Field.INITRD] = _check_file(spec.initrd, ctx, "initrd", "")
    return found


def _check_machine(spec: VmSpec, ctx: HostContext) -> dict[Field, str]:
    found: dict[Field, str] = {}
    arch = ctx.facts.arch(spec.arch)
    if arch is None:
        offered = ", ".join(a.arch for a in ctx.facts.arches) or "none"
        found[Field.ARCH] = (f"{ctx.name} cannot run {spec.arch or 'this'} guests: no emulator "
                             f"for it is installed (it offers: {offered}).")
        return found
    if arch.machines and spec.machine not in arch.machines:
        found[Field.MACHINE] = f"{spec.arch} guests here have no machine type {spec.machine!r}."
    if spec.domain_type not in arch.domain_types:
        found[Field.DOMAIN_TYPE] = (f"{ctx.name} offers {', '.join(arch.domain_types)} for "
                                    f"{spec.arch}, not {spec.domain_type or 'nothing'}.")
    if spec.firmware == "uefi" and not arch.uefi:
        found[Field.FIRMWARE] = (f"No UEFI firmware for {spec.arch} is installed on {ctx.name} "
                                 "(OVMF or edk2): choose BIOS.")
    elif spec.firmware not in ("bios", "uefi"):
        found[Field.FIRMWARE] = "Choose BIOS or UEFI."
    if spec.vcpus < 1:
        found[Field.VCPUS] = "A machine needs at least one vCPU."
    elif arch.max_vcpus and spec.vcpus > arch.max_vcpus:
        found[Field.VCPUS] = f"This machine type takes at most {arch.max_vcpus} vCPUs."
    variant = spec.os_variant
    if spec.memory_mib <= 0:
        found[Field.MEMORY] = f"Give the machine memory: at least {variant.min_memory_mib} MiB."
    elif spec.memory_mib < variant.min_memory_mib:
        found[Field.MEMORY] = (f"{variant.label} needs at least {variant.min_memory_mib} MiB; "
                               f"{spec.memory_mib} MiB is too small.")
    elif ctx.facts.memory_mib and spec.memory_mib > ctx.facts.memory_mib:
        found[Field.MEMORY] = (f"{ctx.name} has only {ctx.facts.memory_mib} MiB of memory in all.")
    return found


def _check_disk(spec: VmSpec, ctx: HostContext) -> dict[Field, str]:
    found: dict[Field, str] = {}
    if spec.source is InstallSource.IMPORT or spec.disk is DiskChoice.NONE:
        return found
    if spec.disk is DiskChoice.EXISTING:
        found[Field.DISK_PATH] = _check_file(spec.disk_path, ctx, "disk image",
                                             "Choose an existing disk image.")
        if spec.disk_format not in IMAGE_FORMATS:
            found[Field.DISK_FORMAT] = "Choose the image's format: raw or qcow2."
        return found
    pool = ctx.pools.get(spec.disk_pool)
    if pool is None:
        found[Field.DISK_POOL] = ("Choose the storage pool for the new disk."
                                  if not spec.disk_pool else f"There is no pool {spec.disk_pool}.")
    elif not pool.active:
        found[Field.DISK_POOL] = f"The pool {pool.name} is not running: start it or pick another."
    elif spec.name and any(v.name == spec.volume_name for v in pool.volumes):
        found[Field.DISK_POOL] = (f"{pool.name} already has a volume {spec.volume_name}: choose "
                                  "another name, or use it as an existing disk.")
    if spec.disk_size <= 0:
        found[Field.DISK_SIZE] = "Enter a disk size above zero, like 20 (GiB) or 512M."
    elif pool is not None and pool.active and spec.disk_size > pool.available:
        found[Field.DISK_SIZE] = (f"A {format_bytes(spec.disk_size)} disk does not fit: "
                                  f"{pool.name} has {format_bytes(pool.available)} free.")
    return found


def _check_devices(spec: VmSpec, ctx: HostContext) -> dict[Field, str]:
    found: dict[Field, str] = {}
    source = spec.network_source
    if spec.network is NetworkChoice.NONE:
        if spec.source is InstallSource.PXE:
            found[Field.NETWORK] = "Network boot needs a network: choose one."
    elif spec.network is NetworkChoice.VIRTUAL:
        if not source:
            found[Field.NETWORK] = "Choose a virtual network."
        elif source not in ctx.networks:
            found[Field.NETWORK] = f"{ctx.name} has no virtual network called {source}."
        elif not ctx.networks[source] and not spec.customize:
            found[Field.NETWORK] = (f"The network {source} is not running: start it, or pick "
                                    "another.")
    elif not source:
        found[Field.NETWORK] = "Enter the name of a bridge on the host, like br0."
    elif not _BRIDGE_RE.fullmatch(source):
        found[Field.NETWORK] = "A bridge name has at most 15 letters, digits, dots or dashes."
    elif ctx.facts.bridges_known and source not in ctx.facts.bridges:
        bridges = ", ".join(ctx.facts.bridges) or "none"
        found[Field.NETWORK] = f"{ctx.name} has no bridge called {source} (it has: {bridges})."
    arch = ctx.facts.arch(spec.arch)
    if spec.graphics not in GRAPHICS:
        found[Field.GRAPHICS] = "Choose SPICE or VNC."
    elif arch is not None and arch.graphics and spec.graphics not in arch.graphics:
        found[Field.GRAPHICS] = f"QEMU on {ctx.name} was built without {spec.graphics.upper()}."
    return found


def validate(spec: VmSpec, ctx: HostContext) -> dict[Field, str]:
    """Each field's problem in plain words; an empty dict means the spec can be created."""
    found = {Field.NAME: check_name(spec.name, ctx)}
    for check in (_check_source, _check_machine, _check_disk, _check_devices):
        found.update(check(spec, ctx))
    return {key: message for key, message in found.items() if message}


# ---- XML -------------------------------------------------------------------------------

_TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}


def _is_x86(arch: str) -> bool:
    return arch in ("x86_64", "i686")


class _Targets:
    """Hands out disk target names (vda, sda, hdc, ...) per bus prefix."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def next(self, bus: str, skip_to: int = 0) -> str:
        prefix = _TARGET_PREFIX[bus]
        index = max(self._used.get(prefix, 0), skip_to)
        self._used[prefix] = index + 1
        return prefix + chr(ord("a") + index)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _backing_store(disk: ET.Element, below: tuple[ImageInfo, ...]) -> None:
    """The backing chain as it was read and shown, each file with its format.

    libvirt then opens exactly these files in these formats, and the empty
    <backingStore/> at the bottom says nothing lies below, whatever a header
    may claim later.
    """
    parent = disk
    for layer in below:
        parent = _sub(parent, "backingStore", type="file")
        _sub(parent, "format", type=layer.format)
        _sub(parent, "source", file=layer.path)
    _sub(parent, "backingStore")


def _disk(devices: ET.Element, kind: str, path: str, fmt: str, bus: str, target: str,
          chain: ChainReview | None = None) -> None:
    disk = _sub(devices, "disk", type="file", device=kind)
    _sub(disk, "driver", name="qemu", type=fmt)
    _sub(disk, "source", file=path)
    if chain is not None and fmt == "qcow2":
        _backing_store(disk, chain.layers[1:])
    _sub(disk, "target", dev=target, bus=bus)
    if kind == "cdrom":
        _sub(disk, "readonly")


def checked_image_chain(spec: VmSpec, chain: ChainReview | None) -> ChainReview | None:
    """``chain`` checked against the spec's existing image and the format the user chose."""
    image = spec.existing_image
    if image is None:
        return None
    path, fmt = image
    if fmt not in IMAGE_FORMATS:
        raise VirtStudioError(f"Choose the format of {path or 'the image'}: raw or qcow2.")
    if chain is not None and (chain.top.path, chain.top.format) != (path, fmt):
        raise VirtStudioError(f"The backing chain shown is not that of {path} read as {fmt}; "
                              "nothing was created.")
    if chain is None and fmt == "qcow2":
        raise VirtStudioError(f"The backing chain of {path} was not read; nothing was created.")
    return chain


def _buses(spec: VmSpec) -> tuple[str, str]:
    """The bus for hard disks and the one for the CD-ROM on this machine type."""
    if not _is_x86(spec.arch):
        return "virtio", "scsi"  # e.g. aarch64 "virt": no IDE or SATA controller
    cdrom = "ide" if spec.machine.startswith(("pc", "isapc")) and "q35" not in spec.machine \
        else "sata"
    return spec.os_variant.disk_bus, cdrom


def _os_element(root: ET.Element, spec: VmSpec) -> None:
    os_el = _sub(root, "os")
    if spec.firmware == "uefi":
        os_el.set("firmware", "efi")
    type_attrs = {"arch": spec.arch} if spec.arch else {}
    if spec.machine:
        type_attrs["machine"] = spec.machine
    _sub(os_el, "type", "hvm", **type_attrs)
    if spec.source is InstallSource.KERNEL:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
        return
    # The hard disk first: an empty new disk falls through to the installer, and once
    # the system is installed the machine boots it without a change to its definition.
    _sub(os_el, "boot", dev="hd")
    if spec.source is InstallSource.ISO:
        _sub(os_el, "boot", dev="cdrom")
    elif spec.source is InstallSource.PXE:
        _sub(os_el, "boot", dev="network")


def _features(root: ET.Element, spec: VmSpec) -> None:
    if not _is_x86(spec.arch):
        return
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.os_variant.hyperv:
        hyperv = _sub(features, "hyperv", mode="custom")
        for name in ("relaxed", "vapic"):
            _sub(hyperv, name, state="on")
        _sub(hyperv, "spinlocks", state="on", retries="8191")


def to_domain_xml(spec: VmSpec, disk_path: str = "", disk_format: str = "",
                  image_chain: ChainReview | None = None) -> str:
    """Domain XML for ``spec``; ``disk_path`` is the new volume's path once it exists.

    An imported or existing image is written in the format the user chose; a
    qcow2 one also records ``image_chain`` (its backing chain as read and
    confirmed) as the disk's <backingStore>, so libvirt reads no other file.
    """
    variant = spec.os_variant
    root = ET.Element("domain", type=spec.domain_type or "qemu")
    _sub(root, "name", spec.name)
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "currentMemory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    _os_element(root, spec)
    _features(root, spec)
    if spec.domain_type == "kvm":
        _sub(root, "cpu", mode="host-passthrough")
    elif spec.arch == "aarch64":
        # QEMU's default core for "virt" is the 32-bit Cortex-A15: 64-bit firmware and
        # kernels would never start. "max" emulates every feature QEMU knows.
        cpu = _sub(root, "cpu", mode="custom", match="exact")
        _sub(cpu, "model", "max")
    _sub(root, "clock", offset="localtime" if variant.family == "windows" else "utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"),
                          ("on_crash", "destroy")):
        _sub(root, event, action)
    devices = _sub(root, "devices")
    disk_bus, cdrom_bus = _buses(spec)
    targets = _Targets()
    image = spec.existing_image
    if image is not None:
        _disk(devices, "disk", image[0], image[1], disk_bus, targets.next(disk_bus),
              checked_image_chain(spec, image_chain))
    elif spec.disk is DiskChoice.NEW and disk_path:
        _disk(devices, "disk", disk_path, disk_format or "qcow2", disk_bus,
              targets.next(disk_bus))
    if spec.source is InstallSource.ISO:
        # IDE CD-ROMs sit on the secondary channel (hdc), where installers expect them.
        _disk(devices, "cdrom", spec.iso, "raw", cdrom_bus,
              targets.next(cdrom_bus, 2 if cdrom_bus == "ide" else 0))
    if cdrom_bus == "scsi" and spec.source is InstallSource.ISO:
        _sub(devices, "controller", type="scsi", model="virtio-scsi")
    if spec.network is not NetworkChoice.NONE:
        kind = "network" if spec.network is NetworkChoice.VIRTUAL else "bridge"
        nic = _sub(devices, "interface", type=kind)
        _sub(nic, "source", **{kind: spec.network_source})
        _sub(nic, "model", type=variant.nic_model if _is_x86(spec.arch) else "virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    if _is_x86(spec.arch):
        _sub(devices, "input", type="tablet", bus="usb")
    graphics = _sub(devices, "graphics", type=spec.graphics, autoport="yes", listen="127.0.0.1")
    _sub(graphics, "listen", type="address", address="127.0.0.1")
    if spec.graphics == "spice" and variant.family in ("linux", "windows"):
        channel = _sub(devices, "channel", type="spicevmc")
        _sub(channel, "target", type="virtio", name="com.redhat.spice.0")
    video = _sub(devices, "video")
    _sub(video, "model", type=variant.video if _is_x86(spec.arch) else "virtio")
    if variant.virtio:
        _sub(devices, "memballoon", model="virtio")
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def disk_summary(spec: VmSpec) -> str:
    """One line saying what the machine's disk will be."""
    if spec.source is InstallSource.IMPORT:
        return f"Imported image {spec.import_path}, read as {spec.import_format or '?'}"
    if spec.disk is DiskChoice.NONE:
        return "No disk"
    if spec.disk is DiskChoice.EXISTING:
        return f"Existing image {spec.disk_path}, read as {spec.disk_format or '?'}"
    return (f"New thin qcow2 volume {spec.volume_name}, {format_bytes(spec.disk_size)}, "
            f"in pool {spec.disk_pool}")


def require_valid(spec: VmSpec, ctx: HostContext) -> None:
    problems = validate(spec, ctx)
    if problems:
        raise VirtStudioError(" ".join(problems.values()))
