"""The Edit and XML tabs and tags/folders, on libvirt's test driver, driven as a user would."""

from __future__ import annotations

import re

import libvirt
import pytest
from PySide6.QtCore import QPoint, QRegularExpression, Qt
from PySide6.QtWidgets import QPushButton

from virtstudio.core.entities import DomainState
from virtstudio.core.fixtures import write_fixture
from virtstudio.machines.groups import groups_of
from virtstudio.ui.vm_model import VmColumn, VmRole


@pytest.fixture
def window(make_main_window, qtbot, tmp_path):
    window = make_main_window()
    host = window.inventory.add(f"test://{write_fixture(tmp_path / 'host.xml', 12)}")
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 12 and len(host.pools) == 3,
                    timeout=20000)
    return window


def select_stopped(window, qtbot, tab):
    dom = next(window.vm_model.domain_at(r) for r in range(window.vm_model.rowCount())
               if window.vm_model.domain_at(r).state is DomainState.SHUTOFF)
    assert window.select_domain(dom.name)
    window.details.tabs.setCurrentWidget(tab)
    return dom


def click(qtbot, button):
    assert button.isEnabled(), f"{button.objectName()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def retype(qtbot, edit, text):
    edit.selectAll()
    qtbot.keyClicks(edit, text)


def saved_xml(window, dom):
    host = window.inventory.connections[0]
    return host.call(lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE)).result(60)


def test_editor_refuses_bad_values_as_typed(window, qtbot):
    editor = window.details.editor
    select_stopped(window, qtbot, editor)
    assert not editor.apply_button.isEnabled()  # nothing changed yet
    assert not editor.revert_button.isEnabled()
    assert not editor.live_hint.isVisible()
    retype(qtbot, editor.memory_edit, "0")
    assert "above zero" in editor.cpu_memory_error.text()
    assert not editor.apply_button.isEnabled()
    retype(qtbot, editor.memory_edit, "999999")
    assert "cannot be above the maximum" in editor.cpu_memory_error.text()
    assert not editor.apply_button.isEnabled()
    retype(qtbot, editor.memory_edit, "512")
    assert editor.cpu_memory_error.text() == "" and editor.apply_button.isEnabled()

    retype(qtbot, editor.nic_mac_edit, "52:54:00:zz")
    assert "six pairs" in editor.nic_error.text() and not editor.apply_button.isEnabled()
    editor.nic_mac_edit.clear()

    editor.disk_source_combo.setCurrentIndex(0)  # a new volume in a pool
    retype(qtbot, editor.disk_size_edit, "500G")
    assert "larger than the" in editor.disk_error.text() and "free in the pool" in \
        editor.disk_error.text()
    assert not editor.apply_button.isEnabled() and not editor.add_disk_button.isEnabled()
    retype(qtbot, editor.disk_size_edit, "lots")
    assert "not a size" in editor.disk_error.text()
    retype(qtbot, editor.disk_size_edit, "2G")
    assert editor.disk_error.text() == "" and editor.apply_button.isEnabled()


