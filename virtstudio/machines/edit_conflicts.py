"""Settings of a device that libvirt refuses to keep after a given edit, in plain words.

An edit never drops what the user set elsewhere to make libvirt take the result:
when a disk carries a setting only its current bus understands, moving it is
declined with the setting's name, and the user decides (XML tab) what to give up.
Each rule here mirrors a refusal of libvirt 9.0's QEMU driver, seen in the XML
corpus test (tests/xml/corpus_table.py); none refuses what libvirt accepts.
"""

from __future__ import annotations

from lxml import etree

from virtstudio.xml import Disk, Domain, Interface

# Driver options libvirt takes on virtio disks only.
_VIRTIO_DRIVER = ("event_idx", "ioeventfd", "queues", "queue_size", "iommu", "ats", "packed")
_VIRTIO_MODELS = ("virtio", "virtio-transitional", "virtio-non-transitional")
_PCI_BUSES = ("virtio",)
_ROTATION_BUSES = ("scsi", "ide", "sata")


def _child(node: Disk | Interface, tag: str) -> etree._Element | None:
    return node.element.find(tag)


def disk_bus_conflicts(disk: Disk, bus: str) -> list[str]:
    """What on ``disk`` libvirt refuses once it sits on ``bus``."""
    found: list[str] = []
    if disk.type == "vhostuser" and bus != "virtio":
        found.append("it is a vhost-user disk, which runs on virtio only")
    driver = _child(disk, "driver")
    if bus != "virtio" and driver is not None:
        found += [f"its driver option {name}={driver.get(name)!r} is for virtio disks only"
                  for name in _VIRTIO_DRIVER if driver.get(name) is not None]
    model = disk.element.get("model")
    if bus != "virtio" and model in _VIRTIO_MODELS:
        found.append(f"its model {model!r} is for virtio disks only")
    target = _child(disk, "target")
    if (target is not None and target.get("rotation_rate") is not None
            and bus not in _ROTATION_BUSES):
        found.append("its rotation rate is known to SCSI, IDE and SATA disks only")
    if bus != "scsi" and (_child(disk, "vendor") is not None
                          or _child(disk, "product") is not None):
        found.append("its vendor and product are known to SCSI disks only")
    if bus not in _PCI_BUSES and _child(disk, "acpi") is not None:
        found.append("its ACPI index is for PCI devices only")
    if bus == "sata" and disk.readonly and disk.device in (None, "disk"):
        found.append("it is read-only, which SATA disks cannot be")
    transient = _child(disk, "transient")
    if (bus not in ("virtio", "scsi") and transient is not None
            and transient.get("shareBacking") == "yes"):
        found.append("it shares its backing image while transient, which only virtio and "
                     "SCSI disks can")
    return found


def disk_cache_conflicts(disk: Disk, cache: str) -> list[str]:
    """What on ``disk`` libvirt refuses with cache mode ``cache`` ("default": none set)."""
    found: list[str] = []
    if disk.type == "vhostuser" and cache != "default":
        found.append("it is a vhost-user disk, which has no cache mode")
    if disk.io == "native" and cache not in ("default", "none", "directsync"):
        found.append("it uses native I/O, which works only with cache none or directsync")
    return found


def nic_plug_conflicts(nic: Interface, kind: str) -> list[str]:
    """What on ``nic`` libvirt refuses once it plugs into a ``kind`` source."""
    found: list[str] = []
    inbound = nic.element.find("bandwidth/inbound")
    if kind != "network" and inbound is not None and inbound.get("floor") is not None:
        found.append("its guaranteed bandwidth (floor) works on virtual networks only")
    if nic.type == "ethernet" and kind != "ethernet":
        target = nic.element.find("target")
        if target is not None and target.get("managed") == "no":
            found.append("it uses a tap device made outside libvirt, which only ethernet "
                         "cards can")
        if any(nic.element.find(p) is not None for p in ("source/ip", "source/route")):
            found.append("it sets host-side addresses or routes, which only ethernet cards "
                         "can")
    return found


def nic_model_conflicts(nic: Interface, model: str) -> list[str]:
    """What on ``nic`` libvirt refuses with model ``model``."""
    if model != "virtio" and nic.element.find("teaming") is not None:
        return ["it is part of a failover team, which needs a virtio card"]
    return []


def _ids(text: str | None) -> list[int]:
    """The numbers of a libvirt CPU list such as ``0-3,^2,6``."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part or part.startswith("^"):
            continue
        low, _, high = part.partition("-")
        try:
            out.update(range(int(low), int(high or low) + 1))
        except ValueError:
            continue
    return sorted(out)


def highest_named_vcpu(domain: Domain) -> int:
    """The highest vCPU number that NUMA cells or CPU tuning refer to; -1 for none."""
    root = domain.element
    found = [-1]
    for cell in root.iterfind("cpu/numa/cell"):
        found += _ids(cell.get("cpus"))
    for pin in root.iterfind("cputune/vcpupin"):
        found += _ids(pin.get("vcpu"))
    for sched in root.iterfind("cputune/vcpusched"):
        found += _ids(sched.get("vcpus"))
    for vcpu in root.iterfind("vcpus/vcpu"):
        found += _ids(vcpu.get("id"))
    return max(found)
