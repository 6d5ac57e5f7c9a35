"""Snapshot and clone descriptions, names and checks, without Qt or a daemon."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import libvirt
import pytest

from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.machines.clone import DiskMode, check_clone, clone_disks, clone_xml
from virtstudio.machines.disk_files import name_problem
from virtstudio.machines.snapshots import (
    SnapshotKind,
    check_new_snapshot,
    parse_snapshot,
    planned_files,
    snapshot_xml,
)

SOURCE = """<domain type='qemu'><name>web</name><uuid>9d3c2b0e-1111-4222-8333-444455556666</uuid>
<memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='/img/web.qcow2'/><backingStore type='file'><source file='/img/gold.qcow2'/>
</backingStore><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='/img/web-data.raw'/><target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='cdrom'><source file='/iso/debian.iso'/><target dev='sda' bus='sata'/>
<readonly/></disk>
<interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/>
<target dev='vnet7'/></interface>
<serial type='pty'><log file='/var/log/web.log'/><target port='0'/></serial>
<graphics type='vnc' port='5907' autoport='no'/>
</devices></domain>"""


def domain(state: int = libvirt.VIR_DOMAIN_SHUTOFF, xml: str = SOURCE) -> Domain:
    return Domain("qemu:///system", "9d3c2b0e-1111-4222-8333-444455556666", xml, state, 0)


@pytest.mark.parametrize("name, says", [
    ("", "Enter a name"), ("my vm", "spaces or slashes"), ("a/b", "spaces or slashes"),
    ("tab\there", "spaces or slashes"), ("-lead", "starting with a letter"),
    ("x" * 65, "at most 64"), ("ok-name_1.2", ""),
])
def test_names(name, says):
    problem = name_problem(name, "machine")
    assert (says in problem) if says else problem == ""


def test_clone_gets_new_identity_and_its_own_files():
    used = {"52:54:00:aa:bb:cc"}
    xml = clone_xml(SOURCE, "web2", {"vda": ("/img/web2-vda.qcow2", "qcow2"),
                                     "vdb": ("/img/web2-vdb.img", "raw")},
                    used, random.Random(7))
    root = ET.fromstring(xml)
    assert root.findtext("name") == "web2"
    assert root.find("uuid") is None  # libvirt makes a new one
    assert root.find("os/nvram") is None
    mac = root.find("devices/interface/mac").get("address")
    assert mac.startswith("52:54:00:") and mac != "52:54:00:aa:bb:cc" and mac in used
    assert root.find("devices/interface/target") is None
    disks = {d.find("target").get("dev"): d for d in root.findall("devices/disk")}
    assert disks["vda"].find("source").get("file") == "/img/web2-vda.qcow2"
    assert disks["vda"].find("backingStore") is None
    assert disks["vdb"].find("driver").get("type") == "raw"
    assert disks["sda"].find("source").get("file") == "/iso/debian.iso"  # shared
    assert root.find("devices/serial/log") is None
    gfx = root.find("devices/graphics")
    assert gfx.get("port") is None and gfx.get("autoport") == "yes"


def test_clone_choices_and_refusals(test_host):
    web = domain()
    disks = {d.target: d for d in clone_disks(web)}
    assert disks["vda"].modes == (DiskMode.COPY, DiskMode.LINKED)
    assert disks["sda"].modes == (DiskMode.SHARE,)
    existing = next(iter(test_host.domains.values())).name
    assert "already" in check_clone(test_host, web, existing, {})
    assert "spaces" in check_clone(test_host, web, "new one", {})
    assert "cannot be cloned as" in check_clone(test_host, web, "fresh",
                                                {"sda": DiskMode.LINKED})
    assert "Shut web down first" in check_clone(
        test_host, domain(libvirt.VIR_DOMAIN_RUNNING), "fresh", {})
    assert check_clone(test_host, web, "fresh", {"vda": DiskMode.LINKED}) == ""


def test_external_snapshot_xml_names_files_beside_each_disk():
    running = domain(libvirt.VIR_DOMAIN_RUNNING)
    xml, flags = snapshot_xml(running, "s1", "note <1>", SnapshotKind.EXTERNAL_MEMORY)
    root = ET.fromstring(xml)
    assert flags == 0 and root.findtext("description") == "note <1>"
    assert root.find("memory").get("file") == "/img/web.s1.mem"
    disks = {d.get("name"): d for d in root.findall("disks/disk")}
    assert disks["vda"].find("source").get("file") == "/img/web-vda.s1.qcow2"
    assert disks["vdb"].find("source").get("file") == "/img/web-vdb.s1.qcow2"
    assert disks["sda"].get("snapshot") == "no"  # read-only media stay as they are
    _xml, flags = snapshot_xml(running, "s2", "", SnapshotKind.EXTERNAL_DISK)
    assert flags == libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    assert planned_files(running, "s1", SnapshotKind.INTERNAL) == []


def test_snapshot_checks():
    off = domain()
    assert "shut off" in check_new_snapshot(off, [], "s1", SnapshotKind.EXTERNAL_MEMORY)
    assert "vdb is not" in check_new_snapshot(off, [], "s1", SnapshotKind.INTERNAL)
    assert "already" in check_new_snapshot(off, ["s1"], "s1", SnapshotKind.EXTERNAL_DISK)
    assert check_new_snapshot(off, [], "s1", SnapshotKind.EXTERNAL_DISK) == ""


def test_parse_snapshot_reads_base_overlay_and_memory():
    info = parse_snapshot(
        "<domainsnapshot><name>s2</name><parent><name>s1</name></parent>"
        "<state>running</state><creationTime>100</creationTime>"
        "<memory snapshot='external' file='/img/web.s2.mem'/>"
        "<disks><disk name='vda' snapshot='external'><source file='/img/web-vda.s2.qcow2'/>"
        "</disk></disks><domain><devices><disk><source file='/img/web-vda.s1.qcow2'/>"
        "<target dev='vda'/></disk></devices></domain></domainsnapshot>", current=True)
    assert (info.parent, info.created, info.has_memory, info.external) == ("s1", 100, True, True)
    assert info.disks[0].base == "/img/web-vda.s1.qcow2"
    assert info.disks[0].overlay == "/img/web-vda.s2.qcow2"
    assert info.kind_label == "external, with memory"


def test_remote_hosts_are_refused_for_image_work():
    from virtstudio.machines.disk_files import require_local

    with pytest.raises(VirtStudioError, match="remote host"):
        require_local("qemu+ssh://root@kvm1/system", "Cloning")
    require_local("qemu:///system", "Cloning")
