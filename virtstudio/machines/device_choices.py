"""The kinds the Edit tab offers for a machine: what its host says it takes.

Display, video card and disk bus lists follow the host's domain capabilities
for the machine's emulator, architecture, machine type and virtualization type
(``host_caps.read_device_kinds``), familiar kinds first.  Where the host does
not say (test driver, demo host, older libvirt) the usual lists stand.  Cache
modes and network card models are not in the capabilities: cache modes are
QEMU's own, and the card list is a sensible few.

A machine's current kind is always listed even where the host does not offer
it, so it is shown as it is and leaving it alone changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtstudio.machines.host_caps import DeviceKinds

# Today's lists, familiar kinds first: the order the editor keeps.
DISK_BUSES = ("virtio", "sata", "scsi", "usb", "ide")
DISK_CACHES = ("default", "none", "writeback", "writethrough", "directsync", "unsafe")
NIC_MODELS = ("virtio", "e1000e", "e1000", "rtl8139")
GRAPHICS = ("vnc", "spice", "none")
VIDEO_MODELS = ("vga", "virtio", "qxl", "bochs", "cirrus", "none")


def _ordered(offered: tuple[str, ...], familiar: tuple[str, ...]) -> tuple[str, ...]:
    """``offered``: familiar kinds first in their usual order, the rest as the host lists them."""
    first = [k for k in familiar if k in offered]
    return tuple(first + [k for k in offered if k not in first])


@dataclass(frozen=True)
class Choices:
    graphics: tuple[str, ...] = GRAPHICS
    video: tuple[str, ...] = VIDEO_MODELS
    disk_buses: tuple[str, ...] = DISK_BUSES  # may hold fdc: see ``buses_for``
    disk_caches: tuple[str, ...] = DISK_CACHES
    nic_models: tuple[str, ...] = NIC_MODELS
    from_host: bool = False  # False: the usual lists, the host did not say

    def buses_for(self, device: str) -> tuple[str, ...]:
        """The buses a disk of ``device`` (disk, cdrom, floppy, lun) may move to.

        libvirt puts floppies on the floppy controller only, and nothing else there.
        """
        if device == "floppy":
            return tuple(b for b in self.disk_buses if b == "fdc")
        return tuple(b for b in self.disk_buses if b != "fdc")


def choices(kinds: DeviceKinds | None) -> Choices:
    """The lists for a machine whose host says ``kinds`` (None: it could not say)."""
    if kinds is None:
        return Choices()
    # "none" removes the displays: no device kind, so never in the host's list.
    graphics = ((*_ordered(kinds.graphics, GRAPHICS), "none")
                if kinds.graphics is not None else GRAPHICS)
    video = _ordered(kinds.video, VIDEO_MODELS) if kinds.video is not None else VIDEO_MODELS
    buses = (_ordered(kinds.disk_buses, DISK_BUSES) if kinds.disk_buses is not None
             else DISK_BUSES)
    return Choices(graphics, video, buses, from_host=True)

