"""What a host can run, read from libvirt's capability XML.

``getCapabilities`` lists a guest architecture only where its emulator is
installed, with the machine types and domain types (kvm, qemu, ...) it
offers; ``getDomainCapabilities`` says whether UEFI firmware is there and
which kinds of display, video card and disk bus one machine type takes.
Parsing is separate from reading so it is testable without a host.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import libvirt

from virtstudio.xml import DomainCapabilities, XMLError

log = logging.getLogger(__name__)

# Machine types that are aliases or shorthands people know, listed first.
_PREFERRED_MACHINES = ("q35", "pc", "virt")


@dataclass(frozen=True)
class GuestArch:
    arch: str
    os_type: str
    emulator: str
    machines: tuple[str, ...]  # friendly aliases first, then versioned names
    domain_types: tuple[str, ...]  # the accelerated one (kvm) first where offered
    max_vcpus: int = 0
    uefi: bool = False  # known only after the domain capabilities were read
    graphics: tuple[str, ...] = ()  # empty: unknown, so not restricted

    @property
    def default_domain_type(self) -> str:
        return self.domain_types[0] if self.domain_types else ""


@dataclass(frozen=True)
class HostFacts:
    host_arch: str
    arches: tuple[GuestArch, ...]
    memory_mib: int = 0
    bridges: tuple[str, ...] = ()
    bridges_known: bool = False  # False: the host cannot list them, so any name is accepted
    domain_caps_read: bool = False
    notes: tuple[str, ...] = field(default=())

    def arch(self, name: str) -> GuestArch | None:
        return next((a for a in self.arches if a.arch == name), None)

    @property
    def default_arch(self) -> GuestArch | None:
        return self.arch(self.host_arch) or (self.arches[0] if self.arches else None)


def _domain_type_order(kind: str, accelerated: bool = True) -> int:
    # Hardware acceleration first: it is what a user wants wherever it works.
    if not accelerated and kind == "kvm":
        return 9
    return {"kvm": 0, "hvf": 1, "xen": 2, "qemu": 5}.get(kind, 3)


def hardware_virtualization(root: ET.Element) -> bool:
    """False when an x86 host's processor shows neither VT-x nor AMD-V.

    /dev/kvm can exist without them (e.g. a KVM that only runs paravirtualized
    guests inside a cloud VM); an ordinary guest then starts but never boots,
    so emulation is the better default there.
    """
    if root.findtext("host/cpu/arch", "") not in ("x86_64", "i686"):
        return True
    features = {f.get("name") for f in root.findall("host/cpu/feature")}
    return not features or bool(features & {"vmx", "svm"})


def parse_capabilities(xml: str) -> tuple[str, list[GuestArch]]:
    """The host's own architecture and the guest architectures it can run (hvm only)."""
    root = ET.fromstring(xml)
    host_arch = root.findtext("host/cpu/arch", "") or ""
    accelerated = hardware_virtualization(root)
    found: dict[str, GuestArch] = {}
    for guest in root.findall("guest"):
        os_type = guest.findtext("os_type", "")
        arch_el = guest.find("arch")
        if arch_el is None or os_type != "hvm":
            continue
        name = arch_el.get("name", "")
        aliases: list[str] = []
        versioned: list[str] = []
        max_vcpus = 0
        for machine in arch_el.findall("machine"):
            text = (machine.text or "").strip()
            if not text:
                continue
            (aliases if machine.get("canonical") else versioned).append(text)
            if text in _PREFERRED_MACHINES or machine.get("canonical"):
                max_vcpus = max(max_vcpus, int(machine.get("maxCpus", "0") or 0))
        aliases.sort(key=lambda m: (_PREFERRED_MACHINES.index(m)
                                    if m in _PREFERRED_MACHINES else 99, m))
        for preferred in _PREFERRED_MACHINES:
            # Machines without an alias entry (e.g. aarch64 "virt") still go first.
            if preferred in versioned:
                versioned.remove(preferred)
                aliases.insert(0, preferred)
        kinds = sorted({d.get("type", "") for d in arch_el.findall("domain")} - {""},
                       key=lambda kind: _domain_type_order(kind, accelerated))
        if name and name not in found:
            found[name] = GuestArch(name, os_type, arch_el.findtext("emulator", ""),
                                    tuple(aliases + sorted(versioned)), tuple(kinds),
                                    max_vcpus)
    return host_arch, list(found.values())


