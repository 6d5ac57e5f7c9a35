"""Small devices: TPM, RNG, watchdog, memory balloon, input, filesystem, controller."""

from __future__ import annotations

from virtstudio.xml.base import Attr, Flag, Text
from virtstudio.xml.devices.common import Device


class Tpm(Device):
    TAG = "tpm"
    ORDER = ("backend", *Device.COMMON_TAIL)
    model = Attr("model")
    backend_type = Attr("type", child="backend")
    backend_version = Attr("version", child="backend")
    device_path = Attr("path", child="backend/device")


class Rng(Device):
    TAG = "rng"
    ORDER = ("driver", "rate", "backend", *Device.COMMON_TAIL)
    model = Attr("model")
    backend_model = Attr("model", child="backend")
    backend = Text("backend")
    rate_bytes = Attr("bytes", int, child="rate")
    rate_period = Attr("period", int, child="rate")


class Watchdog(Device):
    TAG = "watchdog"
    model = Attr("model")
    action = Attr("action")


class Memballoon(Device):
    TAG = "memballoon"
    ORDER = ("stats", "driver", *Device.COMMON_TAIL)
    model = Attr("model")
    autodeflate = Attr("autodeflate")
    free_page_reporting = Attr("freePageReporting")
    stats_period = Attr("period", int, child="stats")


class Input(Device):
    TAG = "input"
    ORDER = ("source", "driver", *Device.COMMON_TAIL)
    type = Attr("type")
    bus = Attr("bus")


class Filesystem(Device):
    TAG = "filesystem"
    ORDER = ("driver", "binary", "source", "target", "idmap", "readonly", "space_hard_limit",
             "space_soft_limit", *Device.COMMON_TAIL)
    type = Attr("type", default="mount")
    accessmode = Attr("accessmode")
    driver_type = Attr("type", child="driver")
    source_dir = Attr("dir", child="source")
    source_file = Attr("file", child="source")
    source_name = Attr("name", child="source")
    target_dir = Attr("dir", child="target")
    readonly = Flag("readonly")


class Controller(Device):
    TAG = "controller"
    ORDER = ("model", "driver", "target", *Device.COMMON_TAIL)
    type = Attr("type")
    index = Attr("index", int)
    model = Attr("model")
    ports = Attr("ports", int)
