"""Connect a machine to a host bridge or a libvirt network: move its NIC, or add one."""

from __future__ import annotations

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
from virtstudio.xml import Domain as DomainXML
from virtstudio.xml import Interface, make
from virtstudio.xml.io import define, domain_for_edit

KINDS = ("bridge", "network")


def _interface(domain: DomainXML, mac: str) -> Interface:
    for nic in domain.devices.interfaces if domain.devices is not None else ():
        if (nic.mac or "").lower() == mac.lower():
            return nic
    raise VirtStudioError(f"There is no network interface {mac}.")


def nic_macs(domain_xml: str) -> list[str]:
    """The MAC of each of the machine's network interfaces, in order, lower case."""
    devices = DomainXML.from_xml(domain_xml).devices
    return [(n.mac or "").lower() for n in devices.interfaces if n.mac] \
        if devices is not None else []


def moved_interface_xml(domain_xml: str, mac: str, kind: str, target: str) -> str:
    """The running NIC ``mac`` re-pointed at ``target``, for a live update: everything
    else (model, MAC, driver, address, boot order) kept."""
    nic = _interface(DomainXML.from_xml(domain_xml), mac)
    _check_movable(nic)
    nic.plug(kind, target)
    # The live tap name and alias belong to the old connection.
    nic.target_dev = None
    nic.alias = None
    return nic.to_xml()


def move_interface(domain: DomainXML, mac: str, kind: str, target: str) -> None:
    """Re-point the NIC ``mac`` of a (saved) configuration at ``target``, in place."""
    nic = _interface(domain, mac)
    _check_movable(nic)
    nic.plug(kind, target)


def _check_movable(nic: Interface) -> None:
    if nic.type not in (*KINDS, "direct"):
        raise VirtStudioError(f"{nic.mac} is a {nic.type} card: it cannot be connected to "
                              "a bridge or network.")


def new_interface_xml(kind: str, target: str) -> str:
    nic = make(Interface, type=kind)
    nic.plug(kind, target)
    nic.model = "virtio"
    return nic.to_xml()


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
    if nic is not None and nic.kind not in (*KINDS, "direct"):
        raise VirtStudioError(f"{domain.name}'s {nic.mac} is a {nic.kind} card: it cannot "
                              "be connected to a bridge or network.")
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
                domain_xml = domain_for_edit(dom)
                domain_xml.ensure_devices().add(Interface.from_xml(
                    new_interface_xml(kind, target)))
                define(host.virconn, domain_xml)
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
                saved = domain_for_edit(dom)
                move_interface(saved, nic.mac, kind, target)
                define(host.virconn, saved)
        if vlan is not None and moved:
            vlans = {**nic_vlans(dom.XMLDesc(0)), moved: vlan}
            job.report(None, f"Recording VLAN {vlan} for {moved}")
            store_vlans(dom, vlans)
            if dom.isActive():
                apply_running(job, dom.XMLDesc(0), apply or privileged_port_vlan)
        host.refresh_domain(uuid)

    return runner.submit(f"Connect {name} to {target}", work, host=host.name, target=name)
