"""``<devices>`` and one class per kind of device."""

from __future__ import annotations

from virtstudio.xml.base import Children, Node, Text, insert_child
from virtstudio.xml.devices.chardev import Channel, CharDevice, Console, Parallel, Serial
from virtstudio.xml.devices.common import Address, Device
from virtstudio.xml.devices.disk import Disk
from virtstudio.xml.devices.display import Audio, Graphics, Listen, Sound, Video
from virtstudio.xml.devices.hostdev import Hostdev, Redirdev
from virtstudio.xml.devices.interface import Interface, VirtualPort
from virtstudio.xml.devices.misc import (
    Controller,
    Filesystem,
    Input,
    Memballoon,
    Rng,
    Tpm,
    Watchdog,
)


class Devices(Node):
    TAG = "devices"
    # libvirt's order of device kinds (virDomainDefFormat).
    ORDER = ("emulator", "disk", "controller", "lease", "filesystem", "interface",
             "smartcard", "serial", "parallel", "console", "channel", "input", "tpm",
             "graphics", "sound", "audio", "video", "hostdev", "redirdev", "redirfilter",
             "hub", "watchdog", "memballoon", "rng", "shmem", "memory", "iommu", "vsock",
             "crypto", "panic")
    emulator = Text("emulator")
    disks = Children("disk", Disk)
    controllers = Children("controller", Controller)
    filesystems = Children("filesystem", Filesystem)
    interfaces = Children("interface", Interface)
    serials = Children("serial", Serial)
    parallels = Children("parallel", Parallel)
    consoles = Children("console", Console)
    channels = Children("channel", Channel)
    inputs = Children("input", Input)
    tpms = Children("tpm", Tpm)
    graphics = Children("graphics", Graphics)
    sounds = Children("sound", Sound)
    audios = Children("audio", Audio)
    videos = Children("video", Video)
    hostdevs = Children("hostdev", Hostdev)
    redirdevs = Children("redirdev", Redirdev)
    watchdogs = Children("watchdog", Watchdog)
    memballoons = Children("memballoon", Memballoon)
    rngs = Children("rng", Rng)

    def add(self, device: Node) -> Node:
        """Put ``device`` after the last of its kind, in libvirt's order of kinds."""
        insert_child(self.element, device.element, self.ORDER)
        return device


__all__ = ["Address", "Audio", "Channel", "CharDevice", "Console", "Controller", "Device",
           "Devices", "Disk", "Filesystem", "Graphics", "Hostdev", "Input", "Interface",
           "Listen", "Memballoon", "Parallel", "Redirdev", "Rng", "Serial", "Sound", "Tpm",
           "Video", "VirtualPort", "Watchdog"]
