"""Character devices: ``<serial>``, ``<console>``, ``<channel>``, ``<parallel>``."""

from __future__ import annotations

from virtstudio.xml.base import Attr
from virtstudio.xml.devices.common import Device


class CharDevice(Device):
    ORDER = ("source", "protocol", "log", "target", *Device.COMMON_TAIL)
    type = Attr("type")
    tty = Attr("tty")
    source_path = Attr("path", child="source")
    source_mode = Attr("mode", child="source")
    source_host = Attr("host", child="source")
    source_service = Attr("service", child="source")
    target_type = Attr("type", child="target")
    target_port = Attr("port", int, child="target")
    target_name = Attr("name", child="target")
    target_state = Attr("state", child="target")
    target_model = Attr("name", child="target/model")


class Serial(CharDevice):
    TAG = "serial"


class Console(CharDevice):
    TAG = "console"


class Channel(CharDevice):
    TAG = "channel"


class Parallel(CharDevice):
    TAG = "parallel"
