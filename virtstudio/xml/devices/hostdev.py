"""``<hostdev>`` and ``<redirdev>``: host devices given to, or redirected into, a guest."""

from __future__ import annotations

from virtstudio.xml.base import YESNO, Attr, Child
from virtstudio.xml.devices.common import Address, Device


class Hostdev(Device):
    TAG = "hostdev"
    ORDER = ("driver", "source", "rom", *Device.COMMON_TAIL)
    mode = Attr("mode", default="subsystem")
    type = Attr("type")
    managed = Attr("managed", YESNO)
    vendor_id = Attr("id", child="source/vendor")
    product_id = Attr("id", child="source/product")
    source_address = Child("source/address", Address)
    driver_name = Attr("name", child="driver")


class Redirdev(Device):
    TAG = "redirdev"
    ORDER = ("source", "protocol", *Device.COMMON_TAIL)
    bus = Attr("bus")
    type = Attr("type")
