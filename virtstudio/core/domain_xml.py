"""Read the facts the UI shows from a domain's XML description."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

_UNIT_TO_KIB = {
    "b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024,
    "m": 1024, "mib": 1024, "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2,
    "gb": 1000**3 / 1024, "t": 1024**3, "tib": 1024**3, "tb": 1000**4 / 1024,
}


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


def _kib(element: ET.Element | None) -> int:
    if element is None or not (element.text or "").strip():
        return 0
    unit = (element.get("unit") or "KiB").lower()
    try:
        return int(int(element.text.strip()) * _UNIT_TO_KIB.get(unit, 1))
    except ValueError:
        return 0


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def parse_domain_xml(xml: str) -> DomainSummary:
    """Parse ``xml``; raise ``ValueError`` when it is not a domain description."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.tag != "domain":
        raise ValueError(f"expected <domain>, found <{root.tag}>")
    os_type = root.find("os/type")
    disks = []
    for disk in root.findall("devices/disk"):
        src = disk.find("source")
        attrs = src.attrib if src is not None else {}
        source_type = disk.get("type", "file")
        pool = attrs.get("pool", "")
        volume = attrs.get("volume", "")
        source = (
            attrs.get("file") or attrs.get("dev") or attrs.get("dir")
            or (f"{pool}/{volume}" if pool else "") or attrs.get("name", "")
        )
        target = disk.find("target")
        driver = disk.find("driver")
        disks.append(DiskInfo(
            device=disk.get("device", "disk"),
            target=target.get("dev", "") if target is not None else "",
            bus=target.get("bus", "") if target is not None else "",
            source=source,
            source_type=source_type,
            pool=pool,
            volume=volume,
            fmt=driver.get("type", "") if driver is not None else "",
            readonly=disk.find("readonly") is not None,
            shareable=disk.find("shareable") is not None,
        ))
    nics = []
    for nic in root.findall("devices/interface"):
        src = nic.find("source")
        attrs = src.attrib if src is not None else {}
        mac = nic.find("mac")
        model = nic.find("model")
        target = nic.find("target")
        nics.append(NicInfo(
            kind=nic.get("type", ""),
            source=attrs.get("network") or attrs.get("bridge") or attrs.get("dev", ""),
            mac=mac.get("address", "") if mac is not None else "",
            model=model.get("type", "") if model is not None else "",
            target_dev=target.get("dev", "") if target is not None else "",
        ))
    graphics = []
    for gfx in root.findall("devices/graphics"):
        port = _int(gfx.get("port"), -1)
        listen = gfx.get("listen") or ""
        listen_el = gfx.find("listen")
        if not listen and listen_el is not None:
            listen = listen_el.get("address") or listen_el.get("socket") or ""
        graphics.append(GraphicsInfo(gfx.get("type", ""), listen, port if port > 0 else None))
    video = root.find("devices/video/model")
    vcpu = root.find("vcpu")
    return DomainSummary(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid", ""),
        title=root.findtext("title", "") or "",
        description=root.findtext("description", "") or "",
        domain_type=root.get("type", ""),
        arch=os_type.get("arch", "") if os_type is not None else "",
        machine=os_type.get("machine", "") if os_type is not None else "",
        os_type=(os_type.text or "").strip() if os_type is not None else "",
        vcpus=_int(vcpu.get("current"), 0) or _int(vcpu.text, 0) if vcpu is not None else 0,
        memory_kib=_kib(root.find("memory")),
        current_memory_kib=_kib(root.find("currentMemory")) or _kib(root.find("memory")),
        disks=tuple(disks),
        nics=tuple(nics),
        graphics=tuple(graphics),
        video=video.get("type", "") if video is not None else "",
        emulator=root.findtext("devices/emulator", "") or "",
        boot=tuple(b.get("dev", "") for b in root.findall("os/boot")),
    )
