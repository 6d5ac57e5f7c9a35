"""Pool specs: fields per type, checks in plain words, the XML libvirt gets, discovery."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from virtstudio.storage.pools import (
    POOL_TYPES,
    TYPE_FIELDS,
    PoolSpec,
    check_pool_spec,
    discovery_xml,
    parse_found_sources,
    pool_xml,
)

GOOD = {
    "dir": PoolSpec("dir", "images", target_path="/var/lib/libvirt/images/x"),
    "fs": PoolSpec("fs", "fsp", source_device="/dev/sdb1", target_path="/mnt/fsp"),
    "netfs": PoolSpec("netfs", "nfs1", source_host="nas.lan", source_dir="/export/vm",
                      target_path="/mnt/nfs1"),
    "logical": PoolSpec("logical", "vgp", source_name="vg_vms", source_device="/dev/sdb /dev/sdc"),
    "disk": PoolSpec("disk", "spare", source_device="/dev/sdc"),
    "iscsi": PoolSpec("iscsi", "san", source_host="10.0.0.5:3260",
                      source_device="iqn.2024-01.lan.example:storage"),
    "rbd": PoolSpec("rbd", "ceph", source_host="mon1.lan mon2.lan:6789", source_name="rbd",
                    auth_user="libvirt", auth_secret="2a5b08e4-3dea-4fb7-a4cb-5a0a2a4a3c1e"),
}


def test_every_type_has_fields_and_a_valid_example():
    assert set(TYPE_FIELDS) == set(POOL_TYPES) == set(GOOD)
    for spec in GOOD.values():
        assert check_pool_spec(spec) == "", spec


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_xml_is_what_libvirt_parses(pool_type, tmp_path):
    # libvirt's own parser (the test driver) accepts each definition as is.
    conn = libvirt.open("test:///default")
    try:
        pool = conn.storagePoolDefineXML(pool_xml(GOOD[pool_type]), 0)
        back = ET.fromstring(pool.XMLDesc(0))
        assert back.get("type") == pool_type and back.findtext("name") == GOOD[pool_type].name
        pool.undefine()
    finally:
        conn.close()


def test_xml_details():
    disk = ET.fromstring(pool_xml(GOOD["disk"]))
    assert disk.find("source/device").get("path") == "/dev/sdc"
    assert disk.find("source/format").get("type") == "gpt"
    assert disk.findtext("target/path") == "/dev"
    lvm = ET.fromstring(pool_xml(GOOD["logical"]))
    assert [d.get("path") for d in lvm.findall("source/device")] == ["/dev/sdb", "/dev/sdc"]
    assert lvm.findtext("source/name") == "vg_vms" and lvm.findtext("target/path") == "/dev/vg_vms"
    rbd = ET.fromstring(pool_xml(GOOD["rbd"]))
    assert [(h.get("name"), h.get("port")) for h in rbd.findall("source/host")] == [
        ("mon1.lan", None), ("mon2.lan", "6789")]
    assert rbd.find("source/auth/secret").get("uuid").startswith("2a5b08e4")
    iscsi = ET.fromstring(pool_xml(GOOD["iscsi"]))
    assert iscsi.find("source/host").get("port") == "3260"
    # A name with XML characters cannot get through the checks, and is escaped anyway.
    assert "&lt;" in pool_xml(PoolSpec("dir", "a<b", target_path="/x"))


@pytest.mark.parametrize(("spec", "fragment"), [
    (PoolSpec("dir", "", target_path="/x"), "Enter a name"),
    (PoolSpec("dir", "my pool", target_path="/x"), "no spaces"),
    (PoolSpec("dir", "../etc", target_path="/x"), "starting with a letter"),
    (PoolSpec("dir", "taken", target_path="/x"), "has a pool called taken"),
    (PoolSpec("dir", "p"), "Enter the folder"),
    (PoolSpec("dir", "p", target_path="relative/path"), "absolute path"),
    (PoolSpec("dir", "p", target_path="/var/../etc"), "“..”"),
    (PoolSpec("fs", "p", source_device="sdb1", target_path="/mnt/p"), "not a device path"),
    (PoolSpec("fs", "p", source_device="/dev/sdb1", source_format="ntfs3", target_path="/m"),
     "format is one of"),
    (PoolSpec("netfs", "p", source_host="nas;rm", source_dir="/e", target_path="/m"),
     "not a host name"),
    (PoolSpec("netfs", "p", source_host="nas.lan:99999", source_dir="/e", target_path="/m"),
     "not a port"),
    (PoolSpec("netfs", "p", source_host="nas.lan", source_dir="export", target_path="/m"),
     "exported folder must be an absolute"),
    (PoolSpec("logical", "p", source_name="-vg"), "not a volume group name"),
    (PoolSpec("disk", "p", source_device="/dev/sdc", source_format="zfs"), "format is one of"),
    (PoolSpec("iscsi", "p", source_host="san", source_device="storage1"), "is an IQN"),
    (PoolSpec("rbd", "p", source_host="mon1", source_name="rbd", auth_user="x"), "or neither"),
    (PoolSpec("rbd", "p", source_host="mon1", source_name="rbd", auth_user="x",
              auth_secret="key"), "by its UUID"),
    (PoolSpec("zfs", "p"), "Unknown pool type"),
])
def test_bad_specs_are_refused_in_words(spec, fragment):
    assert fragment in check_pool_spec(spec, {"taken"})


def test_discovery_request_and_answers():
    assert discovery_xml("logical") is None
    request = ET.fromstring(discovery_xml("netfs", "nas.lan"))
    assert request.find("host").get("name") == "nas.lan"
    assert request.find("format").get("type") == "nfs"
    answer = ("<sources><source><host name='nas.lan'/><dir path='/export/vm'/>"
              "<format type='nfs'/></source></sources>")
    (found,) = parse_found_sources("netfs", answer)
    assert found.values == {"source_host": "nas.lan", "source_dir": "/export/vm"}
    lvm = ("<sources><source><device path='/dev/sdb'/><name>vg_vms</name>"
           "<format type='lvm2'/></source></sources>")
    assert parse_found_sources("logical", lvm)[0].values == {"source_name": "vg_vms"}
    assert parse_found_sources("logical", lvm)[0].label == "vg_vms on /dev/sdb"
