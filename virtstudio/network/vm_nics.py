"""Connect a machine to a host bridge or a libvirt network: move its NIC, or add one."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.network.host_links import validate_ifname, validate_vlan_id
from virtstudio.network.nic_vlan import (
    PortVlanSetter,
    apply_running,
    nic_vlans,
    privileged_port_vlan,
    store_vlans,
)

KINDS = ("bridge", "network")


def _interface_element(domain_xml: str, mac: str) -> ET.Element | None:
    root = ET.fromstring(domain_xml)
    for nic in root.findall("devices/interface"):
        found = nic.find("mac")
        if found is not None and found.get("address", "").lower() == mac.lower():
            return nic
    return None


def nic_macs(domain_xml: str) -> list[str]:
    """The MAC of each of the machine's network interfaces, in order, lower case."""
    return [m.get("address", "").lower()
            for m in ET.fromstring(domain_xml).findall("devices/interface/mac")]


def moved_interface_xml(domain_xml: str, mac: str, kind: str, target: str) -> str:
    """The NIC ``mac`` re-pointed at ``target``, everything else (model, MAC) kept."""
    nic = _interface_element(domain_xml, mac)
    if nic is None:
        raise VirtStudioError(f"There is no network interface {mac}.")
    nic.set("type", kind)
    for child in list(nic):
        # The live tap name and alias belong to the old connection.
        if child.tag in ("source", "target", "alias", "virtualport"):
            nic.remove(child)
    source = ET.Element("source", {kind: target})
    nic.insert(0, source)
    return ET.tostring(nic, encoding="unicode")


def moved_domain_xml(domain_xml: str, mac: str, kind: str, target: str) -> str:
    """The whole domain with the NIC ``mac`` re-pointed at ``target``."""
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    for index, nic in enumerate(list(devices) if devices is not None else []):
        found = nic.find("mac") if nic.tag == "interface" else None
        if found is not None and found.get("address", "").lower() == mac.lower():
            moved = ET.fromstring(moved_interface_xml(domain_xml, mac, kind, target))
            devices.remove(nic)
            devices.insert(index, moved)
            return ET.tostring(root, encoding="unicode")
    raise VirtStudioError(f"There is no network interface {mac}.")


def new_interface_xml(kind: str, target: str) -> str:
    return (f"<interface type='{kind}'><source {kind}='{target}'/>"
            "<model type='virtio'/></interface>")


def check_target(kind: str, target: str) -> None:
    if kind not in KINDS:
        raise VirtStudioError(f"Cannot connect a machine to a {kind}.")
    if kind == "bridge":
        validate_ifname(target)
    elif not target:
        raise VirtStudioError("Choose a network.")


def connect_domain(runner: JobRunner, host: HostConnection, domain: Domain, kind: str,
                   target: str, *, vlan: int | None = None, mac: str | None = None,
                   add: bool = False, apply: PortVlanSetter | None = None) -> Job:
    """Move the machine's NIC ``mac`` (its first when None) to ``target``; with ``add``,
    or when the machine has no NIC, add a new one there instead.

    With ``vlan`` (bridges only) the NIC's VLAN is recorded too and, once the NIC
    sits on the new bridge, applied to its tap.
    """
    check_target(kind, target)
    nics = domain.summary.nics
    if add or not nics:
        nic = None
    elif mac is None:
        nic = nics[0]
    else:
        nic = next((n for n in nics if n.mac.lower() == mac.lower()), None)
        if nic is None:
            raise VirtStudioError(f"{domain.name} has no network interface {mac}.")
    if vlan is not None:
        validate_vlan_id(vlan)
        if kind != "bridge":
            raise VirtStudioError("A VLAN can only be set for a NIC on a host bridge.")
    if nic is not None and nic.kind == kind and nic.source == target and vlan is None:
        raise VirtStudioError(f"{domain.name}'s {nic.mac} is on {target} already; nothing "
                              "was changed.")
    name, uuid = domain.name, domain.uuid

    def work(job: Job) -> None:
        dom = host.virconn.lookupByUUIDString(uuid)
        if nic is None:
            job.report(None, f"Adding a NIC on {kind} {target}")
            before = set(nic_macs(dom.XMLDesc(0)))
            if dom.isActive():
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
                if dom.isPersistent():
                    flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
                dom.attachDeviceFlags(new_interface_xml(kind, target), flags)
            else:
                # A shut-off machine's definition takes the card directly (drivers
                # without device attach too).
                root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                                                 | libvirt.VIR_DOMAIN_XML_SECURE))
                devices = root.find("devices")
                if devices is None:
                    devices = ET.SubElement(root, "devices")
                devices.append(ET.fromstring(new_interface_xml(kind, target)))
                host.virconn.defineXML(ET.tostring(root, encoding="unicode"))
            # libvirt picks the new card's MAC: it is the one that was not there before.
            moved = next((m for m in nic_macs(dom.XMLDesc(0)) if m not in before), "")
        else:
            moved = nic.mac.lower()
            job.report(None, f"Moving {nic.mac} to {kind} {target}")
            if dom.isActive():
                dom.updateDeviceFlags(moved_interface_xml(dom.XMLDesc(0), nic.mac, kind,
                                                          target),
                                      libvirt.VIR_DOMAIN_AFFECT_LIVE)
            if dom.isPersistent():
                # The stored definition is rewritten whole: drivers without device
                # updates (and shut-off machines) still get the change.
                inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                                       | libvirt.VIR_DOMAIN_XML_SECURE)
                host.virconn.defineXML(moved_domain_xml(inactive, nic.mac, kind, target))
        if vlan is not None and moved:
            vlans = {**nic_vlans(dom.XMLDesc(0)), moved: vlan}
            job.report(None, f"Recording VLAN {vlan} for {moved}")
            store_vlans(dom, vlans)
            if dom.isActive():
                apply_running(job, dom.XMLDesc(0), apply or privileged_port_vlan)
        host.refresh_domain(uuid)

    return runner.submit(f"Connect {name} to {target}", work, host=host.name, target=name)
