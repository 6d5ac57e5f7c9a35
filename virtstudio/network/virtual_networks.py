"""libvirt virtual networks: NAT, routed, isolated, open and bridged, checked before defining.

A ``NetworkSpec`` is what the create/edit dialog fills in; ``check_spec`` says
in plain words what is wrong with it (the dialog calls it as the user types),
``network_xml`` turns it into libvirt's XML and ``spec_from_xml`` reads an
existing network back for editing.  Every change runs as a job.
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Network
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.network.host_links import validate_ifname

MODES = ("nat", "route", "isolated", "open", "bridge")
MODE_LABELS = {"nat": "NAT", "route": "Routed", "isolated": "Isolated", "open": "Open",
               "bridge": "Bridge to a host bridge"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class StaticHost:
    mac: str
    ip: str
    hostname: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    mode: str = "nat"
    ipv4: str = ""  # gateway address with prefix, e.g. 192.168.150.1/24
    dhcp: bool = True
    bridge: str = ""  # for "bridge": the existing host bridge; otherwise optional name
    autostart: bool = True
    dhcp_start: str = ""  # empty: the upper half of the subnet
    dhcp_end: str = ""
    ipv6: str = ""  # e.g. fd00:150::1/64
    dhcp6: bool = False
    hosts: tuple[StaticHost, ...] = field(default_factory=tuple)
    uuid: str = ""  # set when editing, so libvirt updates the same network


def _v4(spec: NetworkSpec) -> ipaddress.IPv4Interface | None:
    return ipaddress.IPv4Interface(spec.ipv4) if spec.ipv4 else None


def default_dhcp_range(gateway: str) -> tuple[str, str]:
    """The upper half of the subnet, leaving the lower half for static addresses."""
    iface = ipaddress.IPv4Interface(gateway)
    net = iface.network
    if not 8 <= net.prefixlen <= 30:
        raise ValueError(f"no DHCP range for a /{net.prefixlen}")
    # Arithmetic, not a list of hosts: a /8 holds 16 million of them.
    first, last = net.network_address + 1, net.broadcast_address - 1
    start = first + (int(last) - int(first)) // 2
    if start >= iface.ip:
        start += 1
    end = last - 1 if last == iface.ip else last
    return str(start), str(end)


def _networks_of(other: Network) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    try:
        root = ET.fromstring(other.xml)
    except ET.ParseError:
        return found
    for ip in root.findall("ip"):
        address, prefix = ip.get("address"), ip.get("prefix") or ip.get("netmask")
        if not address:
            continue
        try:
            if prefix and "." in prefix:
                found.append(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
            else:
                found.append(ipaddress.ip_interface(f"{address}/{prefix or 24}").network)
        except ValueError:
            continue
    return found


def _check_address(text: str, version: int, label: str, example: str,
                   prefixes: tuple[int, int]) -> tuple[str, ipaddress.IPv4Interface
                                                        | ipaddress.IPv6Interface | None]:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return f"“{text}” is not an {label} address with a prefix, e.g. {example}.", None
    if iface.version != version or "/" not in text:
        return f"Enter an {label} address with a prefix, e.g. {example}.", None
    low, high = prefixes
    if not low <= iface.network.prefixlen <= high:
        return f"Use an {label} prefix from /{low} to /{high}.", None
    if version == 4 and iface.ip in (iface.network.network_address,
                                     iface.network.broadcast_address):
        return f"{iface.ip} is not a usable host address in {iface.network}.", None
    if version == 6 and iface.ip == iface.network.network_address:
        return f"{iface.ip} is the network's own address; use e.g. {example}.", None
    return "", iface


def _check_range(spec: NetworkSpec, iface: ipaddress.IPv4Interface) -> str:
    if not (spec.dhcp_start or spec.dhcp_end):
        return ""
    try:
        start = ipaddress.IPv4Address(spec.dhcp_start)
        end = ipaddress.IPv4Address(spec.dhcp_end)
    except ValueError:
        return "Enter both ends of the DHCP range as IPv4 addresses."
    net = iface.network
    for addr in (start, end):
        if addr not in net or addr in (net.network_address, net.broadcast_address):
            return f"The DHCP range must lie inside {net}: {addr} does not."
    if start > end:
        return "The DHCP range starts after it ends."
    if start <= iface.ip <= end:
        return f"The DHCP range must not include the network's own address {iface.ip}."
    return ""


def _check_hosts(spec: NetworkSpec, iface: ipaddress.IPv4Interface | None) -> str:
    macs: set[str] = set()
    ips: set[str] = set()
    for host in spec.hosts:
        if not _MAC_RE.fullmatch(host.mac):
            return f"“{host.mac}” is not a MAC address like 52:54:00:12:34:56."
        if iface is None:
            return "Static hosts need an IPv4 address for the network."
        try:
            addr = ipaddress.IPv4Address(host.ip)
        except ValueError:
            return f"“{host.ip}” is not an IPv4 address."
        if addr not in iface.network or addr == iface.ip:
            return f"{addr} is not a free address in {iface.network}."
        if host.hostname and not _HOSTNAME_RE.fullmatch(host.hostname):
            return f"“{host.hostname}” is not a usable host name."
        if host.mac.lower() in macs or host.ip in ips:
            return f"{host.mac} or {host.ip} is given twice."
        macs.add(host.mac.lower())
        ips.add(host.ip)
    return ""


def check_spec(spec: NetworkSpec, host: HostConnection, *,
               host_bridges: set[str] | None = None) -> str:
    """What is wrong with ``spec`` in plain words, or "".

    With ``spec.uuid`` set the spec edits that network, which then does not
    count as a clash with itself.  ``host_bridges`` (the bridges of the host,
    when known) lets "bridge" mode refuse a bridge that does not exist.
    """
    if not _NAME_RE.fullmatch(spec.name):
        return "Use a name of letters, digits, dots, dashes or underscores (no spaces)."
    others = [n for n in list(host.networks.values()) if n.uuid != spec.uuid]
    if any(n.name == spec.name for n in others):
        return f"A network called {spec.name} exists already."
    if spec.mode not in MODES:
        return f"Unknown mode {spec.mode}."
    if spec.bridge:
        try:
            validate_ifname(spec.bridge)
        except VirtStudioError as exc:
            return exc.message
        if spec.mode != "bridge" and any(n.bridge == spec.bridge for n in others):
            return f"The bridge name {spec.bridge} is taken by another network."
    if spec.mode == "bridge":
        if not spec.bridge:
            return "Choose the host bridge to connect to."
        if host_bridges is not None and spec.bridge not in host_bridges:
            return f"This host has no bridge called {spec.bridge}."
        return ""
    if not spec.ipv4 and not spec.ipv6:
        return "Enter the network's address, e.g. 192.168.150.1/24."
    if spec.mode == "nat" and not spec.ipv4:
        return "NAT needs an IPv4 address, e.g. 192.168.150.1/24."
    mine: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    v4 = None
    if spec.ipv4:
        problem, v4 = _check_address(spec.ipv4, 4, "IPv4", "192.168.150.1/24", (8, 30))
        if problem:
            return problem
        mine.append(v4.network)
        if spec.dhcp:
            problem = _check_range(spec, v4)
            if problem:
                return problem
    if spec.ipv6:
        problem, v6 = _check_address(spec.ipv6, 6, "IPv6", "fd00:150::1/64", (48, 120))
        if problem:
            return problem
        if spec.dhcp6 and v6.network.prefixlen != 64:
            return "DHCPv6 on a libvirt network needs a /64 prefix."
        mine.append(v6.network)
    problem = _check_hosts(spec, v4)
    if problem:
        return problem
    for other in others:
        for theirs in _networks_of(other):
            for net in mine:
                if theirs.version == net.version and theirs.overlaps(net):
                    return f"{net} overlaps the network {other.name} ({theirs})."
    return ""


def network_xml(spec: NetworkSpec) -> str:
    parts = [f"<network><name>{_text(spec.name)}</name>"]
    if spec.uuid:
        parts.append(f"<uuid>{_text(spec.uuid)}</uuid>")
    if spec.mode == "bridge":
        parts.append("<forward mode='bridge'/>")
        parts.append(f"<bridge name={quoteattr(spec.bridge)}/></network>")
        return "".join(parts)
    if spec.mode != "isolated":
        parts.append(f"<forward mode='{spec.mode}'/>")
    if spec.bridge:
        parts.append(f"<bridge name={quoteattr(spec.bridge)} stp='on' delay='0'/>")
    if spec.ipv4:
        iface = ipaddress.ip_interface(spec.ipv4)
        parts.append(f"<ip address='{iface.ip}' prefix='{iface.network.prefixlen}'>")
        if spec.dhcp:
            start, end = ((spec.dhcp_start, spec.dhcp_end) if spec.dhcp_start
                          else default_dhcp_range(spec.ipv4))
            parts.append(f"<dhcp><range start='{start}' end='{end}'/>")
            for h in spec.hosts:
                name = f" name={quoteattr(h.hostname)}" if h.hostname else ""
                parts.append(f"<host mac={quoteattr(h.mac.lower())}{name} ip={quoteattr(h.ip)}/>")
            parts.append("</dhcp>")
        parts.append("</ip>")
    if spec.ipv6:
        iface6 = ipaddress.ip_interface(spec.ipv6)
        parts.append(f"<ip family='ipv6' address='{iface6.ip}' "
                     f"prefix='{iface6.network.prefixlen}'>")
        if spec.dhcp6:
            base = iface6.network.network_address
            start, end = base + 0x100, base + 0x1FF
            parts.append(f"<dhcp><range start='{start}' end='{end}'/></dhcp>")
        parts.append("</ip>")
    parts.append("</network>")
    return "".join(parts)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def spec_from_xml(xml: str, autostart: bool = False) -> NetworkSpec:
    """Read an existing network back into what the edit dialog shows."""
    root = ET.fromstring(xml)
    forward = root.find("forward")
    mode = forward.get("mode", "nat") if forward is not None else "isolated"
    bridge = root.find("bridge")
    spec: dict[str, object] = {
        "name": root.findtext("name", ""), "uuid": root.findtext("uuid", "") or "",
        "mode": mode, "bridge": bridge.get("name", "") if bridge is not None else "",
        "autostart": autostart, "dhcp": False,
    }
    hosts = []
    for ip in root.findall("ip"):
        address = ip.get("address", "")
        prefix = ip.get("prefix") or ip.get("netmask") or ""
        if not address:
            continue
        text = (str(ipaddress.ip_interface(f"{address}/{prefix}")) if prefix
                else address)
        dhcp_range = ip.find("dhcp/range")
        if ip.get("family") == "ipv6" or ":" in address:
            spec["ipv6"] = text
            spec["dhcp6"] = dhcp_range is not None
            continue
        spec["ipv4"] = text
        spec["dhcp"] = dhcp_range is not None
        if dhcp_range is not None:
            spec["dhcp_start"] = dhcp_range.get("start", "")
            spec["dhcp_end"] = dhcp_range.get("end", "")
        hosts += [StaticHost(h.get("mac", ""), h.get("ip", ""), h.get("name", ""))
                  for h in ip.findall("dhcp/host")]
    spec["hosts"] = tuple(hosts)
    return NetworkSpec(**spec)  # type: ignore[arg-type]


def _refuse(problem: str) -> None:
    if problem:
        raise VirtStudioError(problem)


def find_network(host: HostConnection, name: str) -> Network | None:
    return next((n for n in list(host.networks.values()) if n.name == name), None)


def create_network(runner: JobRunner, host: HostConnection, spec: NetworkSpec, *,
                   host_bridges: set[str] | None = None) -> Job:
    _refuse(check_spec(spec, host, host_bridges=host_bridges))

    def work(job: Job) -> None:
        job.report(None, f"Defining network {spec.name} ({spec.mode})")
        net = host.virconn.networkDefineXML(network_xml(spec))
        try:
            job.report(None, f"Starting {spec.name}")
            net.create()
        except libvirt.libvirtError:
            net.undefine()  # leave nothing half made
            raise
        net.setAutostart(int(spec.autostart))

    return runner.submit(f"Create network {spec.name}", work, host=host.name, target=spec.name)


def edit_network(runner: JobRunner, host: HostConnection, spec: NetworkSpec, *,
                 host_bridges: set[str] | None = None) -> Job:
    """Redefine the network ``spec.uuid``; a running one keeps its old setup until restarted."""
    current = host.networks.get(spec.uuid)
    if current is None:
        raise VirtStudioError("That network no longer exists; nothing was changed.")
    if spec.name != current.name:
        raise VirtStudioError("A network cannot be renamed; create a new one instead.")
    _refuse(check_spec(spec, host, host_bridges=host_bridges))

    def work(job: Job) -> None:
        job.report(None, f"Redefining {spec.name}")
        net = host.virconn.networkDefineXML(network_xml(spec))
        net.setAutostart(int(spec.autostart))
        if net.isActive():
            job.log("The network is running: the new settings apply when it next starts.")

    return runner.submit(f"Edit network {spec.name}", work, host=host.name, target=spec.name)


def network_users(host: HostConnection, name: str, bridge: str = "") -> list[str]:
    """Running machines with a NIC on the network (or its bridge)."""
    return sorted(d.name for d in list(host.domains.values()) if d.state.is_active and any(
        (n.kind == "network" and n.source == name) or (bridge and n.source == bridge)
        for n in d.summary.nics))


def _refuse_in_use(host: HostConnection, name: str, verb: str) -> None:
    net = find_network(host, name)
    users = network_users(host, name, net.bridge if net is not None else "")
    if users:
        raise VirtStudioError(f"Cannot {verb} {name}: it is in use by {', '.join(users)}; "
                              "nothing was changed.")


def delete_network(runner: JobRunner, host: HostConnection, name: str) -> Job:
    _refuse_in_use(host, name, "delete")

    def work(job: Job) -> None:
        target = host.virconn.networkLookupByName(name)
        if target.isActive():
            target.destroy()
        if target.isPersistent():
            target.undefine()

    return runner.submit(f"Delete network {name}", work, host=host.name, target=name)


def start_network(runner: JobRunner, host: HostConnection, name: str) -> Job:
    return runner.submit(f"Start network {name}",
                         lambda job: host.virconn.networkLookupByName(name).create(),
                         host=host.name, target=name)


def stop_network(runner: JobRunner, host: HostConnection, name: str) -> Job:
    _refuse_in_use(host, name, "stop")
    return runner.submit(f"Stop network {name}",
                         lambda job: host.virconn.networkLookupByName(name).destroy(),
                         host=host.name, target=name)


def restart_network(runner: JobRunner, host: HostConnection, name: str) -> Job:
    """Stop and start again, so edited settings take effect; refused while in use."""
    _refuse_in_use(host, name, "restart")

    def work(job: Job) -> None:
        net = host.virconn.networkLookupByName(name)
        if net.isActive():
            job.report(None, f"Stopping {name}")
            net.destroy()
        job.report(None, f"Starting {name} with its new settings")
        net.create()

    return runner.submit(f"Restart network {name}", work, host=host.name, target=name)


def set_autostart(runner: JobRunner, host: HostConnection, name: str, on: bool) -> Job:
    def work(job: Job) -> None:
        host.virconn.networkLookupByName(name).setAutostart(int(on))
        # libvirt sends no event for autostart: read the network again.
        net = find_network(host, name)
        if net is not None:
            host.refresh_network(net.uuid)

    return runner.submit(f"{'Enable' if on else 'Disable'} autostart of {name}", work,
                         host=host.name, target=name)


@dataclass(frozen=True)
class Lease:
    mac: str
    address: str
    hostname: str
    expires: int


def dhcp_leases(host: HostConnection, name: str) -> list[Lease]:
    """The network's current leases (a blocking call: run it off the GUI thread)."""
    try:
        raw = host.virconn.networkLookupByName(name).DHCPLeases()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT,
                                    libvirt.VIR_ERR_OPERATION_UNSUPPORTED):
            raise VirtStudioError("This host does not report DHCP leases.") from None
        raise
    return [Lease(str(r.get("mac", "")), f"{r.get('ipaddr', '')}/{r.get('prefix', '')}",
                  str(r.get("hostname") or ""), int(r.get("expirytime") or 0)) for r in raw]
