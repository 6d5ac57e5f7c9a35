"""Editor changes on the real libvirtd: what they leave behind still starts in QEMU."""

from __future__ import annotations

import os

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.conftest import _remove_domain
from tests.lab.daemon import SYSTEM_URI
from virtstudio.core.jobs import JobState
from virtstudio.machines import domain_edit as de
from virtstudio.xml import Domain

# SPICE with everything that needs it, a second display, memory with dumpCore and a
# hot-plug vCPU maximum: what the editor's changes used to break.
DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <metadata><app1:foo xmlns:app1="http://app1.example.org/">bar</app1:foo></metadata>
  <memory unit='KiB' dumpCore='off'>262144</memory>
  <currentMemory unit='KiB'>200003</currentMemory>
  <vcpu placement='static' current='1'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model>
    <topology sockets='1' dies='1' cores='2' threads='1'/></cpu>
  <devices>
    <controller type='usb' model='qemu-xhci'/>
    <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/></channel>
    <graphics type='spice' autoport='yes' keymap='de' passwd='spicepw'>
      <listen type='address' address='127.0.0.1'/><image compression='off'/></graphics>
    <sound model='ich9'><audio id='1'/></sound>
    <audio id='1' type='spice'/>
    <video><model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1'
      primary='yes'/></video>
    <redirdev bus='usb' type='spicevmc'/>
    <memballoon model='none'/>
  </devices>
</domain>"""


@pytest.fixture
def machine(system_libvirtd):
    name = f"vstest-xmledits-{os.getpid()}"
    off_gui_thread(_remove_domain, name)
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).defineXML(DOMAIN.format(name=name)))
    yield name
    off_gui_thread(_remove_domain, name)


def test_spice_to_vnc_and_new_sizes_still_start(host, machine):
    conn, runner = host
    wait_for(lambda: conn.find_domain_by_name(machine) is not None, timeout=30)
    entity = conn.find_domain_by_name(machine)
    changes = [de.SetGraphics("vnc"), de.SetVideo("virtio"), de.SetVcpus(2),
               de.SetMemory(195, 512)]
    job = de.apply_changes(runner, conn, entity.uuid, machine, changes)
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is JobState.DONE, job.log_text()

    def saved_and_start() -> str:
        dom = libvirt.open(SYSTEM_URI).lookupByName(machine)
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)  # QEMU checks the result
        dom.destroy()
        return xml

    saved = Domain.from_xml(off_gui_thread(saved_and_start))
    gfx = saved.devices.graphics[0]
    assert (gfx.type, gfx.keymap, gfx.passwd) == ("vnc", "de", "spicepw")
    assert not saved.devices.channels and not saved.devices.redirdevs
    assert [a.type for a in saved.devices.audios] == ["none"]
    assert saved.devices.videos[0].model == "virtio"
    assert (saved.vcpu.count, saved.vcpu.current) == (2, None)
    assert saved.cpu.topology.total == 2
    assert saved.memory.kib == 512 * 1024 and saved.memory.dump_core == "off"
    assert saved.current_memory.kib == 200003  # left alone: exact, not rounded to MiB
    assert "app1:foo" in saved.to_xml()
