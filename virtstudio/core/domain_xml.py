"""Read the facts the UI shows from a domain's XML description."""

from __future__ import annotations

from dataclasses import dataclass, field

from virtstudio.xml import Domain, XMLError
from virtstudio.xml.domain import boot_order


@dataclass(frozen=True)
class DiskInfo:
    device: str  # disk, cdrom, floppy, lun
    target: str  # vda, sda, ...
    bus: str
    source: str  # file path, block device, pool/volume or network name
    source_type: str  # file, block, volume, network, dir
    pool: str = ""
    volume: str = ""
    fmt: str = ""
    readonly: bool = False
    shareable: bool = False
    cache: str = ""  # the driver's cache mode; "" for the hypervisor's default


@dataclass(frozen=True)
class NicInfo:
    kind: str  # network, bridge, direct, user, ...
    source: str
    mac: str
    model: str
    target_dev: str = ""


@dataclass(frozen=True)
class GraphicsInfo:
    kind: str  # vnc, spice, sdl, ...
    listen: str
    port: int | None


@dataclass(frozen=True)
class DomainSummary:
    name: str
    uuid: str
    title: str = ""
    description: str = ""
    domain_type: str = ""
    arch: str = ""
    machine: str = ""
    os_type: str = ""
    vcpus: int = 0
    memory_kib: int = 0
    current_memory_kib: int = 0
    disks: tuple[DiskInfo, ...] = field(default_factory=tuple)
    nics: tuple[NicInfo, ...] = field(default_factory=tuple)
    graphics: tuple[GraphicsInfo, ...] = field(default_factory=tuple)
    video: str = ""
    emulator: str = ""
    boot: tuple[str, ...] = field(default_factory=tuple)


def parse_domain_xml(xml: str) -> DomainSummary:
    """Parse ``xml``; raise ``ValueError`` when it is not a domain description."""
    try:
        domain = Domain.from_xml(xml)
    except XMLError as exc:
        raise ValueError(f"not a domain description: {exc}") from None
    os = domain.os
    devices = domain.devices
    disks = []
    nics = []
    graphics = []
    video = ""
    if devices is not None:
        for disk in devices.disks:
            disks.append(DiskInfo(
                device=disk.device or "disk",
                target=disk.target_dev or "",
                bus=disk.target_bus or "",
                source=disk.source_path,
                source_type=disk.type or "file",
                pool=disk.source_pool or "",
                volume=disk.source_volume or "",
                fmt=disk.driver_type or "",
                readonly=disk.readonly,
                shareable=disk.shareable,
                cache=disk.cache or "",
            ))
        for nic in devices.interfaces:
            nics.append(NicInfo(
                kind=nic.type or "",
                source=nic.source,
                mac=nic.mac or "",
                model=nic.model or "",
                target_dev=nic.target_dev or "",
            ))
        for gfx in devices.graphics:
            listen = gfx.listen or ""
            if not listen and gfx.listens:
                first = gfx.listens[0]
                listen = first.address or first.socket or ""
            port = gfx.port
            graphics.append(GraphicsInfo(gfx.type or "", listen,
                                         port if port is not None and port > 0 else None))
        videos = list(devices.videos)
        if videos:
            video = next((v for v in videos if v.primary), videos[0]).model or ""
    return DomainSummary(
        name=domain.name or "",  # as libvirt has it: a name of spaces is a name
        uuid=(domain.uuid or "").strip(),
        title=domain.title or "",
        description=domain.description or "",
        domain_type=domain.type or "",
        arch=(os.arch or "") if os is not None else "",
        machine=(os.machine or "") if os is not None else "",
        os_type=(os.type or "").strip() if os is not None else "",
        vcpus=domain.vcpus,
        memory_kib=domain.memory_kib,
        current_memory_kib=domain.current_memory_kib,
        disks=tuple(disks),
        nics=tuple(nics),
        graphics=tuple(graphics),
        video=video,
        emulator=(devices.emulator or "") if devices is not None else "",
        boot=boot_order(domain),
    )
