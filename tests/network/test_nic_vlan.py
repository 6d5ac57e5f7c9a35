"""A NIC's VLAN kept in the domain metadata (test driver), re-applied when the machine starts,
and connecting a machine to a bridge or network by moving its NIC."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.network.nic_vlan import NicVlanApplier, nic_vlans, set_nic_vlan
from virtstudio.network.vm_nics import connect_domain, moved_interface_xml

MAC = "52:54:00:00:bb:01"


NETWORK_LAN = ("<network><name>lan</name><bridge name='vslan0'/><forward mode='nat'/>"
               "<ip address='10.77.0.1' netmask='255.255.255.0'/></network>")


def open_host(tmp_path, name: str, interfaces: str):
    """A test-driver host with one machine ``name`` holding ``interfaces``, and "lan"."""
    path = tmp_path / f"{name}.xml"
    path.write_text(
        f"<node><domain type='test'><name>{name}</name><memory>65536</memory>"
        f"<os><type>hvm</type></os><devices>{interfaces}</devices></domain>"
        f"{NETWORK_LAN}</node>", encoding="utf-8")
    conn = HostConnection(f"test://{path}", stats_interval=0)
    conn.open().result(60)
    wait_for(lambda: conn.state is ConnectionState.CONNECTED and conn.domains)
    return conn


@pytest.fixture
def host(tmp_path):
    conn = open_host(tmp_path, "vlan-vm", "<interface type='bridge'><source bridge='br-vlan'/>"
                     f"<mac address='{MAC}'/><model type='virtio'/></interface>")
    runner = JobRunner()
    yield conn, runner
    runner.shutdown(wait=True)
    conn.shutdown()


def finished(job):
    wait_for(lambda: job.state.finished, timeout=10)
    return job


def test_vlan_is_recorded_in_metadata_and_refusals_change_nothing(host):
    conn, runner = host
    dom = conn.find_domain_by_name("vlan-vm")
    if dom.state.is_active:
        conn.call(lambda c: c.lookupByName("vlan-vm").destroy()).result(60)
        wait_for(lambda: not conn.find_domain_by_name("vlan-vm").state.is_active)
    with pytest.raises(VirtStudioError, match="outside 1-4094"):
        set_nic_vlan(runner, conn, dom, MAC, 4095)
    with pytest.raises(VirtStudioError, match="no network interface"):
        set_nic_vlan(runner, conn, dom, "52:54:00:99:99:99", 10)
    assert not runner.jobs
    job = finished(set_nic_vlan(runner, conn, dom, MAC.upper(), 10))
    assert job.state is JobState.DONE, job.log_text()
    # The metadata event refreshes the entity: the details pane reads it from there.
    wait_for(lambda: nic_vlans(conn.find_domain_by_name("vlan-vm").xml) == {MAC: 10})
    xml = conn.call(lambda c: c.lookupByName("vlan-vm").XMLDesc(0)).result(60)
    assert "https://virtstudio.org/xmlns/network/1" in xml and "vlan='10'" in xml.replace(
        '"', "'")


def test_start_event_applies_the_recorded_vlan(host):
    conn, runner = host
    applied: list[tuple[str, int]] = []
    applier = NicVlanApplier(runner, lambda port, vid: applied.append((port, vid)))
    applier.watch(conn)
    dom = conn.find_domain_by_name("vlan-vm")
    if dom.state.is_active:
        conn.call(lambda c: c.lookupByName("vlan-vm").destroy()).result(60)
        wait_for(lambda: not conn.find_domain_by_name("vlan-vm").state.is_active)
    finished(set_nic_vlan(runner, conn, conn.find_domain_by_name("vlan-vm"), MAC, 20))
    wait_for(lambda: nic_vlans(conn.find_domain_by_name("vlan-vm").xml))
    conn.call(lambda c: c.lookupByName("vlan-vm").create()).result(60)
    job = wait_for(lambda: next((j for j in runner.jobs
                                 if j.title == "Apply VLANs of vlan-vm"), None), timeout=30)
    finished(job)
    assert job.state is JobState.DONE, job.log_text()
    # The test driver names the tap testnetN but has no kernel device behind it, so the
    # port setter here only records; the real one runs in the kernel lab and on libvirtd.
    tap = conn.find_domain_by_name("vlan-vm").summary.nics[0].target_dev
    assert tap.startswith("testnet") and applied == [(tap, 20)]
    assert f"VLAN 20 on {tap}" in job.log_text()


def test_connect_moves_the_nic_and_keeps_its_mac(host):
    conn, runner = host
    if conn.find_domain_by_name("vlan-vm").state.is_active:
        conn.call(lambda c: c.lookupByName("vlan-vm").destroy()).result(60)
        wait_for(lambda: not conn.find_domain_by_name("vlan-vm").state.is_active)
    dom = conn.find_domain_by_name("vlan-vm")
    with pytest.raises(VirtStudioError, match="on br-vlan already"):
        connect_domain(runner, conn, dom, "bridge", "br-vlan")
    with pytest.raises(VirtStudioError, match="not a usable interface name"):
        connect_domain(runner, conn, dom, "bridge", "a-name-much-too-long")
    moved = moved_interface_xml(dom.xml, MAC, "network", "lan")
    assert '<source network="lan"/>' in moved and MAC in moved and "virtio" in moved
    job = finished(connect_domain(runner, conn, dom, "network", "lan"))
    assert job.state is JobState.DONE, job.log_text()
    wait_for(lambda: conn.find_domain_by_name("vlan-vm").summary.nics[0].source == "lan")
    nic = conn.find_domain_by_name("vlan-vm").summary.nics[0]
    assert nic.kind == "network" and nic.mac == MAC


def test_details_show_the_recorded_vlan(make_main_window, qtbot, tmp_path):
    from virtstudio.network.nic_vlan import NS

    path = tmp_path / "meta.xml"
    path.write_text(
        "<node><domain type='test'><name>meta-vm</name><memory>65536</memory>"
        f"<metadata><v:nics xmlns:v='{NS}'><v:nic mac='{MAC}' vlan='42'/></v:nics></metadata>"
        "<os><type>hvm</type></os><devices><interface type='bridge'>"
        f"<source bridge='br-vlan'/><mac address='{MAC}'/></interface>"
        "<interface type='bridge'><source bridge='br-vlan'/>"
        "<mac address='52:54:00:00:bb:02'/></interface></devices></domain></node>",
        encoding="utf-8")
    window = make_main_window()
    window.inventory.add(f"test://{path}")
    qtbot.waitUntil(lambda: window.select_domain("meta-vm"), timeout=20000)
    nics = window.details.nics
    assert nics.horizontalHeaderItem(4).text() == "VLAN"
    assert [nics.item(r, 4).text() for r in range(nics.rowCount())] == ["42", "—"]


def test_connect_moves_the_chosen_card_or_adds_one(tmp_path):
    second = "52:54:00:00:bb:02"
    conn = open_host(tmp_path, "two-nics", "".join(
        f"<interface type='network'><source network='lan'/><mac address='{mac}'/>"
        f"<model type='{model}'/></interface>" for mac, model in ((MAC, "virtio"),
                                                                   (second, "e1000e"))))
    runner = JobRunner()
    try:
        if conn.find_domain_by_name("two-nics").state.is_active:
            conn.call(lambda c: c.lookupByName("two-nics").destroy()).result(60)
            wait_for(lambda: not conn.find_domain_by_name("two-nics").state.is_active)
        dom = conn.find_domain_by_name("two-nics")
        with pytest.raises(VirtStudioError, match="no network interface 52:54:00:00:bb:09"):
            connect_domain(runner, conn, dom, "bridge", "br-b", mac="52:54:00:00:bb:09")
        assert not runner.jobs

        job = finished(connect_domain(runner, conn, dom, "bridge", "br-b", mac=second.upper(),
                                      vlan=30))
        assert job.state is JobState.DONE, job.log_text()
        wait_for(lambda: conn.find_domain_by_name("two-nics").summary.nics[1].source == "br-b")
        first, moved = conn.find_domain_by_name("two-nics").summary.nics
        assert (first.kind, first.source, first.mac) == ("network", "lan", MAC)
        assert (moved.kind, moved.mac, moved.model) == ("bridge", second, "e1000e")
        wait_for(lambda: nic_vlans(conn.find_domain_by_name("two-nics").xml) == {second: 30})

        job = finished(connect_domain(runner, conn, conn.find_domain_by_name("two-nics"),
                                      "network", "lan", add=True))
        assert job.state is JobState.DONE, job.log_text()
        wait_for(lambda: len(conn.find_domain_by_name("two-nics").summary.nics) == 3)
        added = conn.find_domain_by_name("two-nics").summary.nics[2]
        assert added.kind == "network" and added.source == "lan"
        assert added.mac not in (MAC, second)
    finally:
        runner.shutdown(wait=True)
        conn.shutdown()


def test_moving_a_card_keeps_secrets_settings_and_foreign_metadata(tmp_path):
    import libvirt

    from virtstudio.xml import Domain

    network = "it's <&> lan"
    conn = open_host(tmp_path, "keeps", (
        f"<interface type='network'><mac address='{MAC}'/><source network='lan'/>"
        "<model type='ne2k_pci'/><link state='down'/><mtu size='9000'/>"
        "<boot order='1'/><rom bar='off'/></interface>"
        "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:bb:07'/>"
        "<source><address type='pci' domain='0' bus='3' slot='0' function='0'/></source>"
        "</interface>"
        "<graphics type='vnc' port='-1' autoport='yes' passwd='vncpw' keymap='de'/>"))
    conn.call(lambda c: c.lookupByName("keeps").setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, "<foo>bar</foo>", "app1",
        "http://app1.example.org/", libvirt.VIR_DOMAIN_AFFECT_CONFIG)).result(60)
    conn.call(lambda c: c.networkDefineXML(
        f"<network><name>{network.replace('&', '&amp;').replace('<', '&lt;')}</name>"
        "<bridge name='vsodd0'/></network>")).result(60)
    runner = JobRunner()
    try:
        dom = conn.find_domain_by_name("keeps")
        if dom.state.is_active:
            conn.call(lambda c: c.lookupByName("keeps").destroy()).result(60)
            wait_for(lambda: not conn.find_domain_by_name("keeps").state.is_active)
        dom = conn.find_domain_by_name("keeps")
        with pytest.raises(VirtStudioError, match="hostdev card"):
            connect_domain(runner, conn, dom, "bridge", "br-b", mac="52:54:00:00:bb:07")
        job = finished(connect_domain(runner, conn, dom, "network", network))
        assert job.state is JobState.DONE, job.log_text()
        job = finished(connect_domain(runner, conn, conn.find_domain_by_name("keeps"),
                                      "network", network, add=True))
        assert job.state is JobState.DONE, job.log_text()
        saved = Domain.from_xml(conn.call(lambda c: c.lookupByName("keeps").XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)).result(60))
        moved, hostdev, added = saved.devices.interfaces
        assert (moved.type, moved.source, moved.model, moved.link_state, moved.mtu,
                moved.boot_order) == ("network", network, "ne2k_pci", "down", 9000, 1)
        assert (hostdev.type, hostdev.mac) == ("hostdev", "52:54:00:00:bb:07")
        assert (added.type, added.source) == ("network", network)
        gfx = saved.devices.graphics[0]
        assert (gfx.passwd, gfx.keymap) == ("vncpw", "de")
        assert '<app1:foo xmlns:app1="http://app1.example.org/">bar</app1:foo>' \
            in saved.to_xml()
    finally:
        runner.shutdown(wait=True)
        conn.shutdown()
