"""Every edit the app offers, as a case the corpus test applies to each document it fits.

A case knows when it applies, makes its change through the same functions the editor
uses (machines/config_edits.py) and names what it may change: path patterns in the
form ``corpus.flatten`` writes, where a step without ``[n]`` matches every index and
``*`` any element.  What an edit is meant to remove (SPICE's channels when the display
becomes VNC) is cut from the "before" document first, so the comparison still sees
each kept element at its own position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from virtstudio.core.errors import VirtStudioError
from virtstudio.machines import config_edits
from virtstudio.xml import Domain
from virtstudio.xml.base import remove_element

Patterns = tuple[str, ...]


@dataclass(frozen=True)
class EditCase:
    kind: str  # the row of the corpus table: vcpus, memory, boot, ...
    name: str
    applies: Callable[[Domain], bool]
    apply: Callable[[Domain], None]
    allowed: Callable[[Domain], Patterns]  # read from the document before the edit
    prune: Callable[[Domain], None] = field(default=lambda _d: None)  # expected removals


def _index(element: object) -> int:
    """1-based position of ``element`` among its parent's children of the same tag."""
    el = element.element  # type: ignore[attr-defined]
    same = [c for c in el.getparent() if c.tag == el.tag]
    return same.index(el) + 1


def _devices(domain: Domain) -> object:
    return domain.devices


def _disks(domain: Domain) -> list:
    dev = domain.devices
    return [d for d in dev.disks if d.device in (None, "disk")] if dev is not None else []


_MOVABLE_NICS = ("network", "bridge", "direct", "user", "ethernet")


def _nics(domain: Domain) -> list:
    dev = domain.devices
    return ([n for n in dev.interfaces if n.type in _MOVABLE_NICS and n.mac]
            if dev is not None else [])


def _graphics(domain: Domain) -> list:
    dev = domain.devices
    return list(dev.graphics) if dev is not None else []


def _videos(domain: Domain) -> list:
    dev = domain.devices
    return list(dev.videos) if dev is not None else []


def _primary_video(domain: Domain) -> object:
    videos = _videos(domain)
    return next((v for v in videos if v.primary), videos[0])


# ---- vCPUs and memory ------------------------------------------------------------------

def _vcpus_now(domain: Domain) -> int:
    return domain.vcpus or 1


_VCPU_PATHS: Patterns = ("/domain/vcpu", "/domain/cpu/topology")


# ---- displays --------------------------------------------------------------------------

def _leaves_spice(domain: Domain) -> bool:
    shown = _graphics(domain)
    return bool(shown) and shown[0].type == "spice" and not any(
        g.type == "spice" for g in shown[1:])


def _prune_spice_companions(domain: Domain) -> None:
    """What leaving SPICE removes on purpose (config_edits.set_graphics says why)."""
    dev = domain.devices
    if dev is None:
        return
    for child in list(dev.element):
        spice_channel = child.tag in ("channel", "smartcard") and child.get("type") in (
            "spicevmc", "spiceport")
        if spice_channel or (child.tag == "redirdev" and child.get("type") == "spicevmc"):
            remove_element(child)


def _graphics_paths(domain: Domain) -> Patterns:
    first = _graphics(domain)[0]
    paths = (f"/domain/devices/graphics[{_index(first)}]",)
    if _leaves_spice(domain):
        paths += ("/domain/devices/audio/@type",)
    return paths


def _other_display(domain: Domain) -> str:
    return "vnc" if _graphics(domain)[0].type == "spice" else "spice"


# ---- the cases ---------------------------------------------------------------------------

def _nic_paths(domain: Domain, *tails: str) -> Patterns:
    nic = _nics(domain)[0]
    return tuple(f"/domain/devices/interface[{_index(nic)}]{tail}" for tail in tails)


def _disk_paths(domain: Domain, *tails: str) -> Patterns:
    disk = _disks(domain)[0]
    return tuple(f"/domain/devices/disk[{_index(disk)}]{tail}" for tail in tails)


def _other_bus(domain: Domain) -> str:
    return "sata" if _disks(domain)[0].target_bus == "virtio" else "virtio"


