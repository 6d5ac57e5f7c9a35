"""``<interface>``: network cards."""

from __future__ import annotations

from virtstudio.xml.base import Attr, Child, Node
from virtstudio.xml.devices.common import Device

# The source attributes that name what a card is plugged into, by interface type.
SOURCE_ATTRS = {"network": "network", "bridge": "bridge", "direct": "dev", "ethernet": "",
                "user": "", "vhostuser": "path", "udp": "address", "mcast": "address"}
# What a source carries only for one kind of connection (live portid, the bridge a
# network resolved to, a macvtap mode): dropped when the card is plugged elsewhere.
_CONNECTION_ATTRS = ("network", "bridge", "dev", "portgroup", "portid", "mode")


class VirtualPort(Node):
    TAG = "virtualport"
    type = Attr("type")


class Interface(Device):
    TAG = "interface"
    ORDER = ("mac", "source", "vlan", "virtualport", "ip", "route", "script", "downscript",
             "backenddomain", "target", "guest", "model", "driver", "backend", "filterref",
             "tune", "teaming", "link", "mtu", "bandwidth", "coalesce", "port",
             *Device.COMMON_TAIL)
    type = Attr("type")
    trust_guest_rx_filters = Attr("trustGuestRxFilters")
    mac = Attr("address", child="mac")
    source_network = Attr("network", child="source")
    source_portgroup = Attr("portgroup", child="source")
    source_bridge = Attr("bridge", child="source")
    source_dev = Attr("dev", child="source")
    source_mode = Attr("mode", child="source")
    target_dev = Attr("dev", child="target")
    model = Attr("type", child="model")
    driver_name = Attr("name", child="driver")
    driver_queues = Attr("queues", int, child="driver")
    link_state = Attr("state", child="link")
    mtu = Attr("size", int, child="mtu")
    virtualport = Child("virtualport", VirtualPort)

    @property
    def source(self) -> str:
        """The network, bridge or host device the card is plugged into."""
        return self.source_network or self.source_bridge or self.source_dev or ""

    def plug(self, kind: str, name: str) -> None:
        """Plug the card into network or bridge ``name``: only its type and source change."""
        if kind not in ("network", "bridge", "direct"):
            raise ValueError(f"cannot plug a card into a {kind}")
        source = self.path_element("source", create=True)
        assert source is not None
        keep = {SOURCE_ATTRS[kind]}
        if self.type == kind == "direct":
            keep.add("mode")
        for attr in _CONNECTION_ATTRS:
            if attr not in keep:
                source.attrib.pop(attr, None)
        self.type = kind
        source.set(SOURCE_ATTRS[kind], name)
