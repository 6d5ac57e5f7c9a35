"""Host network interfaces over netlink (pyroute2), kept live by netlink events.

A dedicated thread owns the synchronous IPRoute socket (pyroute2's sync API
cannot run inside a running asyncio loop such as the GUI's) and turns
RTM_NEWLINK/DELLINK/NEWADDR/DELADDR messages into batch signals.  Changes
(bridges, ports, VLANs, veths) go through a separate socket on the caller's
thread, which is a job thread in the app.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from virtstudio.core.errors import VirtStudioError
from virtstudio.core.signal import Signal

AF_BRIDGE = 7
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
OPERSTATES = {"UP": "up", "DOWN": "down", "UNKNOWN": "unknown", "LOWERLAYERDOWN": "no carrier",
              "DORMANT": "dormant", "NOTPRESENT": "not present", "TESTING": "testing"}


def validate_ifname(name: str) -> None:
    if not _IFNAME_RE.fullmatch(name or "") or name in (".", ".."):
        raise VirtStudioError(
            f"“{name}” is not a usable interface name: 1 to 15 letters, digits, dots, "
            "dashes or underscores.")
    if len(name.encode()) > 15:
        raise VirtStudioError(f"“{name}” is longer than the 15 bytes Linux allows.")


def validate_vlan_id(vid: int) -> None:
    if not isinstance(vid, int) or not 1 <= vid <= 4094:
        raise VirtStudioError(f"VLAN id {vid} is outside 1-4094 (0 and 4095 are reserved).")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str
    state: str
    mac: str = ""
    mtu: int = 0
    master: int = 0
    vlan_id: int = 0
    parent: int = 0
    addresses: tuple[str, ...] = field(default_factory=tuple)
    vlan_filtering: bool = False  # a VLAN-aware bridge


def _link_from_msg(msg: Any, addresses: tuple[str, ...] = ()) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
    vlan_id, vlan_filtering = 0, False
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    if kind == "vlan" and data is not None:
        vlan_id = data.get_attr("IFLA_VLAN_ID")
    elif kind == "bridge" and data is not None:
        vlan_filtering = bool(data.get_attr("IFLA_BR_VLAN_FILTERING"))
    name = msg.get_attr("IFLA_IFNAME") or ""
    if not kind:
        kind = "loopback" if name == "lo" else "ether"
    return Link(
        index=msg["index"], name=name, kind=kind,
        state=OPERSTATES.get(msg.get_attr("IFLA_OPERSTATE") or "", "unknown"),
        mac=msg.get_attr("IFLA_ADDRESS") or "", mtu=msg.get_attr("IFLA_MTU") or 0,
        master=msg.get_attr("IFLA_MASTER") or 0, vlan_id=vlan_id or 0,
        parent=msg.get_attr("IFLA_LINK") or 0, addresses=addresses,
        vlan_filtering=vlan_filtering)


def _addr_text(msg: Any) -> str:
    return f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"


class HostNetwork:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.links: dict[int, Link] = {}
        self.links_added = Signal("links added")
        self.links_removed = Signal("links removed")
        self.links_changed = Signal("links changed")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._events: IPRoute | None = None

    def _ipr(self) -> IPRoute:
        return IPRoute(netns=self.netns) if self.netns else IPRoute()

    # ---- watching ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="netlink", daemon=True)
            self._thread.start()
            self._ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        events = self._events
        if events is not None:
            # get() blocks; closing the socket under it is how the watcher wakes.
            with contextlib.suppress(Exception):
                events.close()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        try:
            self._watch_events()
        except Exception:
            # stop() closes the socket under a blocked get(); pyroute2 then raises the
            # closed socket's error again when the "with" closes it: that is the way out.
            if not self._stop.is_set():
                raise

    def _watch_events(self) -> None:
        with self._ipr() as events:
            self._events = events
            # Subscribe before the dump, so nothing between the two is missed.
            events.bind()
            with self._ipr() as ipr:
                addrs: dict[int, list[str]] = {}
                for msg in ipr.get_addr():
                    addrs.setdefault(msg["index"], []).append(_addr_text(msg))
                links = [_link_from_msg(m, tuple(addrs.get(m["index"], ())))
                         for m in ipr.get_links()]
            self.links = {link.index: link for link in links}
            if links:
                self.links_added.emit(links)
            self._ready.set()
            while not self._stop.is_set():
                messages = events.get()
                self._apply(messages)

    def _apply(self, messages: list[Any]) -> None:
        added, changed, removed = [], [], []
        for msg in messages:
            event = msg.get("event")
            if event in ("RTM_NEWLINK", "RTM_DELLINK") and msg.get("family") == AF_BRIDGE:
                # Bridge-port notices: a DELLINK here means "left the bridge", not
                # "gone"; the ordinary link message that follows has the new state.
                continue
            if event == "RTM_NEWLINK":
                old = self.links.get(msg["index"])
                link = _link_from_msg(msg, old.addresses if old else ())
                if old is not None and link.kind == "ether" and old.kind != "ether":
                    # Some updates (e.g. a new master) carry no link info: keep the kind.
                    link = replace(link, kind=old.kind, vlan_id=old.vlan_id,
                                   vlan_filtering=old.vlan_filtering)
                if old is None:
                    added.append(link)
                elif link != old:
                    changed.append(link)
                self.links[link.index] = link
            elif event == "RTM_DELLINK":
                gone = self.links.pop(msg["index"], None)
                if gone is not None:
                    removed.append(gone)
            elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
                old = self.links.get(msg["index"])
                if old is None:
                    continue
                text = _addr_text(msg)
                addresses = [a for a in old.addresses if a != text]
                if event == "RTM_NEWADDR":
                    addresses.append(text)
                link = replace(old, addresses=tuple(addresses))
                self.links[link.index] = link
                changed.append(link)
        for signal, batch in ((self.links_added, added), (self.links_changed, changed),
                              (self.links_removed, removed)):
            if batch:
                signal.emit(batch)

    def find(self, name: str) -> Link | None:
        return next((link for link in list(self.links.values()) if link.name == name), None)

    # ---- changes ------------------------------------------------------------------------

    def default_route_interfaces(self) -> set[str]:
        with self._ipr() as ipr:
            names = set()
            for route in ipr.get_default_routes(family=2) + ipr.get_default_routes(family=10):
                oif = route.get_attr("RTA_OIF")
                if oif:
                    found = ipr.get_links(oif)
                    if found:
                        names.add(found[0].get_attr("IFLA_IFNAME"))
            return names

    def _guard(self, name: str, confirmed: bool) -> None:
        if not confirmed and name in self.default_route_interfaces():
            raise VirtStudioError(
                f"{name} carries this host's default route: changing it can cut the host off "
                "the network. Confirm explicitly to go ahead.")

    def _run(self, what: str, fn: Any) -> None:
        try:
            with self._ipr() as ipr:
                fn(ipr)
        except NetlinkError as exc:
            reason = {17: "an interface with that name exists already",
                      19: "no such interface", 1: "not permitted (root is needed)",
                      95: "this kernel does not support it",
                      16: "the interface is busy"}.get(exc.code, str(exc))
            raise VirtStudioError(f"Could not {what}: {reason}.", repr(exc)) from None

    def _index(self, ipr: IPRoute, name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise VirtStudioError(f"There is no interface called {name}.")
        return found[0]

    def create_bridge(self, name: str, *, vlan_filtering: bool = False) -> None:
        validate_ifname(name)
        if self.find(name) is not None:
            raise VirtStudioError(f"An interface called {name} exists already.")

        def make(ipr: IPRoute) -> None:
            kwargs = {"br_vlan_filtering": 1} if vlan_filtering else {}
            ipr.link("add", ifname=name, kind="bridge", **kwargs)
            ipr.link("set", index=self._index(ipr, name), state="up")

        self._run(f"create bridge {name}", make)

    def create_veth(self, name: str, peer: str) -> None:
        for n in (name, peer):
            validate_ifname(n)
            if self.find(n) is not None:
                raise VirtStudioError(f"An interface called {n} exists already.")
        self._run(f"create veth pair {name}/{peer}",
                  lambda ipr: ipr.link("add", ifname=name, kind="veth", peer=peer))

    def create_dummy(self, name: str) -> None:
        self._check_new(name)
        self._run(f"create dummy interface {name}",
                  lambda ipr: ipr.link("add", ifname=name, kind="dummy"))

    def _check_new(self, name: str) -> None:
        validate_ifname(name)
        if self.find(name) is not None:
            raise VirtStudioError(f"An interface called {name} exists already.")

    def create_vlan(self, parent: str, vlan_id: int, name: str | None = None) -> str:
        validate_vlan_id(vlan_id)
        name = name or f"{parent}.{vlan_id}"
        validate_ifname(name)
        if self.find(name) is not None:
            raise VirtStudioError(f"An interface called {name} exists already.")

        def make(ipr: IPRoute) -> None:
            ipr.link("add", ifname=name, kind="vlan", link=self._index(ipr, parent),
                     vlan_id=vlan_id)

        self._run(f"create VLAN {vlan_id} on {parent}", make)
        return name

    def add_port(self, bridge: str, port: str, *, confirmed: bool = False) -> None:
        self._guard(port, confirmed)

        def attach(ipr: IPRoute) -> None:
            ipr.link("set", index=self._index(ipr, port), master=self._index(ipr, bridge),
                     state="up")

        self._run(f"add {port} to {bridge}", attach)

    def set_port_vlans(self, port: str, *, pvid: int | None = None,
                       tagged: tuple[int, ...] = (), drop_default: bool = True) -> None:
        """VLAN membership of a port of a VLAN-aware bridge.

        ``pvid`` becomes the port's untagged VLAN (frames without a tag join it);
        ``tagged`` VLANs pass with their tag.  VLAN 1, the bridge default, is
        removed unless asked to keep it, so ports share nothing by accident.
        """
        for vid in (*tagged, *([pvid] if pvid is not None else [])):
            validate_vlan_id(vid)

        def apply(ipr: IPRoute) -> None:
            index = self._index(ipr, port)
            if drop_default:
                with contextlib.suppress(NetlinkError):
                    ipr.vlan_filter("del", index=index, vlan_info={"vid": 1})
            if pvid is not None:
                ipr.vlan_filter("add", index=index,
                                vlan_info={"vid": pvid, "flags": ["pvid", "untagged"]})
            for vid in tagged:
                ipr.vlan_filter("add", index=index, vlan_info={"vid": vid})

        self._run(f"set the VLANs of {port}", apply)

    def remove_port(self, port: str) -> None:
        self._run(f"remove {port} from its bridge",
                  lambda ipr: ipr.link("set", index=self._index(ipr, port), master=0))

    def set_up(self, name: str, up: bool = True) -> None:
        self._run(f"bring {name} {'up' if up else 'down'}",
                  lambda ipr: ipr.link("set", index=self._index(ipr, name),
                                       state="up" if up else "down"))

    def add_address(self, name: str, address: str) -> None:
        try:
            iface = ipaddress.ip_interface(address)
        except ValueError:
            raise VirtStudioError(f"“{address}” is not an address with a prefix "
                                  "(like 10.0.0.1/24).") from None
        self._run(f"add {address} to {name}",
                  lambda ipr: ipr.addr("add", index=self._index(ipr, name),
                                       address=str(iface.ip),
                                       prefixlen=iface.network.prefixlen))

    def delete(self, name: str, *, in_use_by: list[str] | None = None,
               confirmed: bool = False) -> None:
        """Delete an interface; refuse one a running VM uses, or the default route's."""
        if in_use_by:
            raise VirtStudioError(f"{name} is in use by {', '.join(in_use_by)}; "
                                  "nothing was changed.")
        self._guard(name, confirmed)
        self._run(f"delete {name}", lambda ipr: ipr.link("del", index=self._index(ipr, name)))
