"""One object per libvirt entity, holding what was last read about it.

Entities are plain data owned by their HostConnection.  Only the
connection's worker thread replaces their fields; listeners get the same
object back through the connection's signals and read it.
"""

from __future__ import annotations

import enum
import ipaddress
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field

import libvirt

from virtstudio.core.domain_xml import DomainSummary, parse_domain_xml


class DomainState(enum.IntEnum):
    NOSTATE = libvirt.VIR_DOMAIN_NOSTATE
    RUNNING = libvirt.VIR_DOMAIN_RUNNING
    BLOCKED = libvirt.VIR_DOMAIN_BLOCKED
    PAUSED = libvirt.VIR_DOMAIN_PAUSED
    SHUTDOWN = libvirt.VIR_DOMAIN_SHUTDOWN
    SHUTOFF = libvirt.VIR_DOMAIN_SHUTOFF
    CRASHED = libvirt.VIR_DOMAIN_CRASHED
    PMSUSPENDED = libvirt.VIR_DOMAIN_PMSUSPENDED

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]

    @property
    def is_active(self) -> bool:
        return self not in (DomainState.SHUTOFF, DomainState.CRASHED, DomainState.NOSTATE)


_STATE_LABELS = {
    DomainState.NOSTATE: "Unknown",
    DomainState.RUNNING: "Running",
    DomainState.BLOCKED: "Blocked",
    DomainState.PAUSED: "Paused",
    DomainState.SHUTDOWN: "Shutting down",
    DomainState.SHUTOFF: "Shut off",
    DomainState.CRASHED: "Crashed",
    DomainState.PMSUSPENDED: "Suspended",
}

HISTORY_LENGTH = 40


@dataclass
class DomainStats:
    """Rates derived from two consecutive bulk statistics samples."""

    cpu_percent: float = 0.0
    disk_bytes_per_s: float = 0.0
    net_bytes_per_s: float = 0.0
    cpu_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))
    disk_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))
    net_history: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LENGTH))


class Domain:
    def __init__(self, host_uri: str, uuid: str, xml: str, state: int, reason: int,
                 persistent: bool = True, autostart: bool = False) -> None:
        self.host_uri = host_uri
        self.uuid = uuid
        self.xml = ""
        self.summary: DomainSummary = DomainSummary(name="", uuid=uuid)
        self.state = DomainState.NOSTATE
        self.reason = reason
        self.set_state(state, reason)
        self.persistent = persistent
        self.autostart = autostart
        self.stats = DomainStats()
        # Target (vda) -> VIR_DOMAIN_DISK_ERROR_*, read while paused on an I/O error.
        self.disk_errors: dict[str, int] = {}
        self.set_xml(xml)

    @property
    def name(self) -> str:
        return self.summary.name

    def set_xml(self, xml: str) -> None:
        self.xml = xml
        self.summary = parse_domain_xml(xml)

    def set_state(self, state: int, reason: int) -> None:
        known = state in DomainState._value2member_map_
        self.state = DomainState(state) if known else DomainState.NOSTATE
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Domain {self.name} {self.state.label} on {self.host_uri}>"


def _text_int(root: ET.Element, path: str) -> int:
    el = root.find(path)
    if el is None or not (el.text or "").strip():
        return 0
    unit = (el.get("unit") or "bytes").lower()
    scale = {"bytes": 1, "b": 1, "kib": 1024, "k": 1024, "mib": 1024**2, "m": 1024**2,
             "gib": 1024**3, "g": 1024**3, "tib": 1024**4, "t": 1024**4}.get(unit, 1)
    try:
        return int(el.text.strip()) * scale
    except ValueError:
        return 0


@dataclass(frozen=True)
class Volume:
    name: str
    path: str
    capacity: int
    allocation: int
    format: str = ""
    backing: str = ""

    @classmethod
    def from_xml(cls, xml: str) -> Volume:
        root = ET.fromstring(xml)
        fmt = root.find("target/format")
        return cls(
            name=root.findtext("name", ""),
            path=root.findtext("target/path", "") or root.findtext("key", "") or "",
            capacity=_text_int(root, "capacity"),
            allocation=_text_int(root, "allocation"),
            format=fmt.get("type", "") if fmt is not None else "",
            backing=root.findtext("backingStore/path", "") or "",
        )


class StoragePool:
    def __init__(self, host_uri: str, uuid: str, xml: str, active: bool, autostart: bool) -> None:
        self.host_uri = host_uri
        self.uuid = uuid
        self.active = active
        self.autostart = autostart
        self.volumes: list[Volume] = []
        self.set_xml(xml)

    @property
    def promised(self) -> int:
        """What the volumes may grow to: their virtual sizes added up."""
        return sum(v.capacity for v in self.volumes)

    @property
    def overcommit(self) -> float:
        """Promised over physical capacity; above 1.0 the pool is thin-provisioned."""
        return self.promised / self.capacity if self.capacity else 0.0

    def set_xml(self, xml: str) -> None:
        self.xml = xml
        root = ET.fromstring(xml)
        self.name = root.findtext("name", "")
        self.pool_type = root.get("type", "")
        self.capacity = _text_int(root, "capacity")
        self.allocation = _text_int(root, "allocation")
        self.available = _text_int(root, "available")
        self.target_path = root.findtext("target/path", "") or ""

    def __repr__(self) -> str:
        return f"<StoragePool {self.name} ({self.pool_type})>"


def _netmask_prefix(netmask: str | None) -> str:
    """'255.255.255.0' -> '24', so every network reads as address/prefix."""
    if not netmask:
        return ""
    try:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen)
    except ValueError:
        return netmask


class Network:
    def __init__(self, host_uri: str, uuid: str, xml: str, active: bool, autostart: bool) -> None:
        self.host_uri = host_uri
        self.uuid = uuid
        self.active = active
        self.autostart = autostart
        self.set_xml(xml)

    def set_xml(self, xml: str) -> None:
        self.xml = xml
        root = ET.fromstring(xml)
        self.name = root.findtext("name", "")
        forward = root.find("forward")
        self.forward_mode = (forward.get("mode", "nat") if forward is not None else "isolated")
        bridge = root.find("bridge")
        self.bridge = bridge.get("name", "") if bridge is not None else ""
        ip = root.find("ip")
        self.ipv4 = ""
        if ip is not None and ip.get("address"):
            prefix = ip.get("prefix") or _netmask_prefix(ip.get("netmask")) or ""
            self.ipv4 = f"{ip.get('address')}/{prefix}" if prefix else ip.get("address", "")

    def __repr__(self) -> str:
        return f"<Network {self.name} ({self.forward_mode})>"
