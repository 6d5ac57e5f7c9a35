"""Displays: ``<graphics>`` and its ``<listen>``, ``<video>``, ``<sound>``, ``<audio>``."""

from __future__ import annotations

from virtstudio.xml.base import YESNO, Attr, Children, Node
from virtstudio.xml.devices.common import Device


class Listen(Node):
    TAG = "listen"
    type = Attr("type")
    address = Attr("address")
    network = Attr("network")
    socket = Attr("socket")


class Graphics(Device):
    TAG = "graphics"
    ORDER = ("listen", "channel", "image", "jpeg", "zlib", "playback", "streaming",
             "clipboard", "mouse", "filetransfer", "gl", "audio")
    type = Attr("type")
    port = Attr("port", int)
    tls_port = Attr("tlsPort", int)
    autoport = Attr("autoport", YESNO)
    websocket = Attr("websocket", int)
    listen = Attr("listen")
    socket = Attr("socket")
    keymap = Attr("keymap")
    passwd = Attr("passwd")
    passwd_valid_to = Attr("passwdValidTo")
    connected = Attr("connected")
    listens = Children("listen", Listen)
    gl_enable = Attr("enable", YESNO, child="gl")
    audio_id = Attr("id", int, child="audio")

    def set_password(self, password: str) -> None:
        """Set (or with "" remove) the display password; an expiry goes with a removal."""
        if password:
            self.passwd = password
        else:
            self.passwd = None
            self.passwd_valid_to = None


class Video(Device):
    TAG = "video"
    ORDER = ("model", "driver", *Device.COMMON_TAIL)
    model = Attr("type", child="model")
    vram = Attr("vram", int, child="model")
    heads = Attr("heads", int, child="model")
    primary = Attr("primary", YESNO, child="model")
    accel3d = Attr("accel3d", YESNO, child="model/acceleration")
    driver_name = Attr("name", child="driver")


class Sound(Device):
    TAG = "sound"
    ORDER = ("codec", "audio", *Device.COMMON_TAIL)
    model = Attr("model")
    audio_id = Attr("id", int, child="audio")


class Audio(Node):
    """An audio backend (``<audio id='1' type='spice'/>``)."""

    TAG = "audio"
    id = Attr("id", int)
    type = Attr("type")