def test_what_the_user_typed_survives_a_change_of_the_machine(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    retype(qtbot, editor.memory_edit, "0")  # not valid, but the user's
    host = window.inventory.connections[0]
    host.call(lambda c: c.lookupByUUIDString(dom.uuid).create()).result(60)
    qtbot.waitUntil(lambda: editor.live_hint.isVisible(), timeout=20000)
    assert editor.memory_edit.text() == "0"
    assert "above zero" in editor.cpu_memory_error.text()
    click(qtbot, editor.revert_button)
    assert editor.memory_edit.text() == str(dom.summary.current_memory_kib // 1024)


def test_editor_applies_cpus_memory_video_and_a_new_volume(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    pool = editor.disk_source_combo.itemData(0)
    retype(qtbot, editor.vcpus_edit, "3")
    retype(qtbot, editor.max_memory_edit, "768")
    retype(qtbot, editor.memory_edit, "640")
    editor.video_combo.setCurrentText("virtio")
    editor.disk_source_combo.setCurrentIndex(0)
    retype(qtbot, editor.disk_size_edit, "1G")
    retype(qtbot, editor.disk_name_edit, f"{dom.name}-extra.qcow2")
    items = [editor.pending_list.item(i).text() for i in range(editor.pending_list.count())]
    assert "vCPUs: 3" in items and any("new 1.0 GiB volume" in t for t in items)
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    root = saved_xml(window, dom)
    assert re.search(r"<vcpu[^>]*>3</vcpu>", root)
    assert f"<memory unit='KiB'>{768 * 1024}</memory>" in root
    assert f"<currentMemory unit='KiB'>{640 * 1024}</currentMemory>" in root
    assert "<model type='virtio'" in root and f"{dom.name}-extra.qcow2" in root
    host = window.inventory.connections[0]
    volume = host.call(lambda c: c.storagePoolLookupByUUIDString(pool.uuid)
                       .storageVolLookupByName(f"{dom.name}-extra.qcow2").info()).result(60)
    assert volume[1] == 1 << 30
    qtbot.waitUntil(lambda: editor.vcpus_edit.text() == "3" and not editor.dirty,
                    timeout=20000)


def test_running_machine_says_what_waits_for_next_boot(window, qtbot):
    editor = window.details.editor
    dom = next(window.vm_model.domain_at(r) for r in range(window.vm_model.rowCount())
               if window.vm_model.domain_at(r).state is DomainState.RUNNING)
    window.select_domain(dom.name)
    window.details.tabs.setCurrentWidget(editor)
    assert "running" in editor.live_hint.text() and editor.live_hint.isVisible()
    editor.graphics_combo.setCurrentText("spice")
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: "next boot" in editor.status.text(), timeout=20000)
    assert "Graphics: SPICE" in editor.status.text()
    assert "graphics type='spice'" in saved_xml(window, dom)


def test_tags_and_folder_are_saved_shown_and_filtered(window, qtbot):
    groups = window.details.editor.groups
    dom = select_stopped(window, qtbot, window.details.editor)
    retype(qtbot, groups.tags_edit, "web, b@d")
    assert "not a tag" in groups.error.text() and not groups.save_button.isEnabled()
    retype(qtbot, groups.tags_edit, "web, frontend")
    retype(qtbot, groups.folder_edit, "prod/eu")
    click(qtbot, groups.save_button)
    qtbot.waitUntil(lambda: groups_of(dom).tags == ("web", "frontend"), timeout=20000)
    assert "virtstudio:groups" in saved_xml(window, dom)
    row = window.vm_model.row_of(dom.host_uri, dom.uuid)
    qtbot.waitUntil(lambda: window.vm_model.index(row, VmColumn.GROUPS).data()
                    == "prod/eu  #web #frontend", timeout=20000)

    def listed():
        return [window.vm_proxy.index(r, 0).data(VmRole.DOMAIN).name
                for r in range(window.vm_proxy.rowCount())]

    for query in ("tag:web", "folder:prod", "tag:FRONTEND folder:prod/eu"):
        window.filter_edit.clear()
        qtbot.keyClicks(window.filter_edit, query)
        assert listed() == [dom.name], query
    window.filter_edit.clear()
    qtbot.keyClicks(window.filter_edit, "tag:db")
    assert listed() == []
    window.filter_edit.clear()
    assert len(listed()) == 12


def _start_xml_edit(window, qtbot):
    xml = window.details.xml_editor
    dom = select_stopped(window, qtbot, xml)
    click(qtbot, xml.edit_button)
    qtbot.waitUntil(lambda: xml.editing, timeout=20000)
    assert not xml.text.isReadOnly() and not xml.apply_button.isEnabled()
    return xml, dom


def _replace(qtbot, xml, pattern, text):
    assert xml.text.find(QRegularExpression(pattern)), pattern
    qtbot.keyClicks(xml.text, text)


def test_xml_tab_shows_the_diff_then_applies(window, qtbot):
    xml, dom = _start_xml_edit(window, qtbot)
    _replace(qtbot, xml, r"(?<=>)\d+(?=</vcpu>)", "5")
    assert xml.error.text() == ""
    diff = xml.diff_view.toPlainText()
    assert re.search(r"^-.*<vcpu[^>]*>\d</vcpu>$", diff, re.M)
    assert re.search(r"^\+.*<vcpu[^>]*>5</vcpu>$", diff, re.M)
    click(qtbot, xml.apply_button)
    qtbot.waitUntil(lambda: not xml.editing, timeout=20000)
    assert xml.status.text() == "Saved."
    assert re.search(r"<vcpu[^>]*>5</vcpu>", saved_xml(window, dom))


@pytest.mark.parametrize("pattern, text, reason", [
    (r"</name>", "</nam", "not well-formed"),
    (r"(?<=<name>)[^<]+", "renamed", "name must stay"),
    (r"(?<=<uuid>)[0-9a-f]{8}", "00000000", "UUID must stay"),
])
def test_xml_tab_refuses_bad_edits(window, qtbot, pattern, text, reason):
    xml, dom = _start_xml_edit(window, qtbot)
    before = saved_xml(window, dom)
    _replace(qtbot, xml, pattern, text)
    assert reason in xml.error.text()
    assert not xml.apply_button.isEnabled()
    click(qtbot, xml.cancel_button)
    assert not xml.editing and xml.text.isReadOnly()
    assert saved_xml(window, dom) == before


def test_xml_tab_shows_libvirts_refusal_and_changes_nothing(window, qtbot):
    xml, dom = _start_xml_edit(window, qtbot)
    before = saved_xml(window, dom)
    _replace(qtbot, xml, r"(?<=>)\d+(?=</vcpu>)", "0")
    click(qtbot, xml.apply_button)
    qtbot.waitUntil(lambda: "libvirt refused" in xml.error.text(), timeout=20000)
    assert "vcpu" in xml.error.text().lower()
    assert xml.editing and not xml.apply_button.isEnabled()
    assert xml.status.text() == "Nothing was changed."
    assert saved_xml(window, dom) == before


def test_boot_order_nics_and_disk_removal_from_the_editor(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    first_boot = editor.boot_list.item(0).data(Qt.ItemDataRole.UserRole)
    cdrom = next(i for i in range(editor.boot_list.count())
                 if editor.boot_list.item(i).data(Qt.ItemDataRole.UserRole) == "cdrom")
    editor.boot_list.item(cdrom).setCheckState(Qt.CheckState.Checked)
    editor.boot_list.setCurrentRow(cdrom)
    for _ in range(cdrom):
        click(qtbot, editor.findChild(QPushButton, "bootUpButton"))
    assert editor.boot_list.item(0).data(Qt.ItemDataRole.UserRole) == "cdrom"

    old_mac = dom.summary.nics[0].mac
    editor.nic_table.selectRow(0)
    retype(qtbot, editor.nic_mac_edit, "01:00:5e:00:00:01")
    assert "multicast" in editor.nic_error.text() and not editor.apply_button.isEnabled()
    retype(qtbot, editor.nic_mac_edit, "52:54:00:be:ef:01")
    editor.nic_model_combo.setCurrentText("e1000e")
    click(qtbot, editor.findChild(QPushButton, "changeNicButton"))
    editor.disk_table.selectRow(0)
    click(qtbot, editor.findChild(QPushButton, "removeDiskButton"))
    items = [editor.pending_list.item(i).text() for i in range(editor.pending_list.count())]
    assert items[0] == "Boot order: cdrom, hd"
    assert items[1].startswith("Change network card: network net")
    assert "e1000e, MAC 52:54:00:be:ef:01" in items[1]
    assert items[2] == "Remove disk vda (its image stays)"
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    root = saved_xml(window, dom)
    assert re.findall(r"<boot dev='(\w+)'/>", root) == ["cdrom", first_boot]
    assert old_mac not in root and "52:54:00:be:ef:01" in root and "e1000e" in root
    assert "<disk" not in root


def test_growing_a_disk_outside_any_pool_of_a_stopped_machine_is_refused(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    before = saved_xml(window, dom)
    retype(qtbot, editor.resize_edit, "40G")
    assert editor.disk_error.text() == "Select a row above first."
    assert not editor.apply_button.isEnabled()
    editor.disk_table.selectRow(0)
    assert editor.disk_error.text() == "" and editor.resize_button.isEnabled()
    click(qtbot, editor.resize_button)
    assert editor.pending_list.item(0).text() == "Grow disk vda to 40.0 GiB"
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Not applied"), timeout=20000)
    assert "can only grow while the machine runs" in editor.status.text()
    assert saved_xml(window, dom) == before


def saved_secure_xml(window, dom):
    host = window.inventory.connections[0]
    return host.call(lambda c: c.lookupByUUIDString(dom.uuid).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)).result(60)


def test_display_password_is_checked_as_typed_and_never_shown(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    editor.graphics_combo.setCurrentText("vnc")
    qtbot.keyClicks(editor.display_password_edit, "abcdefghi")
    assert "VNC password is at most 8" in editor.display_error.text()
    assert not editor.apply_button.isEnabled()
    retype(qtbot, editor.display_password_edit, "ab cd")
    assert "no spaces" in editor.display_error.text() and not editor.apply_button.isEnabled()
    editor.graphics_combo.setCurrentText("none")
    assert "without graphics" in editor.display_error.text()
    # SPICE tickets may be longer; the password itself never appears in the pending list.
    editor.graphics_combo.setCurrentText("spice")
    retype(qtbot, editor.display_password_edit, "abcdefghi")
    assert editor.display_error.text() == ""
    pending = [editor.pending_list.item(i).text() for i in range(editor.pending_list.count())]
    assert "Display password: set" in pending and not any("abcdefghi" in p for p in pending)
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    assert re.search(r"<graphics type='spice'[^>]* passwd='abcdefghi'",
                     saved_secure_xml(window, dom))
    assert "abcdefghi" not in window.details.editor.status.text()
    assert editor.display_password_edit.text() == ""  # nothing typed lingers after saving

    # Back to VNC with a password that fits it; then the password goes.
    qtbot.keyClicks(editor.display_password_edit, "Pw-1234")
    editor.graphics_combo.setCurrentText("vnc")
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    assert re.search(r"<graphics type='vnc'[^>]* passwd='Pw-1234'",
                     saved_secure_xml(window, dom))
    box = editor.remove_password_check
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert editor.remove_password_check.isChecked()
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    assert "passwd=" not in saved_secure_xml(window, dom)
    assert not editor.remove_password_check.isChecked()


def test_a_typed_password_does_not_follow_to_another_machine(window, qtbot):
    editor = window.details.editor
    first = select_stopped(window, qtbot, editor)
    qtbot.keyClicks(editor.display_password_edit, "secret1")
    other = next(window.vm_model.domain_at(r) for r in range(window.vm_model.rowCount())
                 if window.vm_model.domain_at(r).name != first.name)
    assert window.select_domain(other.name)
    qtbot.waitUntil(lambda: editor.domain is not None and editor.domain.name == other.name,
                    timeout=20000)
    assert editor.display_password_edit.text() == ""


def _video_elsewhere(window, dom, model):
    """What virsh edit would do: rewrite the saved configuration behind the editor's back."""
    import xml.etree.ElementTree as ET

    def change(conn):
        d = conn.lookupByUUIDString(dom.uuid)
        root = ET.fromstring(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE
                                       | libvirt.VIR_DOMAIN_XML_SECURE))
        devices = root.find("devices")
        for video in devices.findall("video"):
            devices.remove(video)
        ET.SubElement(ET.SubElement(devices, "video"), "model", type=model)
        conn.defineXML(ET.tostring(root, encoding="unicode"))
    window.inventory.connections[0].call(change).result(60)


def _question(widget):
    from PySide6.QtWidgets import QMessageBox

    shown = [b for b in widget.findChildren(QMessageBox, "changedMeanwhileBox")
             if b.isVisible()]
    return shown[0] if shown else None


def test_editor_names_a_field_both_sides_changed_and_cancel_writes_nothing(window, qtbot):
    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    qtbot.waitUntil(lambda: editor._base_xml is not None, timeout=20000)
    editor.video_combo.setCurrentText("qxl")
    _video_elsewhere(window, dom, "bochs")
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: _question(editor) is not None, timeout=20000)
    box = _question(editor)
    assert "Video: you chose qxl; meanwhile it changed from" in box.text()
    assert "to bochs" in box.text()
    qtbot.mouseClick(box.button(box.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert "bochs" in saved_xml(window, dom) and "qxl" not in saved_xml(window, dom)
    assert editor.apply_button.isEnabled()  # the user may still decide to apply
    assert editor.status.text().startswith("The saved configuration changed meanwhile")


def test_xml_tab_apply_anyway_defines_the_users_text(window, qtbot):
    xml, dom = _start_xml_edit(window, qtbot)
    _replace(qtbot, xml, r"(?<=>)\d+(?=</vcpu>)", "5")
    _video_elsewhere(window, dom, "bochs")
    click(qtbot, xml.apply_button)
    qtbot.waitUntil(lambda: _question(xml) is not None, timeout=20000)
    box = _question(xml)
    assert "video" in box.text() and "bochs" in box.text()
    assert box.findChild(QPushButton, "reloadButton").text() == "Reload"
    assert box.findChild(QPushButton, "confirmButton").text() == (
        "Apply my text anyway (discards theirs)")
    click(qtbot, box.findChild(QPushButton, "confirmButton"))
    qtbot.waitUntil(lambda: xml.status.text() == "Saved.", timeout=20000)
    saved = saved_xml(window, dom)
    assert re.search(r"<vcpu[^>]*>5</vcpu>", saved) and "bochs" not in saved


def test_kinds_the_lists_do_not_offer_queue_nothing_and_stay(window, qtbot):
    from virtstudio.xml import Disk, Domain, Graphics, Video, make

    editor = window.details.editor
    dom = select_stopped(window, qtbot, editor)
    host = window.inventory.connections[0]
    domain = Domain.from_xml(saved_xml(window, dom))
    devices = domain.ensure_devices()
    for old in [*devices.graphics, *devices.videos]:
        old.remove()
    devices.add(make(Graphics, type="sdl"))
    devices.add(make(Video, model="ramfb"))
    devices.add(make(Disk, type="file", device="floppy", source_file="/boot.img",
                     target_dev="fda", target_bus="fdc"))
    host.call(lambda c: c.defineXML(domain.to_xml())).result(60)
    host.refresh_domain(dom.uuid)
    qtbot.waitUntil(lambda: any(d.bus == "fdc" for d in host.domains[dom.uuid].summary.disks),
                    timeout=20000)
    window.select_domain(dom.name)
    editor.show_domain(host, host.domains[dom.uuid])
    assert editor.graphics_combo.currentText() == "sdl"
    assert editor.video_combo.currentText() == "ramfb"
    assert editor.pending_list.count() == 0 and not editor.apply_button.isEnabled()

    row = next(i for i, d in enumerate(host.domains[dom.uuid].summary.disks)
               if d.target == "fda")
    editor.disk_table.selectRow(row)
    assert editor.disk_bus_combo.currentText() == "fdc"
    editor.disk_cache_combo.setCurrentText("none")
    click(qtbot, editor.findChild(QPushButton, "changeDiskButton"))
    assert editor.pending_list.item(0).text() == "Disk fda: cache none"
    click(qtbot, editor.apply_button)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=20000)
    saved = Domain.from_xml(saved_xml(window, dom))
    floppy = next(d for d in saved.devices.disks if d.source_file == "/boot.img")
    assert (floppy.target_dev, floppy.target_bus, floppy.cache) == ("fda", "fdc", "none")
    assert [g.type for g in saved.devices.graphics] == ["sdl"]
    assert [v.model for v in saved.devices.videos] == ["ramfb"]
