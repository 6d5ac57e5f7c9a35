"""Host networking changes as jobs: checked here first, performed by the privileged helper.

Each function refuses bad input at once with a ``VirtStudioError`` (so nothing
is queued and nothing changes) and otherwise submits a job that asks the
helper (``run_privileged``) for the change.  All of it is runtime-only: the
kernel forgets it at reboot unless NetworkManager is asked to keep it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.network.host_links import HostNetwork, validate_ifname, validate_vlan_id
from virtstudio.privileged.client import run_privileged

HOST_LABEL = "This computer"
RUNTIME_ONLY = ("Changes made here take effect at once and last until the next reboot "
                "(netlink changes are runtime-only).")


def parse_vlan_id(text: str) -> int:
    """A VLAN id typed by the user, or a clear refusal."""
    try:
        vid = int(text.strip())
    except ValueError:
        raise VirtStudioError(f"“{text}” is not a VLAN id: enter a number from 1 to 4094.") \
            from None
    validate_vlan_id(vid)
    return vid


def parse_vlan_list(text: str) -> tuple[int, ...]:
    """Tagged VLANs typed as "10, 20, 30" (empty for none)."""
    return tuple(parse_vlan_id(part) for part in text.replace(" ", ",").split(",") if part)


def _check_new(network: HostNetwork, *names: str) -> None:
    for name in names:
        validate_ifname(name)
        if network.find(name) is not None:
            raise VirtStudioError(f"An interface called {name} exists already; "
                                  "nothing was changed.")
    if len(set(names)) != len(names):
        raise VirtStudioError("The two ends need different names.")


def _check_existing(network: HostNetwork, name: str) -> None:
    if network.find(name) is None:
        raise VirtStudioError(f"There is no interface called {name}.")


def link_users(network: HostNetwork, hosts: Iterable[HostConnection], name: str) -> list[str]:
    """Running machines on this computer whose NIC sits on ``name`` (or on a port of it)."""
    link = network.find(name)
    ports = {p.name for p in list(network.links.values())
             if link is not None and p.master == link.index}
    users = set()
    for host in hosts:
        if uri_mod.parse(host.uri).is_remote:
            continue
        bridges_of_networks = {n.name: n.bridge for n in list(host.networks.values())}
        for dom in list(host.domains.values()):
            if not dom.state.is_active:
                continue
            for nic in dom.summary.nics:
                on = nic.source if nic.kind == "bridge" else (
                    bridges_of_networks.get(nic.source, "") if nic.kind == "network" else "")
                if name in (on, nic.target_dev) or (nic.target_dev and nic.target_dev in ports):
                    users.add(dom.name)
    return sorted(users)


def _submit(runner: JobRunner, title: str, op: str, network: HostNetwork,
            **args: Any) -> Job:
    if network.netns:
        args["netns"] = network.netns

    def work(job: Job) -> None:
        job.report(None, f"{title} (runtime only)")
        run_privileged(op, **args)

    return runner.submit(title, work, host=HOST_LABEL, target=str(args.get("name", "")))


def create_bridge(runner: JobRunner, network: HostNetwork, name: str, *,
                  vlan_filtering: bool = False) -> Job:
    _check_new(network, name)
    return _submit(runner, f"Create bridge {name}", "create_bridge", network, name=name,
                   vlan_filtering=vlan_filtering)


def create_vlan(runner: JobRunner, network: HostNetwork, parent: str, vlan_text: str,
                name: str = "") -> Job:
    vid = parse_vlan_id(vlan_text)
    _check_existing(network, parent)
    name = name or f"{parent}.{vid}"
    _check_new(network, name)
    return _submit(runner, f"Create VLAN {vid} on {parent}", "create_vlan", network,
                   parent=parent, vlan_id=vid, name=name)


def create_veth(runner: JobRunner, network: HostNetwork, name: str, peer: str) -> Job:
    _check_new(network, name, peer)
    return _submit(runner, f"Create veth pair {name}/{peer}", "create_veth", network,
                   name=name, peer=peer)


def create_dummy(runner: JobRunner, network: HostNetwork, name: str) -> Job:
    _check_new(network, name)
    return _submit(runner, f"Create dummy interface {name}", "create_dummy", network,
                   name=name)


def on_default_route(network: HostNetwork, name: str) -> bool:
    """Whether ``name`` carries the default route (a netlink read: not on the GUI thread
    of a busy host, though it is quick)."""
    return name in network.default_route_interfaces()


def add_port(runner: JobRunner, network: HostNetwork, bridge: str, port: str, *,
             confirmed: bool = False) -> Job:
    _check_existing(network, port)
    link = network.find(bridge)
    if link is None or link.kind != "bridge":
        raise VirtStudioError(f"{bridge} is not a bridge on this computer.")
    if port == bridge:
        raise VirtStudioError("A bridge cannot be a port of itself.")
    if not confirmed and on_default_route(network, port):
        raise VirtStudioError(f"{port} carries this host's default route: confirm first.")
    return _submit(runner, f"Add {port} to {bridge}", "add_port", network, bridge=bridge,
                   port=port, confirmed=confirmed)


def remove_port(runner: JobRunner, network: HostNetwork, port: str,
                hosts: Iterable[HostConnection] = ()) -> Job:
    link = network.find(port)
    if link is None or not link.master:
        raise VirtStudioError(f"{port} is not a port of a bridge.")
    users = link_users(network, hosts, port)
    if users:
        raise VirtStudioError(f"{port} is in use by {', '.join(users)}; nothing was changed.")
    return _submit(runner, f"Remove {port} from its bridge", "remove_port", network, port=port)


def set_port_vlans(runner: JobRunner, network: HostNetwork, port: str, pvid_text: str,
                   tagged_text: str = "") -> Job:
    pvid = parse_vlan_id(pvid_text)
    tagged = parse_vlan_list(tagged_text)
    _check_existing(network, port)
    return _submit(runner, f"Set VLANs of {port}", "set_port_vlan", network, port=port,
                   pvid=pvid, tagged=list(tagged))


def delete_link(runner: JobRunner, network: HostNetwork, name: str,
                hosts: Iterable[HostConnection] = (), *, confirmed: bool = False) -> Job:
    _check_existing(network, name)
    users = link_users(network, hosts, name)
    if users:
        raise VirtStudioError(f"{name} is in use by {', '.join(users)}; nothing was changed.")
    if not confirmed and on_default_route(network, name):
        raise VirtStudioError(f"{name} carries this host's default route: confirm first.")
    return _submit(runner, f"Delete {name}", "delete_link", network, name=name,
                   confirmed=confirmed)
