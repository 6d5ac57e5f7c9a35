"""Changes made elsewhere while an editor was open: what they were, and what collides."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from tests.helpers import wait_for
from virtstudio.core.jobs import JobState
from virtstudio.machines import domain_edit as de
from virtstudio.machines import xml_edit
from virtstudio.machines.concurrent_edit import review, xml_changes
from virtstudio.machines.xml_edit import CHANGED_AGAIN, same_config

BASE = """<domain type='kvm'>
  <name>web1</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/>
      <source network='default'/><model type='virtio'/></interface>
    <graphics type='vnc' port='-1' passwd='s3cret'/>
    <video><model type='vga'/></video>
  </devices>
</domain>"""


def _with(xml: str, old: str, new: str) -> str:
    assert old in xml, old
    return xml.replace(old, new)


def test_the_same_configuration_applies_without_asking():
    reflowed = BASE.replace("\n  ", "\n")  # layout alone is no change
    assert same_config(BASE, reflowed)
    found = review(BASE, reflowed, [de.SetVcpus(4)])
    assert not found.changed and found.differences == [] and found.conflicts == []


def test_changes_made_meanwhile_are_named_element_by_element():
    current = _with(BASE, "<model type='vga'/>", "<model type='virtio'/>")
    current = _with(current, "<currentMemory unit='KiB'>1048576",
                    "<currentMemory unit='KiB'>2097152")
    current = _with(current, "</devices>", "<rng model='virtio'/></devices>")
    lines = xml_changes(BASE, current)
    assert "currentMemory: “1048576” → “2097152”" in lines
    assert "devices/video/model: type “vga” → “virtio”" in lines
    assert "devices/rng: added <rng model=\"virtio\" />" in lines
    hidden = _with(BASE, "</devices>", "<graphics type='spice' passwd='new-pw'/></devices>")
    assert xml_changes(BASE, hidden) == [
        "devices/graphics spice: added <graphics type=\"spice\" passwd=\"(hidden)\" />"]
    removed = _with(BASE, "<source file='/img/a.qcow2'/><target dev='vda' bus='virtio'/>",
                    "<source file='/img/b.qcow2'/><target dev='vda' bus='virtio'/>")
    assert xml_changes(BASE, removed) == [
        "devices/disk vda/source: file “/img/a.qcow2” → “/img/b.qcow2”"]


def test_a_display_password_is_named_but_never_shown():
    current = _with(BASE, "passwd='s3cret'", "passwd='other'")
    lines = xml_changes(BASE, current)
    assert lines == ["devices/graphics vnc: passwd changed"]
    assert "s3cret" not in review(BASE, current).text("web1")
    gone = _with(BASE, " passwd='s3cret'", "")
    assert xml_changes(BASE, gone) == ["devices/graphics vnc: passwd removed"]


def test_own_fields_changed_meanwhile_are_conflicts_others_are_not():
    current = _with(BASE, "<currentMemory unit='KiB'>1048576",
                    "<currentMemory unit='KiB'>524288")
    current = _with(current, "<model type='vga'/>", "<model type='virtio'/>")
    # The user changed vCPUs only: memory and video changed elsewhere, no conflict.
    found = review(BASE, current, [de.SetVcpus(4)])
    assert found.changed and found.conflicts == []
    assert "devices/video/model: type “vga” → “virtio”" in found.differences
    # The user chose another video model too: that collides, and the question says so.
    found = review(BASE, current, [de.SetVideo("qxl"), de.SetMemory(512, 1024)])
    assert found.conflicts == [
        "Video: you chose qxl; meanwhile it changed from vga to virtio. Yours replaces it."]
    text = found.text("web1")
    assert "changed elsewhere" in text and "touch the same settings" in text
    # Choosing what the other party chose is no conflict.
    assert review(BASE, current, [de.SetVideo("virtio")]).conflicts == []


def test_device_changes_collide_with_the_same_device_changed_or_removed():
    gone = _with(BASE, "<interface type='network'><mac address='52:54:00:00:00:01'/>",
                 "<interface type='network'><mac address='52:54:00:00:00:02'/>")
    found = review(BASE, gone, [de.RemoveNic("52:54:00:00:00:01"), de.AddDisk("vdb")])
    assert found.conflicts == ["Network card 52:54:00:00:00:01: it was removed meanwhile, "
                               "so your change to it cannot apply."]
    cached = _with(BASE, "type='qcow2'/>", "type='qcow2' cache='none'/>")
    found = review(BASE, cached, [de.ChangeDisk("vda", "virtio", "writeback")])
    assert found.conflicts == ["Disk vda: it was changed meanwhile too."]


# ---- on libvirt's test driver: the job refuses a configuration changed after review ----


def _saved(host, uuid):
    return host.call(xml_edit.read_inactive_xml, uuid).result(60)


def _set_memory_elsewhere(host, uuid, kib):
    def change(conn):
        dom = conn.lookupByUUIDString(uuid)
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                                         | libvirt.VIR_DOMAIN_XML_SECURE))
        root.find("currentMemory").text = str(kib)
        root.find("currentMemory").set("unit", "KiB")
        conn.defineXML(ET.tostring(root, encoding="unicode"))
    host.call(change).result(60)


def test_apply_writes_only_the_users_changes_on_top(test_host, job_runner):
    host = test_host
    dom = next(d for d in host.domains.values() if not d.state.is_active)
    base = _saved(host, dom.uuid)
    _set_memory_elsewhere(host, dom.uuid, 65536)
    current = _saved(host, dom.uuid)
    assert review(base, current, [de.SetVcpus(3)]).changed
    job = de.apply_changes(job_runner, host, dom.uuid, dom.name, [de.SetVcpus(3)],
                           saved=current)
    wait_for(lambda: job.state.finished, 10)
    assert job.state is JobState.DONE, job.log_text()
    root = ET.fromstring(_saved(host, dom.uuid))
    assert root.findtext("vcpu") == "3" and root.findtext("currentMemory") == "65536"


def test_jobs_refuse_when_the_configuration_changed_after_review(test_host, job_runner):
    host = test_host
    dom = next(d for d in host.domains.values() if not d.state.is_active)
    reviewed = _saved(host, dom.uuid)
    _set_memory_elsewhere(host, dom.uuid, 65536)
    job = de.apply_changes(job_runner, host, dom.uuid, dom.name, [de.SetVcpus(3)],
                           saved=reviewed)
    wait_for(lambda: job.state.finished, 10)
    assert job.state is JobState.FAILED and job.error.detail == CHANGED_AGAIN
    edited = _with(reviewed, "</vcpu>", "</vcpu><description>mine</description>")
    job = xml_edit.define_edited_xml(job_runner, host, dom.uuid, reviewed, edited,
                                     saved=reviewed)
    wait_for(lambda: job.state.finished, 10)
    assert job.state is JobState.FAILED and job.error.detail == CHANGED_AGAIN
    root = ET.fromstring(_saved(host, dom.uuid))
    assert root.findtext("currentMemory") == "65536" and root.find("description") is None
