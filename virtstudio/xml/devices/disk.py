"""``<disk>``: images, block devices, volumes, network disks, CD-ROMs, floppies."""

from __future__ import annotations

from virtstudio.xml.base import Attr, Flag, Text
from virtstudio.xml.devices.common import Device


class Disk(Device):
    TAG = "disk"
    ORDER = ("driver", "auth", "source", "backingStore", "backenddomain", "geometry",
             "blockio", "mirror", "target", "iotune", "readonly", "shareable", "transient",
             "serial", "wwn", "vendor", "product", "encryption", *Device.COMMON_TAIL)
    type = Attr("type")
    device = Attr("device", default="disk")
    snapshot = Attr("snapshot")
    driver_name = Attr("name", child="driver")
    driver_type = Attr("type", child="driver")
    cache = Attr("cache", child="driver")
    io = Attr("io", child="driver")
    discard = Attr("discard", child="driver")
    source_file = Attr("file", child="source")
    source_dev = Attr("dev", child="source")
    source_dir = Attr("dir", child="source")
    source_pool = Attr("pool", child="source")
    source_volume = Attr("volume", child="source")
    source_protocol = Attr("protocol", child="source")
    source_name = Attr("name", child="source")
    target_dev = Attr("dev", child="target")
    target_bus = Attr("bus", child="target")
    readonly = Flag("readonly")
    shareable = Flag("shareable")
    serial = Text("serial")

    @property
    def source_path(self) -> str:
        """The file, block device, directory, pool/volume or network name: "" for none."""
        if self.source_pool:
            return f"{self.source_pool}/{self.source_volume or ''}"
        return self.source_file or self.source_dev or self.source_dir or self.source_name or ""
