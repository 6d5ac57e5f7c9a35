"""The declarative core: descriptors, placement, removal, the hardened parser."""

from __future__ import annotations

import pytest
from lxml import etree

from virtstudio.xml import (
    Disk,
    Domain,
    Graphics,
    Interface,
    MemoryAmount,
    Volume,
    XMLError,
    make,
    parse_element,
    to_text,
)

LIBVIRT_DUMP = """<domain type='kvm' id='3'>
  <name>vstest-dump</name>
  <metadata>
    <app1:foo xmlns:app1="http://app1.example.org/">bar</app1:foo>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>1</vcpu>
  <devices>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1' passwd='pw'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
</domain>"""


def canonical(text: str) -> str:
    return etree.tostring(etree.fromstring(text.encode()), method="c14n").decode()


def test_a_libvirt_dump_survives_unchanged_apart_from_quotes():
    domain = Domain.from_xml(LIBVIRT_DUMP)
    assert canonical(domain.to_xml()) == canonical(LIBVIRT_DUMP)


def test_foreign_prefixes_stay_after_an_edit():
    domain = Domain.from_xml(LIBVIRT_DUMP)
    domain.vcpu.count = 2
    assert '<app1:foo xmlns:app1="http://app1.example.org/">bar</app1:foo>' in domain.to_xml()
    assert "ns0:" not in domain.to_xml()


def test_fields_read_with_types_and_defaults():
    domain = Domain.from_xml(LIBVIRT_DUMP)
    gfx = domain.devices.graphics[0]
    assert (gfx.type, gfx.port, gfx.autoport, gfx.passwd) == ("vnc", 5900, True, "pw")
    assert gfx.websocket is None and gfx.keymap is None
    assert domain.id == 3 and domain.memory_kib == 1048576 and domain.vcpus == 1
    assert Disk().device == "disk"  # the declared default when the attribute is absent


def test_setting_none_removes_and_prunes_empty_children():
    disk = Disk.from_xml("<disk><driver cache='none'/><target dev='vda'/></disk>")
    disk.cache = None
    assert disk.to_xml() == '<disk><target dev="vda"/></disk>'
    disk.readonly = True
    disk.serial = "S1"
    assert disk.to_xml() == '<disk><target dev="vda"/><readonly/><serial>S1</serial></disk>'
    disk.readonly = False
    disk.serial = None
    assert disk.to_xml() == '<disk><target dev="vda"/></disk>'


def test_new_children_go_where_libvirt_puts_them():
    disk = Disk.from_xml("<disk><target dev='vda'/><address type='pci'/></disk>")
    disk.boot_order = 1
    disk.source_file = "/a"
    disk.driver_type = "raw"
    assert disk.to_xml() == ('<disk><driver type="raw"/><source file="/a"/><target dev="vda"/>'
                             '<boot order="1"/><address type="pci"/></disk>')


def test_devices_are_added_after_their_kind_in_libvirt_order():
    domain = Domain.from_xml("<domain><name>x</name></domain>")
    devices = domain.ensure_devices()
    devices.add(make(Graphics, type="vnc"))
    devices.add(make(Disk, target_dev="vda"))
    devices.add(make(Interface, type="user"))
    devices.add(make(Disk, target_dev="vdb"))
    tags = [e.tag for e in devices.element]
    assert tags == ["disk", "disk", "interface", "graphics"]
    assert [d.target_dev for d in devices.disks] == ["vda", "vdb"]


def test_indentation_is_copied_for_new_children():
    domain = Domain.from_xml("<domain>\n  <name>x</name>\n  <devices/>\n</domain>")
    domain.title = "T"
    domain.on_crash = "destroy"
    assert domain.to_xml() == ("<domain>\n  <name>x</name>\n  <title>T</title>\n"
                               "  <on_crash>destroy</on_crash>\n  <devices/>\n</domain>")
    domain.title = None
    assert domain.to_xml() == ("<domain>\n  <name>x</name>\n"
                               "  <on_crash>destroy</on_crash>\n  <devices/>\n</domain>")


def test_a_device_is_written_without_the_documents_whitespace():
    domain = Domain.from_xml("<domain>\n  <devices>\n    <disk type='file'/>\n  </devices>\n"
                             "</domain>")
    assert domain.devices.disks[0].to_xml() == '<disk type="file"/>'


def test_nodes_compare_by_element():
    domain = Domain.from_xml(LIBVIRT_DUMP)
    assert domain.devices.graphics[0] == domain.devices.graphics[0]
    assert domain.devices.graphics[0] in list(domain.devices.graphics)


@pytest.mark.parametrize(("unit", "value", "kib"), [
    (None, "5", 5), ("KiB", "5", 5), ("MiB", "2", 2048), ("G", "1", 1024**2),
    ("MB", "1", 976), ("bytes", "2048", 2)])
def test_memory_units(unit, value, kib):
    attr = f" unit='{unit}'" if unit else ""
    assert MemoryAmount.from_xml(f"<memory{attr}>{value}</memory>").kib == kib


def test_volume_capacity_in_bytes():
    volume = Volume.from_xml("<volume><name>v</name><capacity unit='M'>3</capacity></volume>")
    assert volume.capacity_bytes == 3 * 1024**2


def test_plug_keeps_everything_but_the_connection():
    nic = Interface.from_xml("<interface type='network'><mac address='52:54:00:00:00:01'/>"
                             "<source network='default' portid='x' bridge='virbr0'/>"
                             "<model type='e1000'/><boot order='2'/></interface>")
    nic.plug("network", "other")  # the old network's port and bridge go with it
    assert nic.to_xml() == ('<interface type="network"><mac address="52:54:00:00:00:01"/>'
                            '<source network="other"/>'
                            '<model type="e1000"/><boot order="2"/></interface>')
    nic.plug("bridge", "br0")
    assert nic.to_xml() == ('<interface type="bridge"><mac address="52:54:00:00:00:01"/>'
                            '<source bridge="br0"/>'
                            '<model type="e1000"/><boot order="2"/></interface>')
    with pytest.raises(ValueError):
        nic.plug("hostdev", "x")


@pytest.mark.parametrize(("text", "line"), [("<domain>\n<name></domain>", 2), ("<a", 1)])
def test_bad_xml_is_an_xml_error_with_a_position(text, line):
    with pytest.raises(XMLError) as caught:
        parse_element(text)
    assert caught.value.line == line


def test_wrong_document_kind_is_refused():
    with pytest.raises(XMLError, match="Expected <domain>"):
        Domain.from_xml("<network/>")
    with pytest.raises(XMLError, match="empty"):
        Domain.from_xml("  ")


def test_comments_around_the_root_stay():
    text = "<!-- a -->\n<domain><!-- b --><name>x</name></domain>\n<!-- c -->"
    assert to_text(parse_element(text)) == text
