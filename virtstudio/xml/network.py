"""The virtual network document: ``<network>``."""

from __future__ import annotations

from virtstudio.xml.base import YESNO, Attr, Children, Node, Text


class DhcpRange(Node):
    TAG = "range"
    start = Attr("start")
    end = Attr("end")


class DhcpHost(Node):
    TAG = "host"
    mac = Attr("mac")
    name = Attr("name")
    ip = Attr("ip")


class Ip(Node):
    TAG = "ip"
    ORDER = ("tftp", "dhcp")
    family = Attr("family")
    address = Attr("address")
    netmask = Attr("netmask")
    prefix = Attr("prefix", int)
    ranges = Children("dhcp/range", DhcpRange)
    hosts = Children("dhcp/host", DhcpHost)


class Network(Node):
    TAG = "network"
    ORDER = ("name", "uuid", "title", "description", "metadata", "forward", "bridge", "mtu",
             "mac", "domain", "dns", "ip", "route", "portgroup", "virtualport", "vlan",
             "bandwidth")
    ipv6 = Attr("ipv6", YESNO)
    name = Text("name")
    uuid = Text("uuid")
    title = Text("title")
    description = Text("description")
    forward_mode = Attr("mode", child="forward")
    forward_dev = Attr("dev", child="forward")
    bridge_name = Attr("name", child="bridge")
    bridge_stp = Attr("stp", child="bridge")
    bridge_delay = Attr("delay", int, child="bridge")
    mtu = Attr("size", int, child="mtu")
    mac = Attr("address", child="mac")
    domain_name = Attr("name", child="domain")
    ips = Children("ip", Ip)
