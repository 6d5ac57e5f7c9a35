"""A VM NIC's VLAN on a Linux bridge: kept in the domain's metadata, applied at every start.

libvirt does not put a tap port into a VLAN on a plain Linux bridge (only Open
vSwitch gets ``<vlan>``), so VirtStudio records the VLAN per NIC (by MAC) in its
own metadata namespace and, each time the machine starts, makes the tap's port
an untagged member of that VLAN (PVID) on its VLAN-aware bridge.
"""

from __future__ import annotations

from collections.abc import Callable

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_xml import parse_domain_xml
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.network.host_links import validate_vlan_id
from virtstudio.privileged.client import run_privileged
from virtstudio.xml import Domain as DomainXML
from virtstudio.xml import XMLError, make
from virtstudio.xml.metadata import NETWORK_NS, NicsEntry, NicVlan, metadata_entry

NS = NETWORK_NS
KEY = "virtstudio-net"
PortVlanSetter = Callable[[str, int], None]


def nic_vlans(domain_xml: str) -> dict[str, int]:
    """MAC (lower case) to VLAN id, as recorded in the domain's metadata."""
    try:
        entry = metadata_entry(DomainXML.from_xml(domain_xml), NS, NicsEntry)
    except XMLError:
        return {}
    found = {}
    for nic in entry.nics if entry is not None else ():
        vid = nic.vlan
        if vid is not None and 1 <= vid <= 4094 and nic.mac:
            found[nic.mac.lower()] = vid
    return found


def metadata_xml(vlans: dict[str, int]) -> str:
    """The metadata entry for ``vlans``; libvirt puts it into ``NS``."""
    entry = NicsEntry()
    for mac, vid in sorted(vlans.items()):
        entry.nics.add(make(NicVlan, mac=mac, vlan=vid))
    return entry.to_xml()


def set_nic_vlan(runner: JobRunner, host: HostConnection, domain: Domain, mac: str,
                 vlan: int | None, *, apply: PortVlanSetter | None = None) -> Job:
    """Record (or with ``vlan=None`` forget) the VLAN of the NIC ``mac``; apply it now if
    the machine runs."""
    mac = mac.lower()
    nic = next((n for n in domain.summary.nics if n.mac.lower() == mac), None)
    if nic is None:
        raise VirtStudioError(f"{domain.name} has no network interface {mac}.")
    if vlan is not None:
        validate_vlan_id(vlan)
    vlans = dict(nic_vlans(domain.xml))
    if vlan is None:
        vlans.pop(mac, None)
    else:
        vlans[mac] = vlan
    setter = apply or privileged_port_vlan
    name = domain.name

    def work(job: Job) -> None:
        dom = host.virconn.lookupByUUIDString(domain.uuid)
        job.report(None, f"Recording VLAN {vlan} for {mac} in {name}'s metadata"
                   if vlan else f"Forgetting the VLAN of {mac}")
        store_vlans(dom, vlans)
        host.refresh_domain(domain.uuid)  # not every driver sends a metadata event
        if vlan and dom.isActive():
            apply_running(job, dom.XMLDesc(0), setter)

    what = f"VLAN {vlan}" if vlan else "no VLAN"
    return runner.submit(f"Put {name}'s NIC on {what}", work, host=host.name, target=name)


def store_vlans(dom: libvirt.virDomain, vlans: dict[str, int]) -> None:
    """Write the MAC-to-VLAN map into the domain's metadata (live and stored)."""
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent() else 0
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, metadata_xml(vlans), KEY, NS, flags)


def privileged_port_vlan(port: str, vlan: int) -> None:
    run_privileged("set_port_vlan", port=port, pvid=vlan)


def apply_running(job: Job, domain_xml: str, setter: PortVlanSetter) -> int:
    """Put each tap of a running machine into its recorded VLAN; return how many."""
    vlans = nic_vlans(domain_xml)
    done = 0
    for nic in parse_domain_xml(domain_xml).nics:
        vid = vlans.get(nic.mac.lower())
        if vid is None:
            continue
        if not nic.target_dev:
            job.log(f"{nic.mac} has no tap device yet; VLAN {vid} not applied")
            continue
        job.report(None, f"VLAN {vid} on {nic.target_dev} ({nic.mac})")
        setter(nic.target_dev, vid)
        done += 1
    return done


class NicVlanApplier:
    """Applies recorded VLANs whenever a machine starts, on every host it watches."""

    def __init__(self, runner: JobRunner, setter: PortVlanSetter | None = None) -> None:
        self.runner = runner
        self.setter = setter or privileged_port_vlan

    def watch(self, host: HostConnection) -> None:
        host.domain_lifecycle.connect(self._on_lifecycle)

    def _on_lifecycle(self, host: HostConnection, uuid: str, event: int) -> None:
        # On the host's worker, right after the refresh: the entity has the new taps.
        if event != libvirt.VIR_DOMAIN_EVENT_STARTED:
            return
        entity = host.domains.get(uuid)
        if entity is None or not nic_vlans(entity.xml):
            return  # nothing recorded: no task to show
        xml, name = entity.xml, entity.name

        def work(job: Job) -> None:
            apply_running(job, xml, self.setter)

        self.runner.submit(f"Apply VLANs of {name}", work, host=host.name, target=name)
