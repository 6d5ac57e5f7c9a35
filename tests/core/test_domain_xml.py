import pytest

from virtstudio.core.domain_xml import parse_domain_xml

XML = """<domain type='kvm'>
  <name>web</name><uuid>11111111-2222-3333-4444-555555555555</uuid>
  <title>Web server</title>
  <memory unit='GiB'>4</memory><currentMemory unit='MiB'>2048</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/><boot dev='cdrom'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='volume' device='disk'><source pool='data' volume='web-data'/>
      <target dev='vdb' bus='virtio'/><shareable/></disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='default'/>
      <model type='virtio'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
    <graphics type='spice' port='5901' autoport='no' listen='127.0.0.1'/>
    <graphics type='vnc' port='-1' autoport='yes'>
      <listen type='address' address='0.0.0.0'/></graphics>
    <video><model type='qxl'/></video>
  </devices>
</domain>"""


def test_parses_summary():
    s = parse_domain_xml(XML)
    assert (s.name, s.title, s.domain_type, s.arch, s.machine) == (
        "web", "Web server", "kvm", "x86_64", "q35")
    assert s.vcpus == 2
    assert s.memory_kib == 4 * 1024 * 1024
    assert s.current_memory_kib == 2048 * 1024
    assert [d.target for d in s.disks] == ["vda", "vdb", "sda"]
    assert s.disks[0].fmt == "qcow2"
    assert s.disks[1].source == "data/web-data" and s.disks[1].shareable
    assert s.disks[2].source == "" and s.disks[2].readonly
    assert [(n.kind, n.source) for n in s.nics] == [("network", "default"), ("bridge", "br0")]
    assert s.graphics[0].port == 5901 and s.graphics[1].port is None
    assert s.graphics[1].listen == "0.0.0.0"
    assert s.video == "qxl" and s.boot == ("hd", "cdrom")


@pytest.mark.parametrize("bad", ["", "<domain", "<network/>", "not xml at all"])
def test_rejects_non_domain_xml(bad):
    with pytest.raises(ValueError):
        parse_domain_xml(bad)


def test_boot_order_from_devices_and_disk_cache():
    s = parse_domain_xml("""<domain type='kvm'><name>b</name><os><type>hvm</type></os>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' cache='none'/>
          <target dev='vda' bus='virtio'/><boot order='2'/></disk>
        <interface type='network'><source network='default'/><boot order='1'/></interface>
        <video><model type='vga'/></video>
        <video><model type='virtio' primary='yes'/></video>
      </devices></domain>""")
    assert s.boot == ("network", "hd")
    assert s.disks[0].cache == "none"
    assert s.video == "virtio"  # the primary card, wherever it is listed


def test_metadata_with_foreign_namespaces_and_entities_parse():
    s = parse_domain_xml("""<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/hostname'>]>
      <domain type='kvm'><name>n&x;</name><metadata><a:b xmlns:a='urn:a'/></metadata>
      </domain>""")
    assert s.name == "n"
