"""Never stricter than libvirt: what libvirt's test driver loads, VirtStudio opens and shows.

Fixtures here are written the way real hosts look: many machine types and
architectures, every device kind of libvirt's domain schema, metadata in
foreign namespaces with nested elements named like libvirt's own (<domain>,
<name>), networks with a DNS <domain>, machines kept in files of their own,
and names libvirt takes as written.  Each is first loaded by libvirt's test
driver (so it is real-world valid), then must pass every check VirtStudio
makes before libvirt sees it: the fixture pre-check, the domain XML parser,
the XML tab's checks, and the host must show every machine.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest
from PySide6.QtCore import QModelIndex

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.demo import validate_fixture
from virtstudio.core.domain_xml import parse_domain_xml
from virtstudio.machines.xml_edit import check_xml_edit

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"

# Every device element of libvirt's domain schema, as a real configuration writes it.
ALL_DEVICES = """
<emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2' discard='unmap'/>
  <source file='/var/lib/libvirt/images/a.qcow2'/><target dev='vda' bus='virtio'/>
  </disk>
<disk type='block' device='lun'><source dev='/dev/sdz'/><target dev='sda' bus='scsi'/></disk>
<disk type='file' device='cdrom'><target dev='sdb' bus='sata'/><readonly/></disk>
<disk type='network' device='disk'><driver name='qemu' type='raw'/>
  <source protocol='rbd' name='pool/image'><host name='mon1' port='6789'/></source>
  <target dev='vdb' bus='virtio'/></disk>
<disk type='volume' device='disk'><source pool='default' volume='v.qcow2'/>
  <target dev='vdc' bus='virtio'/></disk>
<disk type='dir' device='floppy'><source dir='/srv/floppy'/><target dev='fda' bus='fdc'/>
</disk>
<controller type='usb' model='qemu-xhci'/>
<controller type='scsi' model='virtio-scsi'/>
<controller type='sata'/>
<controller type='virtio-serial'/>
<controller type='pci' model='pcie-root'/>
<lease><lockspace>ls</lockspace><key>k</key><target path='/var/lib/lease'/></lease>
<filesystem type='mount' accessmode='passthrough'><source dir='/srv/share'/>
  <target dir='share'/></filesystem>
<interface type='network'><mac address='52:54:00:aa:bb:01'/><source network='default'/>
  <model type='virtio'/></interface>
<interface type='bridge'><source bridge='br0'/><model type='e1000e'/>
  <vlan><tag id='42'/></vlan></interface>
<interface type='direct'><source dev='eth9' mode='bridge'/></interface>
<interface type='user'/>
<interface type='ethernet'><target dev='tap-vs'/></interface>
<input type='tablet' bus='usb'/>
<input type='keyboard' bus='ps2'/>
<input type='mouse' bus='virtio'/>
<graphics type='vnc' port='-1' autoport='yes'><listen type='address' address='127.0.0.1'/>
</graphics>
<graphics type='spice' autoport='yes'><listen type='socket' socket='/run/s.sock'/></graphics>
<graphics type='egl-headless'/>
<sound model='ich9'/>
<audio id='1' type='none'/>
<video><model type='qxl' ram='65536' vram='65536' heads='1'/></video>
<hostdev mode='subsystem' type='usb' managed='yes'>
  <source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
<hostdev mode='subsystem' type='pci' managed='yes'>
  <source><address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/></source></hostdev>