def _flip_boot(domain: Domain) -> None:
    from virtstudio.xml.domain import boot_order
    order = list(boot_order(domain)) or ["hd"]
    kinds = ["cdrom", "hd"] if order[0] != "cdrom" else ["hd", "cdrom"]
    config_edits.set_boot_order(domain, kinds)


CASES: tuple[EditCase, ...] = (
    EditCase("vcpus", "vcpus-up", lambda d: True,
             lambda d: config_edits.set_vcpus(d, _vcpus_now(d) + 1),
             lambda d: _VCPU_PATHS),
    EditCase("vcpus", "vcpus-down", lambda d: _vcpus_now(d) > 1,
             lambda d: config_edits.set_vcpus(d, _vcpus_now(d) - 1),
             lambda d: _VCPU_PATHS),
    EditCase("memory", "memory-maximum-up", lambda d: d.memory_kib > 0,
             lambda d: config_edits.set_memory(d, d.current_memory_kib // 1024,
                                               d.memory_kib // 1024 + 512),
             lambda d: ("/domain/memory",)),
    EditCase("memory", "memory-current-down", lambda d: d.current_memory_kib >= 2 * 1024 * 64,
             lambda d: config_edits.set_memory(d, d.current_memory_kib // 2048,
                                               d.memory_kib // 1024),
             lambda d: ("/domain/currentMemory",)),
    EditCase("boot", "boot-order", lambda d: bool(d.devices is not None),
             _flip_boot, lambda d: ("/domain/os/boot", "/domain/devices/*/boot")),
    EditCase("graphics", "graphics-kind", lambda d: bool(_graphics(d))
             and _graphics(d)[0].type in ("vnc", "spice"),
             lambda d: config_edits.set_graphics(d, _other_display(d)),
             _graphics_paths,
             prune=lambda d: _prune_spice_companions(d) if _leaves_spice(d) else None),
    EditCase("password", "display-password", lambda d: any(
        g.type in ("vnc", "spice") for g in _graphics(d)),
             lambda d: config_edits.set_display_password(d, "vs-pass1"),
             lambda d: ("/domain/devices/graphics/@passwd",)),
    EditCase("video", "video-model", lambda d: bool(_videos(d))
             and _primary_video(d).model in ("vga", "cirrus", "qxl", "virtio", "bochs"),
             lambda d: config_edits.set_video(
                 d, "vga" if _primary_video(d).model != "vga" else "virtio"),
             lambda d: (f"/domain/devices/video[{_index(_primary_video(d))}]/model",)),
    EditCase("disks", "disk-bus", lambda d: bool(_disks(d))
             and _disks(d)[0].target_bus in ("virtio", "sata", "scsi", "ide"),
             lambda d: config_edits.change_disk(d, _disks(d)[0].target_dev, _other_bus(d), None),
             lambda d: _disk_paths(d, "/target", "/address")),
    EditCase("disks", "disk-cache", lambda d: bool(_disks(d)) and bool(_disks(d)[0].target_dev),
             lambda d: config_edits.change_disk(
                 d, _disks(d)[0].target_dev, None,
                 "writeback" if _disks(d)[0].cache != "writeback" else "none"),
             lambda d: _disk_paths(d, "/driver")),
    EditCase("nics", "nic-source", lambda d: bool(_nics(d)),
             lambda d: config_edits.change_nic(d, _nics(d)[0].mac, "bridge", "vstest-br0",
                                               None, ""),
             lambda d: _nic_paths(d, "/@type", "/source")),
    EditCase("nics", "nic-model", lambda d: bool(_nics(d)),
             lambda d: config_edits.change_nic(
                 d, _nics(d)[0].mac, _nics(d)[0].type, _nics(d)[0].source,
                 "e1000" if _nics(d)[0].model != "e1000" else "virtio", ""),
             lambda d: _nic_paths(d, "/model")),
)


def applicable(domain: Domain) -> list[EditCase]:
    out = []
    for case in CASES:
        try:
            if case.applies(domain):
                out.append(case)
        except VirtStudioError:
            continue
    return out
