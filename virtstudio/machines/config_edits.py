"""Each hardware change written into a domain's configuration, touching only its target.

These work on a parsed ``Domain`` (``virtstudio.xml``) and know nothing of
libvirt connections: ``domain_edit`` reads the configuration (with its secrets),
calls one of these and defines the result.
"""

from __future__ import annotations

from virtstudio.core.errors import VirtStudioError
from virtstudio.machines.edit_conflicts import (
    disk_bus_conflicts,
    disk_cache_conflicts,
    highest_named_vcpu,
    nic_model_conflicts,
    nic_plug_conflicts,
)
from virtstudio.xml import (
    Device,
    Devices,
    Disk,
    Domain,
    Graphics,
    Interface,
    Listen,
    Topology,
    Video,
    make,
)
from virtstudio.xml.base import remove_element
from virtstudio.xml.domain import BOOT_DEVICES as BOOT_DEVICES
from virtstudio.xml.domain import boot_kind, bootable_devices

_BUS_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd",
               "fdc": "fd", "xen": "xvd", "sd": "mmcblk"}

# Attributes only one kind of display understands: libvirt refuses them on the other.
_DISPLAY_ONLY = {
    "vnc": ("websocket", "websocketGenerated", "sharePolicy", "powerControl", "socket"),
    "spice": ("tlsPort", "defaultMode"),
}
_SPICE_CHILDREN = ("channel", "image", "jpeg", "zlib", "playback", "streaming", "clipboard",
                   "mouse", "filetransfer", "gl")
# Video model attributes that belong to QXL's memory layout.
_QXL_ONLY = ("ram", "vram", "vram64", "vgamem")


def next_target(used: list[str] | tuple[str, ...], bus: str) -> str:
    prefix = _BUS_PREFIX.get(bus, "sd")
    for i in range(26):
        name = f"{prefix}{chr(ord('a') + i)}"
        if name not in used:
            return name
    raise VirtStudioError(f"No free {bus} disk name left.")


def devices(domain: Domain) -> Devices:
    """The domain's devices, made when it has none (for adding)."""
    return domain.ensure_devices()


def _present(domain: Domain) -> Devices:
    """The domain's devices for looking things up: an empty list never gets written."""
    return domain.devices or Devices()


def find_disk(domain: Domain, target: str) -> Disk:
    for disk in _present(domain).disks:
        if disk.target_dev == target:
            return disk
    raise VirtStudioError(f"The machine has no disk {target}.")


def find_nic(domain: Domain, mac: str) -> Interface:
    for nic in _present(domain).interfaces:
        if (nic.mac or "").lower() == mac.lower():
            return nic
    raise VirtStudioError(f"The machine has no network card {mac}.")


# ---- vCPUs and memory ------------------------------------------------------------------


def set_vcpus(domain: Domain, count: int) -> None:
    """Run with ``count`` vCPUs.

    Below the maximum of a machine that has one set apart (``current``), only the
    current count changes, so vCPUs stay hot-pluggable.  A new maximum brings the
    CPU topology along: libvirt refuses one that does not multiply to it.
    """
    vcpu = domain.ensure("vcpu")
    assert vcpu is not None
    maximum = vcpu.count or 0  # type: ignore[attr-defined]
    if vcpu.current is not None and count <= maximum:  # type: ignore[attr-defined]
        vcpu.current = None if count == maximum else count  # type: ignore[attr-defined]
        return
    if count < maximum and count <= highest_named_vcpu(domain):
        # NUMA cells or CPU tuning name vCPUs up to the maximum: those keep existing
        # (libvirt refuses a cell naming a vCPU the machine lacks); fewer run.
        vcpu.current = count  # type: ignore[attr-defined]
        return
    vcpu.count = count  # type: ignore[attr-defined]
    vcpu.current = None  # type: ignore[attr-defined]
    cpu = domain.cpu
    if cpu is not None and cpu.topology is not None:
        fit_topology(cpu.topology, count)


