"""What every device has: an address, an alias, a per-device boot order."""

from __future__ import annotations

from virtstudio.xml.base import Attr, Child, Node


class Address(Node):
    TAG = "address"
    type = Attr("type")
    domain = Attr("domain")
    bus = Attr("bus")
    slot = Attr("slot")
    function = Attr("function")
    multifunction = Attr("multifunction")
    controller = Attr("controller")
    target = Attr("target")
    unit = Attr("unit")
    port = Attr("port")


class Device(Node):
    """A child of ``<devices>``.  ``ORDER`` ends with libvirt's common tail."""

    COMMON_TAIL = ("boot", "alias", "rom", "acpi", "address")
    alias = Attr("name", child="alias")
    address = Child("address", Address)
    boot_order = Attr("order", int, child="boot")
