"""A small built-in list of operating systems, each with device defaults that suit it.

When libosinfo's ``osinfo-query`` is installed, its operating systems are
offered too, mapped to the defaults of the closest built-in family.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OsVariant:
    id: str
    label: str
    family: str  # linux, windows, bsd, other
    memory_mib: int  # the default offered
    min_memory_mib: int  # below this the installer or kernel does not come up
    vcpus: int
    disk_gib: int
    disk_bus: str
    nic_model: str
    video: str
    machine: str  # preferred x86 machine type; other architectures use their own
    hyperv: bool = False  # Hyper-V enlightenments make Windows guests much faster

    @property
    def virtio(self) -> bool:
        return self.disk_bus == "virtio"


_LINUX = dict(family="linux", disk_bus="virtio", nic_model="virtio", video="virtio",
              machine="q35")
BUILTIN: tuple[OsVariant, ...] = (
    OsVariant("linux-generic", "Generic Linux (2018 or later)", memory_mib=2048,
              min_memory_mib=64, vcpus=2, disk_gib=20, **_LINUX),
    OsVariant("debian12", "Debian 12", memory_mib=2048, min_memory_mib=256, vcpus=2,
              disk_gib=20, **_LINUX),
    OsVariant("ubuntu24.04", "Ubuntu 24.04 LTS", memory_mib=4096, min_memory_mib=1024, vcpus=2,
              disk_gib=25, **_LINUX),
    OsVariant("fedora40", "Fedora 40", memory_mib=4096, min_memory_mib=1024, vcpus=2,
              disk_gib=25, **_LINUX),
    OsVariant("alpine3.20", "Alpine Linux 3.20", memory_mib=1024, min_memory_mib=128, vcpus=1,
              disk_gib=8, **_LINUX),
    OsVariant("win11", "Windows 11", "windows", memory_mib=4096, min_memory_mib=4096, vcpus=2,
              disk_gib=64, disk_bus="sata", nic_model="e1000e", video="qxl", machine="q35",
              hyperv=True),
    OsVariant("win10", "Windows 10", "windows", memory_mib=4096, min_memory_mib=2048, vcpus=2,
              disk_gib=64, disk_bus="sata", nic_model="e1000e", video="qxl", machine="q35",
              hyperv=True),
    OsVariant("freebsd14", "FreeBSD 14", "bsd", memory_mib=2048, min_memory_mib=256, vcpus=2,
              disk_gib=20, disk_bus="virtio", nic_model="virtio", video="vga", machine="q35"),
    OsVariant("generic", "Other or unknown (most compatible devices)", "other", memory_mib=1024,
              min_memory_mib=16, vcpus=1, disk_gib=16, disk_bus="sata", nic_model="e1000",
              video="vga", machine="pc"),
)
DEFAULT_VARIANT = BUILTIN[0]


def by_id(variant_id: str, variants: tuple[OsVariant, ...] = BUILTIN) -> OsVariant:
    return next((v for v in variants if v.id == variant_id), DEFAULT_VARIANT)


def _family_defaults(short_id: str) -> OsVariant:
    if short_id.startswith("win"):
        return by_id("win10")
    if short_id.startswith(("freebsd", "openbsd", "netbsd")):
        return by_id("freebsd14")
    if short_id.startswith(("msdos", "dos", "solaris", "os2")):
        return by_id("generic")
    return DEFAULT_VARIANT


def parse_osinfo_query(text: str) -> tuple[OsVariant, ...]:
    """Variants from ``osinfo-query os --fields=short-id,name`` output."""
    found = []
    for line in text.splitlines()[2:]:  # a header row and a rule come first
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2 or not parts[0]:
            continue
        base = _family_defaults(parts[0])
        found.append(OsVariant(parts[0], parts[1], base.family, base.memory_mib,
                               base.min_memory_mib, base.vcpus, base.disk_gib, base.disk_bus,
                               base.nic_model, base.video, base.machine, base.hyperv))
    return tuple(found)


def available_variants() -> tuple[OsVariant, ...]:
    """The built-in list, plus libosinfo's operating systems where osinfo-query exists."""
    tool = shutil.which("osinfo-query")
    if tool is None:
        return BUILTIN
    try:
        result = subprocess.run([tool, "os", "--fields=short-id,name"], capture_output=True,
                                text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("osinfo-query failed, using the built-in list: %s", exc)
        return BUILTIN
    known = {v.id for v in BUILTIN}
    extra = tuple(v for v in parse_osinfo_query(result.stdout) if v.id not in known)
    return BUILTIN + tuple(sorted(extra, key=lambda v: v.label.lower()))