<redirdev bus='usb' type='spicevmc'/>
<redirfilter><usbdev allow='yes'/></redirfilter>
<smartcard mode='passthrough' type='spicevmc'/>
<hub type='usb'/>
<serial type='pty'><target port='0'/></serial>
<parallel type='file'><source path='/tmp/lpt'/><target port='0'/></parallel>
<console type='pty'><target type='serial' port='0'/></console>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
<watchdog model='i6300esb' action='reset'/>
<memballoon model='virtio'><stats period='10'/></memballoon>
<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
<nvram><address type='spapr-vio' reg='0x3000'/></nvram>
<panic model='isa'/>
<shmem name='shm0'><model type='ivshmem-plain'/><size unit='M'>4</size></shmem>
<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target></memory>
<iommu model='intel'/>
<vsock model='virtio'><cid auto='yes'/></vsock>
<crypto model='virtio' type='qemu'><backend model='builtin' queues='1'/></crypto>
"""

FOREIGN_METADATA = """
<metadata>
  <app:inventory xmlns:app='https://example.com/inventory/2'>
    <domain>corp.example.com</domain>
    <name></name>
    <uuid>not-a-uuid</uuid>
    <devices><disk>none</disk></devices>
    <owner team='web'><name>ops</name></owner>
  </app:inventory>
  <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
    <libosinfo:os id='http://debian.org/debian/12'/>
  </libosinfo:libosinfo>
  <vs:groups xmlns:vs='http://virtstudio.org/xmlns/groups/1.0'>
    <vs:folder>prod/eu</vs:folder><vs:tag>web</vs:tag></vs:groups>
</metadata>
"""


def _machine(name: str, *, arch: str = "x86_64", machine: str = "", devices: str = "",
             extra: str = "", state: int = 5, domain_type: str = "test") -> str:
    machine_attr = f" machine='{machine}'" if machine else ""
    return (f"<domain type='{domain_type}'><name>{name}</name>{extra}"
            "<memory unit='MiB'>512</memory><currentMemory unit='KiB'>524288</currentMemory>"
            "<vcpu placement='static' current='1'>2</vcpu>"
            f"<os><type arch='{arch}'{machine_attr}>hvm</type><boot dev='hd'/></os>"
            f"<devices>{devices}</devices><test:runstate>{state}</test:runstate></domain>")


MACHINE_TYPES = [
    ("x86_64", "pc"), ("x86_64", "q35"), ("x86_64", "pc-i440fx-7.2"), ("x86_64", "isapc"),
    ("x86_64", "microvm"), ("i686", "pc"), ("aarch64", "virt"), ("armv7l", "vexpress-a15"),
    ("ppc64le", "pseries"), ("ppc64", "mac99"), ("s390x", "s390-ccw-virtio"),
    ("riscv64", "virt"), ("mips64el", "malta"), ("sparc64", "sun4u"), ("x86_64", ""),
]

FIXTURES = {
    "machine-types": "".join(
        _machine(f"vstest-{arch}-{machine or 'default'}", arch=arch, machine=machine,
                 state=1 + i % 7)
        for i, (arch, machine) in enumerate(MACHINE_TYPES)),
    "every-device": _machine(
        "vstest-devices", machine="q35", devices=ALL_DEVICES, state=1,
        # A memory device needs slots and a NUMA node to plug into.
        extra="<maxMemory slots='4' unit='MiB'>4096</maxMemory><cpu><numa>"
              "<cell id='0' cpus='0-1' memory='512' unit='MiB'/></numa></cpu>"),
    "foreign-metadata": _machine(
        "vstest-metadata", extra="<title>Web &lt;front&gt;</title>"
        "<description>multi\nline</description>" + FOREIGN_METADATA),
    "network-with-dns-domain": _machine("vstest-netdomain") + (
        "<network><name>vstest-lan</name><domain name='lan.example' localOnly='yes'/>"
        "<forward mode='nat'/><ip address='10.9.0.1' netmask='255.255.255.0'>"
        "<dhcp><range start='10.9.0.10' end='10.9.0.20'/></dhcp></ip></network>"),
    "names-as-written": _machine("vstest-spaced name") + _machine(" ")
    + _machine("vstest-ünïcödé-名前"),
    "no-machines": "<network><name>vstest-only</name></network>",
    "uuid-without-dashes": _machine("vstest-uuid", extra="<uuid>"
                                    "4dea22b31d52d8f32516782e98ab3fa0</uuid>"),
}


def _node(body: str) -> str:
    return f"<node xmlns:test='{TEST_NS}'>{body}</node>"


def _write(tmp_path, key: str) -> tuple[str, int]:
    path = tmp_path / f"{key}.xml"
    path.write_text(_node(FIXTURES[key]), encoding="utf-8")
    return str(path), _node(FIXTURES[key]).count("<test:runstate>")


def _libvirt_domains(path: str) -> list[tuple[str, str]]:
    """(name, XML) of every machine libvirt's test driver loads from ``path``."""
    conn = libvirt.open(f"test://{path}")
    try:
        return [(d.name(), d.XMLDesc(0)) for d in conn.listAllDomains()]
    finally:
        conn.close()


