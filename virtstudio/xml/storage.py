"""Storage documents: ``<pool>`` and ``<volume>``."""

from __future__ import annotations

from virtstudio.xml.amount import Amount
from virtstudio.xml.base import Attr, Child, Children, Node, Text


class Permissions(Node):
    TAG = "permissions"
    ORDER = ("mode", "owner", "group", "label")
    mode = Text("mode")
    owner = Text("owner")
    group = Text("group")
    label = Text("label")


class PoolDevice(Node):
    TAG = "device"
    path = Attr("path")


class Pool(Node):
    TAG = "pool"
    ORDER = ("name", "uuid", "capacity", "allocation", "available", "features", "source",
             "target", "refresh")
    type = Attr("type")
    name = Text("name")
    uuid = Text("uuid")
    capacity = Child("capacity", Amount)
    allocation = Child("allocation", Amount)
    available = Child("available", Amount)
    source_devices = Children("source/device", PoolDevice)
    source_dir = Attr("path", child="source/dir")
    source_host = Attr("name", child="source/host")
    source_name = Text("source/name")
    source_format = Attr("type", child="source/format")
    target_path = Text("target/path")
    permissions = Child("target/permissions", Permissions)


class Volume(Node):
    TAG = "volume"
    ORDER = ("name", "key", "source", "capacity", "allocation", "physical", "target",
             "backingStore")
    type = Attr("type")
    name = Text("name")
    key = Text("key")
    capacity = Child("capacity", Amount)
    allocation = Child("allocation", Amount)
    physical = Child("physical", Amount)
    target_path = Text("target/path")
    format = Attr("type", child="target/format")
    permissions = Child("target/permissions", Permissions)
    backing_path = Text("backingStore/path")
    backing_format = Attr("type", child="backingStore/format")

    @property
    def capacity_bytes(self) -> int:
        capacity = self.capacity
        return (capacity.bytes or 0) if capacity is not None else 0

    @capacity_bytes.setter
    def capacity_bytes(self, count: int) -> None:
        amount = self.capacity or self.ensure("capacity")
        amount.bytes = count  # type: ignore[union-attr]
