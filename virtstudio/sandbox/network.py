"""Join a sandbox's private network namespace to a bridge with a veth pair."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtstudio.core.errors import VirtStudioError

INSIDE_IFNAME = "eth0"


def _ipr(netns: str | None) -> IPRoute:
    # The synchronous IPRoute is fine here: this runs on a launcher thread,
    # never inside the GUI's event loop.
    return IPRoute(netns=netns) if netns else IPRoute()


def bridge_exists(bridge: str, netns: str | None = None) -> bool:
    if netns is None:
        return (Path("/sys/class/net") / bridge / "bridge").is_dir()
    with _ipr(netns) as ipr:
        links = ipr.link_lookup(ifname=bridge)
        if not links:
            return False
        info = ipr.get_links(links[0])[0].get_attr("IFLA_LINKINFO")
        return info is not None and info.get_attr("IFLA_INFO_KIND") == "bridge"


def attach_to_bridge(pid: int, bridge: str, host_ifname: str, *, netns: str | None = None,
                     address: str | None = None, gateway: str | None = None) -> None:
    """Give the sandbox whose first process is ``pid`` an ``eth0`` on ``bridge``."""
    if address is not None:
        ipaddress.ip_interface(address)  # raises ValueError on nonsense
    try:
        with _ipr(netns) as ipr:
            found = ipr.link_lookup(ifname=bridge)
            if not found:
                raise VirtStudioError(f"The bridge {bridge} no longer exists: nothing was started.")
            ipr.link("add", ifname=host_ifname, kind="veth",
                     peer={"ifname": INSIDE_IFNAME, "net_ns_pid": pid})
            host_index = ipr.link_lookup(ifname=host_ifname)[0]
            ipr.link("set", index=host_index, master=found[0], state="up")
        with IPRoute(netns=f"/proc/{pid}/ns/net") as inside:
            lo = inside.link_lookup(ifname="lo")[0]
            inside.link("set", index=lo, state="up")
            eth = inside.link_lookup(ifname=INSIDE_IFNAME)[0]
            inside.link("set", index=eth, state="up")
            if address is not None:
                iface = ipaddress.ip_interface(address)
                inside.addr("add", index=eth, address=str(iface.ip),
                            prefixlen=iface.network.prefixlen)
                if gateway:
                    inside.route("add", dst="default", gateway=gateway)
    except NetlinkError as exc:
        raise VirtStudioError(f"Could not join the sandbox to bridge {bridge}: {exc}.",
                              repr(exc)) from None


def detach(host_ifname: str, netns: str | None = None) -> None:
    """Remove the host end if it is still there (it goes with the namespace anyway)."""
    try:
        with _ipr(netns) as ipr:
            found = ipr.link_lookup(ifname=host_ifname)
            if found:
                ipr.link("del", index=found[0])
    except (NetlinkError, OSError):
        pass  # the namespace itself may be gone already