@pytest.mark.parametrize("key", sorted(FIXTURES))
def test_what_libvirt_loads_passes_every_check_and_shows_every_machine(tmp_path, key):
    path, expected = _write(tmp_path, key)
    domains = _libvirt_domains(path)
    assert len(domains) == expected  # real-world valid: libvirt itself loads it whole

    validate_fixture(tmp_path / f"{key}.xml")
    for name, xml in domains:
        summary = parse_domain_xml(xml)
        assert summary.name == name
        assert check_xml_edit(xml, xml) == ""

    host = HostConnection(f"test://{path}")
    try:
        host.open().result(30)
        assert host.state is ConnectionState.CONNECTED, host.error
        assert sorted(d.name for d in host.domains.values()) == sorted(n for n, _ in domains)
    finally:
        host.shutdown()


def test_a_machine_kept_in_its_own_file_is_no_machine_without_a_name(tmp_path):
    (tmp_path / "vstest-own-file.xml").write_text(
        _machine("vstest-own-file").replace("<test:runstate>5</test:runstate>", ""))
    node = tmp_path / "host.xml"
    node.write_text(_node("<domain file='vstest-own-file.xml'/>"))
    assert [n for n, _ in _libvirt_domains(str(node))] == ["vstest-own-file"]
    validate_fixture(node)
    host = HostConnection(f"test://{node}")
    try:
        host.open().result(30)
        assert [d.name for d in host.domains.values()] == ["vstest-own-file"]
    finally:
        host.shutdown()


def test_the_xml_tab_takes_the_same_uuid_written_another_way(tmp_path):
    path, _ = _write(tmp_path, "uuid-without-dashes")
    ((_, xml),) = _libvirt_domains(path)
    root = ET.fromstring(xml)
    root.find("uuid").text = "4DEA22B3-1D52-D8F3-2516-782E98AB3FA0"
    assert check_xml_edit(xml, ET.tostring(root, encoding="unicode")) == ""
    root.find("uuid").text = "4dea22b31d52d8f32516782e98ab3fa0"
    assert check_xml_edit(xml, ET.tostring(root, encoding="unicode")) == ""


def test_the_main_window_lists_every_machine_of_every_fixture(make_main_window, qtbot,
                                                               tmp_path):
    window = make_main_window()
    expected = 0
    for key in sorted(FIXTURES):
        path, count = _write(tmp_path, key)
        window.inventory.add(f"test://{path}")
        expected += count
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == expected, timeout=20000)
    window.host_view.setCurrentIndex(QModelIndex())  # every host's machines, not one host's
    qtbot.waitUntil(lambda: window.vm_proxy.rowCount() == expected, timeout=20000)
    for row in range(window.vm_model.rowCount()):
        domain = window.vm_model.domain_at(row)
        assert window.select_domain(domain.name)
        qtbot.waitUntil(lambda d=domain: window.details.domain is d, timeout=20000)
        # Every tab of the details pane opens on it.
        for tab in range(window.details.tabs.count()):
            window.details.tabs.setCurrentIndex(tab)
    failed = [h.uri for h in window.inventory.connections
              if h.state is not ConnectionState.CONNECTED]
    assert not failed
