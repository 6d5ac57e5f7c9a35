"""Hardware changes on libvirt's test driver: checks as typed, and the saved XML after."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.helpers import wait_for
from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobState
from virtstudio.machines import domain_edit as de


@pytest.fixture
def host(test_host):
    return test_host


@pytest.fixture
def runner(job_runner):
    return job_runner


def _shut_off(host):
    return next(d for d in host.domains.values() if not d.state.is_active)


def _running(host):
    return next(d for d in host.domains.values() if d.state.name == "RUNNING")


def _apply(runner, host, domain, changes):
    outcomes = []
    job = de.apply_changes(runner, host, domain.uuid, domain.name, changes, outcomes.append)
    wait_for(lambda: job.state.finished, 10)
    return job, (outcomes[0] if outcomes else None)


def _saved_root(host, domain):
    import libvirt

    xml = host.call(lambda c: c.lookupByUUIDString(domain.uuid).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE)).result(60)
    return ET.fromstring(xml)


def test_checks_say_what_is_wrong():
    assert "above zero" in de.check_memory(0, 1024)
    assert "cannot be above the maximum" in de.check_memory(2048, 1024)
    assert de.check_memory(512, 1024) == ""
    assert "at least one" in de.check_vcpus(0)
    assert "six pairs" in de.check_mac("52:54:00:zz:00:01")
    assert "multicast" in de.check_mac("01:00:5e:00:00:01")
    assert de.check_mac("52:54:00:ab:cd:ef") == "" and de.check_mac("") == ""
    pool = StoragePool("test:///x", "u", "<pool type='dir'><name>p</name><capacity>100"
                       "</capacity><allocation>0</allocation><available unit='GiB'>2"
                       "</available><target><path>/p</path></target></pool>", True, False)
    assert "larger than the 2.0 GiB free" in de.check_new_disk(3 << 30, pool, "d.qcow2")
    assert de.check_new_disk(1 << 30, pool, "d.qcow2") == ""
    assert "no spaces" in de.check_new_disk(1 << 30, pool, "my disk")
    assert de.next_target(["vda", "vdb"], "virtio") == "vdc"
    assert de.next_target(["vda"], "sata") == "sda"
    assert de.check_display_password(["spice"], "x" * 60) == ""
    assert "SPICE password is at most 60" in de.check_display_password(["spice"], "x" * 61)
    # One password serves every display, so a VNC display beside SPICE sets the limit.
    assert "VNC password is at most 8" in de.check_display_password(["spice", "vnc"], "x" * 9)
    assert "no spaces" in de.check_display_password(["vnc"], "a b")
    assert "no spaces" in de.check_display_password(["vnc"], "pässe")
    assert "without graphics" in de.check_display_password(["none"], "abc")
    assert de.check_display_password([], "") == ""
    assert "secret" not in repr(de.SetDisplayPassword("secret"))


def test_memory_cpus_boot_video_and_disk_saved_on_a_stopped_machine(host, runner):
    dom = _shut_off(host)
    changes = [de.SetVcpus(3), de.SetMemory(300, 512), de.SetBootOrder(("cdrom", "hd")),
               de.SetVideo("virtio"), de.SetGraphics("vnc"),
               de.AddDisk("vdb", path="/images/extra.qcow2"),
               de.ChangeDisk("vda", "sata", "none")]
    job, outcome = _apply(runner, host, dom, changes)
    assert job.state is JobState.DONE, job.log_text()
    assert {when for _, when in outcome.lines} == {de.SAVED}
    root = _saved_root(host, dom)
    assert root.findtext("vcpu") == "3"
    assert root.findtext("memory") == str(512 * 1024)
    assert root.findtext("currentMemory") == str(300 * 1024)
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    assert root.find("devices/video/model").get("type") == "virtio"
    assert [g.get("type") for g in root.findall("devices/graphics")] == ["vnc"]
    targets = {d.find("source").get("file"): d.find("target").attrib
               for d in root.findall("devices/disk")}
    assert targets["/images/extra.qcow2"]["dev"] == "vdb"
    moved = next(d for d in root.findall("devices/disk") if d.find("target").get("bus") == "sata")
    assert moved.find("target").get("dev") == "sda"
    assert moved.find("driver").get("cache") == "none"
    wait_for(lambda: host.domains[dom.uuid].summary.vcpus == 3, 5)


def test_a_new_kind_of_display_keeps_the_password(host, runner):
    import libvirt

    dom = _shut_off(host)
    job, _ = _apply(runner, host, dom, [de.SetGraphics("spice"), de.SetDisplayPassword("s3cr3t")])
    assert job.state is JobState.DONE, job.log_text()
    assert "s3cr3t" not in job.log_text()
    job, _ = _apply(runner, host, dom, [de.SetGraphics("vnc")])
    assert job.state is JobState.DONE, job.log_text()
    secure = ET.fromstring(host.call(lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)).result(60))
    assert [(g.get("type"), g.get("passwd")) for g in secure.findall("devices/graphics")] \
        == [("vnc", "s3cr3t")]


def test_nic_added_changed_and_removed(host, runner):
    dom = _shut_off(host)
    _, _ = _apply(runner, host, dom, [de.SetNic("network", "net1", "e1000e",
                                                "52:54:00:aa:bb:01")])
    job, _ = _apply(runner, host, dom, [de.SetNic("network", "net2", "virtio",
                                                  "52:54:00:aa:bb:02", "52:54:00:aa:bb:01")])
    assert job.state is JobState.DONE, job.log_text()
    nics = {n.find("mac").get("address"): n for n in _saved_root(host, dom).findall(
        "devices/interface")}
    assert "52:54:00:aa:bb:01" not in nics
    assert nics["52:54:00:aa:bb:02"].find("source").get("network") == "net2"
    job, _ = _apply(runner, host, dom, [de.RemoveNic("52:54:00:aa:bb:02")])
    assert job.state is JobState.DONE, job.log_text()
    macs = [n.find("mac").get("address")
            for n in _saved_root(host, dom).findall("devices/interface")]
    assert "52:54:00:aa:bb:02" not in macs


def test_running_machine_reports_what_waits_for_next_boot(host, runner):
    dom = _running(host)
    job, outcome = _apply(runner, host, dom, [de.SetVideo("qxl"), de.SetMemory(200, 256)])
    assert job.state is JobState.DONE, job.log_text()
    assert outcome.lines[0] == ("Video: qxl", de.NEXT_BOOT)
    assert _saved_root(host, dom).find("devices/video/model").get("type") == "qxl"


def test_a_missing_disk_fails_plainly_and_nothing_is_applied_after(host, runner):
    dom = _shut_off(host)
    job, outcome = _apply(runner, host, dom, [de.RemoveDisk("vdz"), de.SetVcpus(7)])
    assert job.state is JobState.FAILED and "no disk vdz" in job.error.message
    assert outcome is None
    assert _saved_root(host, dom).findtext("vcpu") != "7"
    with pytest.raises(VirtStudioError):
        de.apply_changes(runner, host, dom.uuid, dom.name, [])


def test_boot_order_of_a_machine_that_orders_its_devices(host, runner):
    import libvirt

    from virtstudio.xml import Domain

    dom = _shut_off(host)

    def per_device(conn: libvirt.virConnect) -> None:
        domain = Domain.from_xml(conn.lookupByUUIDString(dom.uuid).XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        for boot in list(domain.os.boots):
            boot.remove()
        domain.devices.disks[0].boot_order = 1
        conn.defineXML(domain.to_xml())

    host.call(per_device).result(60)
    host.refresh_domain(dom.uuid)
    wait_for(lambda: host.domains[dom.uuid].summary.boot == ("hd",), 10)
    nic_mac = host.domains[dom.uuid].summary.nics[0].mac
    job, _ = _apply(runner, host, dom, [de.SetBootOrder(("network", "hd"))])
    assert job.state is JobState.DONE, job.log_text()  # libvirt refuses both kinds at once
    root = _saved_root(host, dom)
    assert root.find("os/boot") is None
    nic = next(n for n in root.findall("devices/interface")
               if n.find("mac").get("address") == nic_mac)
    assert nic.find("boot").get("order") == "1"
    assert root.find("devices/disk/boot").get("order") == "2"
    wait_for(lambda: host.domains[dom.uuid].summary.boot == ("network", "hd"), 10)