def fit_topology(topology: Topology, count: int) -> None:
    """Make ``topology`` multiply to ``count`` vCPUs, changing as little as it can."""
    if topology.total == count:
        return
    inner = (topology.dies or 1) * (topology.clusters or 1) * (topology.threads or 1)
    sockets = topology.sockets or 1
    if count % (sockets * inner) == 0:
        topology.cores = count // (sockets * inner)
        return
    if count % inner == 0:
        topology.sockets = 1
        topology.cores = count // inner
        return
    topology.sockets, topology.cores, topology.threads = 1, count, 1
    if topology.dies is not None:
        topology.dies = 1
    if topology.clusters is not None:
        topology.clusters = 1


def set_memory(domain: Domain, current_mib: int, maximum_mib: int) -> bool:
    """Write the memory sizes that differ from what the fields showed (whole MiB).

    A size the user left alone keeps its exact KiB and its other attributes
    (dumpCore); returns whether the current size changed.
    """
    old_maximum, old_current = domain.memory_kib, domain.current_memory_kib
    memory = domain.memory
    if memory is None or old_maximum // 1024 != maximum_mib:
        memory = memory or domain.ensure("memory")
        memory.kib = maximum_mib * 1024  # type: ignore[union-attr]
    changed = old_current // 1024 != current_mib
    current_kib = min(current_mib * 1024 if changed else old_current, domain.memory_kib)
    current = domain.current_memory
    if current is None and current_kib == domain.memory_kib:
        return changed  # libvirt's default: as much as the maximum
    if current is None or current.kib != current_kib:
        current = current or domain.ensure("current_memory")
        current.kib = current_kib  # type: ignore[union-attr]
    return changed


# ---- boot ------------------------------------------------------------------------------


def set_boot_order(domain: Domain, kinds: tuple[str, ...] | list[str]) -> None:
    """Boot from ``kinds`` in order.

    libvirt refuses ``<os><boot>`` beside per-device ``<boot order>``, so a
    machine that orders its devices keeps doing so: the first device of each
    kind takes the next order, the orders of the other kinds' devices go.
    """
    per_device = [d for d in bootable_devices(domain) if d.boot_order is not None]
    if not per_device:
        os = domain.ensure("os")
        os.boot_devices = list(kinds)  # type: ignore[attr-defined]
        return
    order = 0
    chosen: list[Device] = []
    for kind in kinds:
        present = [d for d in per_device if boot_kind(d) == kind] or \
            [d for d in bootable_devices(domain) if boot_kind(d) == kind][:1]
        for device in sorted(present, key=lambda d: d.boot_order or 0):
            order += 1
            device.boot_order = order
            chosen.append(device)
    for device in sorted(per_device, key=lambda d: d.boot_order or 0):
        if device in chosen:
            continue
        boot = device.element.find("boot")
        if boot is not None and set(boot.attrib) - {"order"}:
            # Its <boot> says more (s390's loadparm), which libvirt takes only with an
            # order: the device stays bootable, after the chosen ones.
            order += 1
            device.boot_order = order
        else:
            device.boot_order = None


# ---- displays --------------------------------------------------------------------------


def set_graphics(domain: Domain, kind: str) -> None:
    """Make the first display a ``kind`` one (none: no displays).

    The display is changed in place: its listen address, port, keymap and
    password stay; only what the old kind alone understands goes.  Leaving
    SPICE takes its channels, redirected USB and audio backend along, which QEMU
    refuses without a SPICE display.
    """
    dev = devices(domain)
    shown = list(dev.graphics)
    if kind == "none":
        for gfx in shown:
            gfx.remove()
    elif not shown:
        gfx = make(Graphics, type=kind, autoport=True)
        listen = make(Listen, type="address", address="127.0.0.1")
        gfx.listens.add(listen)
        dev.add(gfx)
    elif shown[0].type != kind:
        gfx = shown[0]
        old = gfx.type or ""
        for attr in _DISPLAY_ONLY.get(old, ()):
            gfx.element.attrib.pop(attr, None)
        if kind == "vnc" and gfx.element.get("connected") not in (None, "keep"):
            # SPICE may drop or refuse clients on a new ticket; VNC only keeps them.
            gfx.element.attrib.pop("connected")
        if old == "spice":
            for child in list(gfx.element):
                if child.tag in _SPICE_CHILDREN:
                    remove_element(child)
        gfx.type = kind
    if not any(g.type == "spice" for g in dev.graphics):
        _drop_spice_companions(dev)