def parse_domain_capabilities(xml: str) -> tuple[bool, int, tuple[str, ...]]:
    """(UEFI firmware available, the vCPU limit, graphics types) from domain capabilities."""
    caps = DomainCapabilities.from_xml(xml)
    uefi = "efi" in caps.firmware or any("OVMF" in p or "AAVMF" in p or "edk2" in p.lower()
                                         for p in caps.loaders)
    return uefi, caps.max_vcpus, caps.device_enum("graphics", "type") or ()


@dataclass(frozen=True)
class DeviceKinds:
    """The device kinds one machine type takes; None where the host does not say."""

    graphics: tuple[str, ...] | None = None
    video: tuple[str, ...] | None = None
    disk_buses: tuple[str, ...] | None = None


def parse_device_kinds(xml: str) -> DeviceKinds:
    caps = DomainCapabilities.from_xml(xml)
    return DeviceKinds(caps.device_enum("graphics", "type"),
                       caps.device_enum("video", "modelType"),
                       caps.device_enum("disk", "bus"))


def read_device_kinds(conn: libvirt.virConnect, emulator: str, arch: str, machine: str,
                      virt_type: str) -> DeviceKinds | None:
    """What a machine of this emulator, arch, machine type and virt type takes (worker only).

    None when the host cannot say (the test driver, an older libvirt, an emulator
    that is gone): the caller then offers its usual lists.
    """
    try:
        xml = conn.getDomainCapabilities(emulator or None, arch or None, machine or None,
                                         virt_type or None, 0)
        return parse_device_kinds(xml)
    except (libvirt.libvirtError, XMLError) as exc:
        log.debug("no domain capabilities for %s %s %s: %s", emulator, arch, machine, exc)
        return None


def parse_bridges(interface_xmls: list[str]) -> tuple[str, ...]:
    names = []
    for xml in interface_xmls:
        root = ET.fromstring(xml)
        if root.get("type") == "bridge" and root.get("name"):
            names.append(root.get("name", ""))
    return tuple(sorted(names))


def _with_domain_caps(conn: libvirt.virConnect, arch: GuestArch) -> GuestArch:
    machine = arch.machines[0] if arch.machines else None
    try:
        xml = conn.getDomainCapabilities(arch.emulator or None, arch.arch, machine,
                                         arch.default_domain_type or None, 0)
    except libvirt.libvirtError as exc:
        log.debug("no domain capabilities for %s: %s", arch.arch, exc)
        return arch
    uefi, max_vcpus, graphics = parse_domain_capabilities(xml)
    return GuestArch(arch.arch, arch.os_type, arch.emulator, arch.machines, arch.domain_types,
                     max_vcpus or arch.max_vcpus, uefi, graphics)


def discover(conn: libvirt.virConnect) -> HostFacts:
    """Read what the host offers; runs on the host's worker thread (blocking calls)."""
    caps = conn.getCapabilities()
    host_arch, arches = parse_capabilities(caps)
    notes: list[str] = []
    if not hardware_virtualization(ET.fromstring(caps)):
        notes.append("This host's processor offers no VT-x or AMD-V to guests: machines are "
                     "emulated (QEMU) unless you choose KVM.")
    detailed = []
    domain_caps_read = True
    for arch in arches:
        richer = _with_domain_caps(conn, arch)
        domain_caps_read = domain_caps_read and richer is not arch
        detailed.append(richer)
    try:
        memory_mib = int(conn.getInfo()[1])
    except libvirt.libvirtError:
        memory_mib = 0
    try:
        bridges = parse_bridges([i.XMLDesc(0) for i in conn.listAllInterfaces(0)])
        bridges_known = True
    except libvirt.libvirtError:
        bridges, bridges_known = (), False
        notes.append("This host does not list its interfaces: type the bridge's name.")
    return HostFacts(host_arch, tuple(detailed), memory_mib, bridges, bridges_known,
                     domain_caps_read, tuple(notes))
