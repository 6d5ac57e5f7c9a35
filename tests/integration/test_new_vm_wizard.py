"""The New VM wizard on the real libvirtd: direct kernel boot of the lab guest, typed in."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import libvirt
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from tests.helpers import off_gui_thread
from tests.integration import test_storage_pool
from tests.integration.conftest import _remove_domain
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import wait_for_prompt
from tests.qt_input import choose, click, retype
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobState
from virtstudio.machines.new_vm import InstallSource, NetworkChoice, VmSpec, to_domain_xml
from virtstudio.machines.os_variants import by_id
from virtstudio.ui.new_vm_wizard import NewVmWizard

# The storage tests' own dir pool, named vstest-pool-<pid> and removed afterwards.
wizard_pool = test_storage_pool.dir_pool


@pytest.fixture
def vm_name():
    name = f"vstest-wizard-vm-{os.getpid()}"
    yield name
    off_gui_thread(_remove_domain, name)


@pytest.mark.slow
def test_wizard_creates_and_boots_the_lab_guest(make_main_window, qtbot, lab_images,
                                                wizard_pool, vm_name):
    pool_name, pool_path = wizard_pool
    window = make_main_window(Inventory(stats_interval=0))
    host = window.inventory.add(SYSTEM_URI)
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: any(p.name == pool_name for p in host.pools.values()),
                    timeout=60000)

    qtbot.mouseClick(window.toolbar.widgetForAction(window.new_vm_action),
                     Qt.MouseButton.LeftButton)
    wizard = window.findChildren(NewVmWizard)[-1]
    qtbot.waitUntil(lambda: wizard.facts is not None, timeout=60000)
    next_button = wizard.button(QWizard.WizardButton.NextButton)

    source = wizard.source_page
    retype(qtbot, source.name_edit, vm_name)
    click(qtbot, source.source_buttons[InstallSource.KERNEL])
    assert not next_button.isEnabled()  # no kernel yet
    qtbot.keyClicks(source.kernel_edit, str(lab_images.kernel))
    qtbot.keyClicks(source.initrd_edit, str(lab_images.initrd))
    qtbot.keyClicks(source.cmdline_edit, "console=tty0 quiet")
    assert next_button.isEnabled(), wizard.problems
    click(qtbot, next_button)

    machine = wizard.machine_page
    assert wizard.currentPage() is machine
    assert machine.arch_combo.currentData() == "x86_64"
    # This machine's KVM cannot run ordinary guests (see the lab notes): emulate. The
    # wizard already prefers QEMU here (no VT-x/AMD-V); choosing it says so either way.
    assert choose(qtbot, machine.domain_type_combo, "QEMU") == "qemu"
    retype(qtbot, machine.memory_edit, "128")
    machine.vcpus_spin.setFocus()
    machine.vcpus_spin.selectAll()
    qtbot.keyClicks(machine.vcpus_spin, "1")
    assert machine.vcpus_spin.value() == 1
    assert next_button.isEnabled(), wizard.problems
    click(qtbot, next_button)

    storage = wizard.storage_page
    assert wizard.currentPage() is storage
    assert choose(qtbot, storage.pool_combo, pool_name) == pool_name
    retype(qtbot, storage.size_edit, "64M")
    assert storage.volume_label.text() == f"{vm_name}.qcow2"
    assert next_button.isEnabled(), wizard.problems
    click(qtbot, next_button)

    devices = wizard.devices_page
    click(qtbot, devices.net_buttons[NetworkChoice.NONE])
    assert choose(qtbot, devices.graphics_combo, "VNC") == "vnc"
    assert "started at once" in devices.summary.text()
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert finish.isEnabled(), wizard.problems
    click(qtbot, finish)

    qtbot.waitUntil(lambda: wizard.job is not None and wizard.job.state.finished, timeout=60000)
    assert wizard.job.state is JobState.DONE, wizard.job.log_text()
    qtbot.waitUntil(lambda: (s := window.selected_domain()) is not None
                    and s[1].name == vm_name, timeout=60000)

    def inspect() -> tuple[ET.Element, bool, str]:
        conn = libvirt.open(SYSTEM_URI)
        dom = conn.lookupByName(vm_name)
        wait_for_prompt(dom, timeout=60)
        volume = conn.storagePoolLookupByName(pool_name).storageVolLookupByName(
            f"{vm_name}.qcow2")
        return ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)), \
            bool(dom.isActive()), volume.XMLDesc(0)

    root, active, volume_xml = off_gui_thread(inspect)
    assert active
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == str(lab_images.kernel)
    assert root.findtext("os/cmdline") == "console=tty0 quiet"
    assert root.find("devices/graphics").get("type") == "vnc"
    assert int(root.findtext("memory")) == 128 * 1024
    disk = root.find("devices/disk")
    assert disk.find("source").get("file") == str(pool_path / f"{vm_name}.qcow2")
    volume = ET.fromstring(volume_xml)
    assert volume.find("target/format").get("type") == "qcow2"
    assert int(volume.findtext("capacity")) == 64 * 1024**2
    assert int(volume.findtext("allocation")) < 2 * 1024**2  # thin


@pytest.mark.parametrize(("variant", "source", "machine", "graphics"), [
    ("linux-generic", InstallSource.ISO, "q35", "spice"),
    ("win11", InstallSource.PXE, "q35", "vnc"),
    ("generic", InstallSource.ISO, "pc", "vnc"),
    ("debian12", InstallSource.IMPORT, "pc", "spice"),
])
def test_the_qemu_driver_accepts_each_kind_of_machine(system_libvirtd, lab_images, variant,
                                                      source, machine, graphics):
    """The QEMU driver validates and keeps the XML the wizard writes for each preset."""
    spec = VmSpec(name=f"vstest-wizard-xml-{os.getpid()}", source=source,
                  os_variant=by_id(variant), arch="x86_64", machine=machine,
                  domain_type="kvm", iso=str(lab_images.initrd),
                  import_path=str(lab_images.initrd), import_format="raw",
                  network_source="default",
                  graphics=graphics)
    conn = libvirt.open(SYSTEM_URI)
    try:
        dom = conn.defineXMLFlags(to_domain_xml(spec, str(lab_images.initrd)),
                                  libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        kept = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        _remove_domain(spec.name)
        conn.close()
    assert kept.get("type") == "kvm"
    assert kept.find("os/type").get("machine").startswith(f"pc-{machine}" if machine == "q35"
                                                          else "pc-i440fx")
    assert kept.find("devices/graphics").get("type") == graphics
    assert kept.find("devices/video/model").get("type") == by_id(variant).video
    buses = {t.get("bus") for t in kept.findall("devices/disk/target")}
    assert by_id(variant).disk_bus in buses
