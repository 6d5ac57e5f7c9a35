"""The Edit tab offers the kinds the host's domain capabilities list, on the test driver.

The test driver has no domain capabilities, so a real QEMU document
(tests/xml/data/domcaps-q35.xml) stands in for the host's answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QListWidget, QPushButton, QTableWidget

from virtstudio.core.entities import DomainState
from virtstudio.core.fixtures import write_fixture
from virtstudio.machines import domain_edit as de
from virtstudio.machines.host_caps import parse_device_kinds
from virtstudio.xml import Disk, Domain, Graphics, Video, make

Q35 = (Path(__file__).parents[1] / "xml" / "data" / "domcaps-q35.xml").read_text()


@pytest.fixture
def asked(monkeypatch):
    """Answer the editor's capability reads with the q35 document; list what was asked.

    Tests take it before the window, which may show a machine as soon as it connects.
    """
    calls = []

    def read(_conn, *key):
        calls.append(key)
        return parse_device_kinds(Q35)

    monkeypatch.setattr("virtstudio.ui.vm_editor.read_device_kinds", read)
    return calls


@pytest.fixture
def window(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    host = window.inventory.add(f"test://{write_fixture(tmp_path / 'host.xml', 12)}")
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 12 and len(host.pools) == 3,
                    timeout=20000)
    return window


def _stopped(window):
    return [window.vm_model.domain_at(r) for r in range(window.vm_model.rowCount())
            if window.vm_model.domain_at(r).state is DomainState.SHUTOFF]


def _select(window, dom):
    assert window.select_domain(dom.name)
    window.details.tabs.setCurrentWidget(window.details.editor)
    return window.details.editor


def _combo(editor, name):
    return editor.findChild(QComboBox, name)


def _items(combo):
    return [combo.itemText(i) for i in range(combo.count())]


def _pending(editor):
    pending = editor.findChild(QListWidget, "pendingChanges")
    return [pending.item(i).text() for i in range(pending.count())]


def _redefine(window, qtbot, dom, change):
    """Give ``dom`` other devices (as virsh would) and wait until the app shows them."""
    host = window.inventory.connections[0]
    domain = Domain.from_xml(host.call(lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(2))
                             .result(60))
    change(domain.ensure_devices())
    xml = domain.to_xml()
    host.call(lambda c: c.defineXML(xml)).result(60)
    host.refresh_domain(dom.uuid)
    qtbot.waitUntil(lambda: bool(host.domains[dom.uuid].summary.graphics), timeout=20000)
    return host.domains[dom.uuid]


def _rdp_on_ide(devices):
    devices.add(make(Graphics, type="rdp", autoport=True))
    devices.add(make(Video, model="vmvga"))
    devices.add(make(Disk, type="file", device="disk", source_file="/old.img",
                     target_dev="hda", target_bus="ide"))


def test_lists_follow_the_hosts_capabilities_and_are_read_once(asked, window, qtbot):
    first, second = _stopped(window)[:2]
    editor = _select(window, first)
    graphics = _combo(editor, "graphicsCombo")
    qtbot.waitUntil(lambda: "dbus" in _items(graphics), timeout=20000)
    assert _items(graphics) == ["vnc", "spice", "sdl", "egl-headless", "dbus", "none"]
    assert _items(_combo(editor, "videoCombo")) == [
        "vga", "virtio", "qxl", "bochs", "cirrus", "none", "vmvga", "ramfb"]
    # q35 has no IDE controller, and only floppies go on the floppy controller.
    assert _items(_combo(editor, "newDiskBusCombo")) == ["virtio", "sata", "scsi", "usb"]
    editor.findChild(QTableWidget, "diskTable").selectRow(0)
    assert _items(_combo(editor, "diskBusCombo")) == ["virtio", "sata", "scsi", "usb"]
    assert _items(_combo(editor, "nicModelCombo")) == list(de.NIC_MODELS)
    assert _pending(editor) == [] and not editor.apply_button.isEnabled()

    _select(window, second)  # same host, emulator, arch, machine type: not read again
    assert "dbus" in _items(graphics)
    assert asked == [("", "x86_64", "", "test")]


def test_a_kind_the_host_does_not_list_stays_selectable_and_queues_nothing(
        asked, window, qtbot):
    dom = _redefine(window, qtbot, _stopped(window)[0], _rdp_on_ide)
    editor = _select(window, dom)
    graphics = _combo(editor, "graphicsCombo")
    qtbot.waitUntil(lambda: "dbus" in _items(graphics), timeout=20000)
    assert graphics.currentText() == "rdp" and _items(graphics)[-1] == "rdp"
    assert _combo(editor, "videoCombo").currentText() == "vmvga"
    assert _pending(editor) == [] and not editor.apply_button.isEnabled()
    graphics.setCurrentText("vnc")
    assert _pending(editor) == ["Graphics: VNC"]
    graphics.setCurrentText("rdp")  # back to what the machine has: no change
    assert _pending(editor) == []

    row = next(i for i, d in enumerate(dom.summary.disks) if d.target == "hda")
    editor.findChild(QTableWidget, "diskTable").selectRow(row)
    bus = _combo(editor, "diskBusCombo")
    assert bus.currentText() == "ide"
    assert _items(bus) == ["virtio", "sata", "scsi", "usb", "ide"]
    qtbot.mouseClick(editor.findChild(QPushButton, "changeDiskButton"),
                     Qt.MouseButton.LeftButton)
    assert "already has that bus" in editor.disk_error.text()
    assert _pending(editor) == [] and editor.changes() == []
    assert "ide" not in _items(_combo(editor, "newDiskBusCombo"))


def test_choosing_a_listed_kind_queues_exactly_that_change(asked, window, qtbot):
    dom = _redefine(window, qtbot, _stopped(window)[0], _rdp_on_ide)
    editor = _select(window, dom)
    graphics = _combo(editor, "graphicsCombo")
    qtbot.waitUntil(lambda: "dbus" in _items(graphics), timeout=20000)
    graphics.setCurrentText("spice")
    row = next(i for i, d in enumerate(dom.summary.disks) if d.target == "hda")
    editor.findChild(QTableWidget, "diskTable").selectRow(row)
    _combo(editor, "diskBusCombo").setCurrentText("sata")
    qtbot.mouseClick(editor.findChild(QPushButton, "changeDiskButton"),
                     Qt.MouseButton.LeftButton)
    assert editor.changes() == [de.SetGraphics("spice"), de.ChangeDisk("hda", "sata", None)]
    assert _pending(editor) == ["Graphics: SPICE", "Disk hda: bus sata"]

    host = window.inventory.connections[0]
    before = Domain.from_xml(host.call(
        lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(2)).result(60))
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    after = Domain.from_xml(host.call(
        lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(2)).result(60))
    assert [g.type for g in after.devices.graphics] == ["spice"]
    # The moved disk takes a name of its new bus; the other disk stays as it was.
    assert [(d.source_file, d.target_bus) for d in after.devices.disks] == [
        (d.source_file, "sata" if d.target_dev == "hda" else d.target_bus)
        for d in before.devices.disks]
    assert [v.model for v in after.devices.videos] == ["vmvga"]


def test_without_capabilities_the_usual_lists_stand(window, qtbot):
    dom = _stopped(window)[0]
    editor = _select(window, dom)
    qtbot.waitUntil(lambda: len(editor._kinds) == 1, timeout=20000)
    assert list(editor._kinds.values()) == [None]  # the test driver cannot say
    assert _items(_combo(editor, "graphicsCombo")) == list(de.GRAPHICS)
    assert _items(_combo(editor, "videoCombo")) == list(de.VIDEO_MODELS)
    assert _items(_combo(editor, "newDiskBusCombo")) == list(de.DISK_BUSES)
    assert _pending(editor) == []
