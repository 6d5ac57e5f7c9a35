"""libvirt virtual networks: NAT, routed, isolated, open and bridged, checked before defining."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.network.host_links import validate_ifname

MODES = ("nat", "route", "isolated", "open", "bridge")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    mode: str = "nat"
    ipv4: str = ""  # gateway address with prefix, e.g. 192.168.150.1/24
    dhcp: bool = True
    bridge: str = ""  # for "bridge": the existing host bridge; otherwise optional name
    autostart: bool = True


def check_spec(spec: NetworkSpec, host: HostConnection) -> str:
    """What is wrong with ``spec`` in plain words, or ""."""
    if not _NAME_RE.match(spec.name):
        return "Use a name of letters, digits, dots, dashes or underscores (no spaces)."
    if any(n.name == spec.name for n in list(host.networks.values())):
        return f"A network called {spec.name} exists already."
    if spec.mode not in MODES:
        return f"Unknown mode {spec.mode}."
    if spec.bridge:
        try:
            validate_ifname(spec.bridge)
        except VirtStudioError as exc:
            return exc.message
    if spec.mode == "bridge":
        return "" if spec.bridge else "Choose the host bridge to connect to."
    if not spec.ipv4:
        return "Enter the network's address, e.g. 192.168.150.1/24."
    try:
        iface = ipaddress.ip_interface(spec.ipv4)
    except ValueError:
        return f"“{spec.ipv4}” is not an address with a prefix, e.g. 192.168.150.1/24."
    if iface.version != 4 or not 8 <= iface.network.prefixlen <= 30:
        return "Use an IPv4 address with a prefix from /8 to /30."
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        return f"{iface.ip} is not a usable host address in {iface.network}."
    for other in list(host.networks.values()):
        if other.ipv4:
            try:
                theirs = ipaddress.ip_interface(other.ipv4).network
            except ValueError:
                continue
            if theirs.overlaps(iface.network):
                return f"{iface.network} overlaps the network {other.name} ({theirs})."
    return ""


def network_xml(spec: NetworkSpec) -> str:
    parts = [f"<network><name>{escape(spec.name)}</name>"]
    if spec.mode == "bridge":
        parts.append("<forward mode='bridge'/>")
        parts.append(f"<bridge name='{escape(spec.bridge)}'/></network>")
        return "".join(parts)
    if spec.mode != "isolated":
        parts.append(f"<forward mode='{spec.mode}'/>")
    if spec.bridge:
        parts.append(f"<bridge name='{escape(spec.bridge)}' stp='on' delay='0'/>")
    iface = ipaddress.ip_interface(spec.ipv4)
    parts.append(f"<ip address='{iface.ip}' prefix='{iface.network.prefixlen}'>")
    if spec.dhcp:
        hosts = list(iface.network.hosts())
        pool = [h for h in hosts if h != iface.ip]
        start, end = pool[len(pool) // 2], pool[-1]
        parts.append(f"<dhcp><range start='{start}' end='{end}'/></dhcp>")
    parts.append("</ip></network>")
    return "".join(parts)


def create_network(runner: JobRunner, host: HostConnection, spec: NetworkSpec) -> Job:
    problem = check_spec(spec, host)
    if problem:
        raise VirtStudioError(problem)

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


def network_users(host: HostConnection, name: str, bridge: str = "") -> list[str]:
    """Running machines with a NIC on the network (or its bridge)."""
    return sorted(d.name for d in list(host.domains.values()) if d.state.is_active and any(
        (n.kind == "network" and n.source == name) or (bridge and n.source == bridge)
        for n in d.summary.nics))


def delete_network(runner: JobRunner, host: HostConnection, name: str) -> Job:
    net = next((n for n in list(host.networks.values()) if n.name == name), None)
    users = network_users(host, name, net.bridge if net is not None else "")
    if users:
        raise VirtStudioError(f"{name} is in use by {', '.join(users)}; nothing was changed.")

    def work(job: Job) -> None:
        target = host.virconn.networkLookupByName(name)
        if target.isActive():
            target.destroy()
        if target.isPersistent():
            target.undefine()

    return runner.submit(f"Delete network {name}", work, host=host.name, target=name)


def dhcp_leases(host: HostConnection, name: str) -> list[dict[str, object]]:
    """The network's current leases (a blocking call: run it off the GUI thread)."""
    return list(host.virconn.networkLookupByName(name).DHCPLeases())