def _drop_spice_companions(dev: Devices) -> None:
    for channel in list(dev.channels):
        if channel.type in ("spicevmc", "spiceport"):
            channel.remove()
    for redir in list(dev.redirdevs):
        if redir.type == "spicevmc":
            redir.remove()
    for audio in dev.audios:
        if audio.type == "spice":
            audio.type = "none"  # sound cards refer to it by id
    for child in list(dev.element):
        if child.tag == "smartcard" and child.get("type") == "spicevmc":
            remove_element(child)


def set_display_password(domain: Domain, password: str) -> None:
    for gfx in _present(domain).graphics:
        if gfx.type in ("vnc", "spice", "rdp"):
            gfx.set_password(password)


def set_video(domain: Domain, model: str) -> None:
    """Make the primary video card a ``model`` one; its address and the others stay."""
    dev = devices(domain)
    videos = list(dev.videos)
    if model == "none":
        for video in videos:
            video.remove()
        dev.add(make(Video, model="none"))
        return
    if not videos:
        dev.add(make(Video, model=model))
        return
    video = next((v for v in videos if v.primary), videos[0])
    if video.model == model:
        return
    model_el = video.path_element("model", create=True)
    assert model_el is not None
    if video.model == "qxl" or model == "qxl":
        for attr in _QXL_ONLY:
            model_el.attrib.pop(attr, None)
    if model != "virtio":
        video.accel3d = None  # libvirt accelerates only virtio
    if video.model == "none":
        video.address = None
    video.model = model


# ---- disks and network cards -----------------------------------------------------------


def change_disk(domain: Domain, target: str, bus: str | None, cache: str | None) -> None:
    """Move disk ``target`` to ``bus`` and/or give it ``cache``; None keeps either."""
    disk = find_disk(domain, target)
    moving = bus is not None and disk.target_bus != bus
    caching = cache is not None and (disk.cache or "default") != cache
    conflicts = ((disk_bus_conflicts(disk, bus) if moving and bus else [])
                 + (disk_cache_conflicts(disk, cache) if caching and cache else []))
    if conflicts:
        what = " and ".join(w for w, on in (
            (f"move to {bus}", moving), (f"use cache mode {cache}", caching)) if on)
        raise VirtStudioError(f"{target} cannot {what}: {'; '.join(conflicts)}. Change that "
                              "in the XML tab first if you mean to; nothing was changed.")
    if bus is not None and disk.target_bus != bus:
        used = [d.target_dev or "" for d in _present(domain).disks if d != disk]
        disk.target_bus = bus
        disk.target_dev = next_target(used, bus)
        disk.address = None  # the old bus's address means nothing on the new one
    if cache is not None and (disk.cache or "default") != cache:
        if disk.driver_name is None:
            disk.driver_name = "qemu"
        disk.cache = None if cache == "default" else cache


def new_disk(target: str, bus: str, path: str, fmt: str, cache: str = "default") -> Disk:
    return make(Disk, type="file", device="disk", driver_name="qemu", driver_type=fmt,
                cache=None if cache == "default" else cache, source_file=path,
                target_dev=target, target_bus=bus)


def new_nic(kind: str, source: str, model: str = "virtio", mac: str = "") -> Interface:
    nic = make(Interface, type=kind, mac=mac.lower() or None)
    nic.plug(kind, source)
    nic.model = model
    return nic


def change_nic(domain: Domain, old_mac: str, kind: str, source: str, model: str | None,
               mac: str) -> None:
    """Re-plug, re-model or re-address the card ``old_mac``; everything else stays."""
    nic = find_nic(domain, old_mac)
    if nic.type not in ("network", "bridge", "direct", "user", "ethernet"):
        raise VirtStudioError(f"{old_mac} is a {nic.type} card: it cannot be moved to a "
                              f"{kind}.")
    conflicts = ((nic_plug_conflicts(nic, kind) if kind != nic.type else [])
                 + (nic_model_conflicts(nic, model) if model and nic.model != model else []))
    if conflicts:
        raise VirtStudioError(f"The card {old_mac} cannot change so: {'; '.join(conflicts)}. "
                              "Nothing was changed.")
    if (nic.type, nic.source) != (kind, source):
        nic.plug(kind, source)
    if model and nic.model != model:
        nic.model = model
    if mac and mac.lower() != (nic.mac or "").lower():
        nic.mac = mac.lower()
