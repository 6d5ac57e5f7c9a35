"""The Edit, Serial and XML tabs against the real libvirtd and the lab guest."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest
from PySide6.QtCore import QPoint, Qt
from pytestqt.exceptions import TimeoutError as WaitTimeout

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import PROMPT, READY_MARKER
from virtstudio.core.connection import ConnectionState
from virtstudio.core.entities import DomainState
from virtstudio.core.inventory import Inventory

BOOT_TIMEOUT_MS = 150_000


@pytest.fixture
def window(make_main_window, qtbot, system_libvirtd):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    return window


@pytest.fixture
def image_dir():
    path = Path(f"/var/lib/libvirt/images/vstest-editor-{os.getpid()}")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _domain(window, name):
    host = window.inventory.connections[0]
    return host.find_domain_by_name(name)


def _libvirt(fn, name):
    return off_gui_thread(lambda: fn(libvirt.open(SYSTEM_URI).lookupByName(name)))


def _saved(name):
    return ET.fromstring(_libvirt(lambda d: d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), name))


def _retype(qtbot, edit, text):
    edit.selectAll()
    qtbot.keyClicks(edit, text)


def _open_serial_and_boot(window, qtbot, name):
    """Start ``name`` paused, show its Serial tab, then let it run to the prompt."""
    _libvirt(lambda d: d.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED), name)
    qtbot.waitUntil(lambda: _domain(window, name).state is DomainState.PAUSED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(name), timeout=60000)
    pane = window.details.serial
    window.details.tabs.setCurrentWidget(pane)
    qtbot.waitUntil(lambda: pane.session is not None and pane.session.state == "connected",
                    timeout=60000)
    _libvirt(lambda d: d.resume(), name)
    terminal = pane.terminal
    qtbot.waitUntil(lambda: READY_MARKER in terminal.toPlainText(), timeout=BOOT_TIMEOUT_MS)
    qtbot.waitUntil(lambda: PROMPT in terminal.toPlainText().split(READY_MARKER, 1)[1],
                    timeout=60000)
    return terminal


def _type_line(qtbot, terminal, text):
    qtbot.keyClicks(terminal, text)
    qtbot.keyClick(terminal, Qt.Key.Key_Return)


def test_edit_memory_and_add_a_disk_then_the_guest_sees_it(window, qtbot, lab_vm, image_dir):
    disk = image_dir / "extra.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    editor = window.details.editor
    window.details.tabs.setCurrentWidget(editor)
    assert editor.memory_edit.text() == "96"

    _retype(qtbot, editor.memory_edit, "0")
    assert "above zero" in editor.cpu_memory_error.text()
    assert not editor.apply_button.isEnabled()
    _retype(qtbot, editor.max_memory_edit, "128")
    _retype(qtbot, editor.memory_edit, "128")
    editor.disk_source_combo.setCurrentIndex(editor.disk_source_combo.findData(None))
    qtbot.keyClicks(editor.disk_path_edit, str(disk))
    assert editor.disk_error.text() == ""
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=60000)

    root = _saved(lab_vm)
    assert root.findtext("memory") == str(128 * 1024)
    assert root.findtext("currentMemory") == str(128 * 1024)
    added = [d for d in root.findall("devices/disk")
             if d.find("source") is not None and d.find("source").get("file") == str(disk)]
    assert len(added) == 1
    assert added[0].find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert added[0].find("driver").get("type") == "qcow2"
    qtbot.waitUntil(lambda: editor.memory_edit.text() == "128" and not editor.dirty,
                    timeout=60000)

    # The guest boots with the new memory and finds the disk.
    terminal = _open_serial_and_boot(window, qtbot, lab_vm)
    _type_line(qtbot, terminal, "cat /sys/block/vda/size")
    qtbot.waitUntil(lambda: "\n32768" in terminal.toPlainText(), timeout=60000)


def test_serial_tab_types_and_reads_the_answer(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    terminal = _open_serial_and_boot(window, qtbot, lab_vm)
    _type_line(qtbot, terminal, "echo $((6*7))")
    qtbot.waitUntil(lambda: "\n42\n" in terminal.toPlainText(), timeout=60000)
    assert "\x1b" not in terminal.toPlainText()  # escape sequences are not shown
    _libvirt(lambda d: d.destroy(), lab_vm)
    pane = window.details.serial
    qtbot.waitUntil(lambda: pane.currentWidget() is pane.message, timeout=60000)
    assert "shut off" in pane.message.text() or "closed" in pane.message.text()


def test_running_guest_gets_a_disk_hot_plugged(window, qtbot, lab_vm, image_dir):
    disk = image_dir / "hot.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "8M"], check=True)
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    terminal = _open_serial_and_boot(window, qtbot, lab_vm)
    editor = window.details.editor
    window.details.tabs.setCurrentWidget(editor)
    editor.disk_source_combo.setCurrentIndex(editor.disk_source_combo.findData(None))
    qtbot.keyClicks(editor.disk_path_edit, str(disk))
    _retype(qtbot, editor.memory_edit, "90")  # no balloon in the lab guest: next boot
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Applied now" in editor.status.text(), timeout=60000)
    assert "Add disk vda" in editor.status.text()
    assert "next boot" in editor.status.text() and "Memory: 90 MiB" in editor.status.text()
    live = ET.fromstring(_libvirt(lambda d: d.XMLDesc(0), lab_vm))
    assert str(disk) in [s.get("file") for s in live.findall("devices/disk/source")]
    window.details.tabs.setCurrentWidget(window.details.serial)
    # The guest takes the hot-plug notice in its own time (slower on a busy host): ask again.
    _ask_until(qtbot, terminal, "cat /sys/block/vda/size", "\n16384")

    # Grow it while the guest runs: virDomainBlockResize, seen at once by the guest.
    window.details.tabs.setCurrentWidget(editor)
    qtbot.waitUntil(lambda: editor.disk_table.rowCount() == 1, timeout=60000)
    editor.disk_table.selectRow(0)
    _retype(qtbot, editor.resize_edit, "16M")
    qtbot.mouseClick(editor.resize_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Applied now: Grow disk vda" in editor.status.text(),
                    timeout=60000)
    window.details.tabs.setCurrentWidget(window.details.serial)
    _ask_until(qtbot, terminal, "cat /sys/block/vda/size", "\n32768")


def _ask_until(qtbot, terminal, command, answer):
    for _ in range(15):
        _type_line(qtbot, terminal, command)
        try:
            qtbot.waitUntil(lambda: answer in terminal.toPlainText(), timeout=60000)
            return
        except WaitTimeout:
            continue
    raise AssertionError(f"{answer!r} not in {terminal.toPlainText()[-300:]!r}")


def _vnc_login(name: str, password: str | None) -> str:
    """Log in to the running guest's VNC port over TCP, as another viewer would:
    "ok" with a first frame, or the refusal's words."""
    import asyncio
    import contextlib
    import socket

    from virtstudio.console.rfb_client import RfbClient, describe_connection_error

    live = ET.fromstring(_libvirt(lambda d: d.XMLDesc(0), name))
    port = int(next(g for g in live.findall("devices/graphics")
                    if g.get("type") == "vnc").get("port"))

    async def login() -> str:
        client = RfbClient(password=password)
        try:
            await client.connect_socket(socket.create_connection(("127.0.0.1", port), 10))
            runner = asyncio.create_task(client.run())
            try:
                await client.wait_update(15)
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
            return "ok"
        except Exception as exc:
            return describe_connection_error(exc)

    return off_gui_thread(lambda: asyncio.run(login()))


def test_display_password_on_a_running_guest(window, qtbot, lab_vm):
    """QEMU asks for a display password only if the display started with one: a first
    password and a removal wait for the next boot; a new password applies at once."""
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    _libvirt(lambda d: d.create(), lab_vm)
    qtbot.waitUntil(lambda: _domain(window, lab_vm).state is DomainState.RUNNING,
                    timeout=60000)
    assert _vnc_login(lab_vm, None) == "ok"  # no password yet
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    editor = window.details.editor
    window.details.tabs.setCurrentWidget(editor)

    def apply(expected: str) -> None:
        qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
        busy = ("", "Checking the saved configuration…", "Applying…")
        qtbot.waitUntil(lambda: editor.status.text() not in busy, timeout=60000)
        assert editor.status.text().startswith(expected), editor.status.text()

    qtbot.keyClicks(editor.display_password_edit, "Pw-1234")
    apply("Applies at next boot")
    assert "Display password: set" in editor.status.text()
    secure = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    saved = ET.fromstring(_libvirt(lambda d: d.XMLDesc(secure), lab_vm))
    assert {g.get("passwd") for g in saved.findall("devices/graphics")} == {"Pw-1234"}
    assert _vnc_login(lab_vm, None) == "ok"  # the running display is as it started

    _libvirt(lambda d: d.destroy(), lab_vm)
    _libvirt(lambda d: d.create(), lab_vm)
    qtbot.waitUntil(lambda: _domain(window, lab_vm).state is DomainState.RUNNING,
                    timeout=60000)
    assert "needs a password" in _vnc_login(lab_vm, None)
    assert "refused" in _vnc_login(lab_vm, "wrong")
    assert _vnc_login(lab_vm, "Pw-1234") == "ok"
    # VirtStudio's own console on this host is handed an already authenticated socket.
    window.open_console()
    pane = window.details.console
    qtbot.waitUntil(lambda: pane.session is not None and pane.session.state == "connected",
                    timeout=60000)

    window.details.tabs.setCurrentWidget(editor)
    qtbot.keyClicks(editor.display_password_edit, "Pw-5678")
    apply("Applied now")
    assert "refused" in _vnc_login(lab_vm, "Pw-1234")
    assert _vnc_login(lab_vm, "Pw-5678") == "ok"

    box = editor.remove_password_check
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    apply("Applies at next boot")
    assert "Display password: removed" in editor.status.text()
    saved = ET.fromstring(_libvirt(lambda d: d.XMLDesc(secure), lab_vm))
    assert all(g.get("passwd") is None for g in saved.findall("devices/graphics"))
    assert _vnc_login(lab_vm, "Pw-5678") == "ok"  # until the machine starts again


# ---- changes made elsewhere while an edit is pending --------------------------------------

_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def _change_elsewhere(name, memory_kib=None, video=None, passwd=None):
    """Change the saved configuration through a connection of the test's own, as virsh would."""
    def change(dom):
        root = ET.fromstring(dom.XMLDesc(_SECURE))
        if memory_kib is not None:
            current = root.find("currentMemory")
            if current is None:
                current = ET.SubElement(root, "currentMemory")
            current.attrib = {"unit": "KiB"}
            current.text = str(memory_kib)
        if video is not None:
            root.find("devices/video/model").set("type", video)
        if passwd is not None:
            for graphics in root.findall("devices/graphics"):
                graphics.set("passwd", passwd)
        dom.connect().defineXML(ET.tostring(root, encoding="unicode"))
    _libvirt(change, name)


def _question(widget):
    from PySide6.QtWidgets import QMessageBox

    shown = [b for b in widget.findChildren(QMessageBox, "changedMeanwhileBox")
             if b.isVisible()]
    assert len(shown) <= 1
    return shown[0] if shown else None


def _click_in(qtbot, box, object_name):
    from PySide6.QtWidgets import QAbstractButton

    button = box.findChild(QAbstractButton, object_name)
    assert button is not None, object_name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_edit_tab_asks_before_writing_over_a_change_made_elsewhere(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    editor = window.details.editor
    window.details.tabs.setCurrentWidget(editor)
    qtbot.waitUntil(lambda: editor._base_xml is not None, timeout=60000)

    # Nobody else changed anything: Apply saves without a question.
    _retype(qtbot, editor.vcpus_edit, "2")
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=60000)
    assert _question(editor) is None
    assert _saved(lab_vm).findtext("vcpu") == "2"
    qtbot.waitUntil(lambda: editor.vcpus_edit.text() == "2" and not editor.dirty
                    and editor._base_xml is not None, timeout=60000)

    # The user edits vCPUs; meanwhile memory, video and a display password change elsewhere.
    _retype(qtbot, editor.vcpus_edit, "3")
    _change_elsewhere(lab_vm, memory_kib=80 * 1024, video="virtio", passwd="Other-pw")
    qtbot.waitUntil(lambda: _domain(window, lab_vm).summary.video == "virtio", timeout=60000)
    assert editor.memory_edit.text() == "96"  # the pending edit keeps its fields
    assert [c.describe() for c in editor.changes()] == ["vCPUs: 3"]
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _question(editor) is not None, timeout=60000)
    text = _question(editor).text()
    assert "currentMemory" in text and "video/model: type “vga” → “virtio”" in text
    assert "passwd changed" in text and "Other-pw" not in text
    assert "vCPUs: 3" in text
    assert _saved(lab_vm).findtext("vcpu") == "2"  # nothing written before the answer
    _click_in(qtbot, _question(editor), "confirmButton")
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved"), timeout=60000)

    root = ET.fromstring(_libvirt(lambda d: d.XMLDesc(_SECURE), lab_vm))
    assert root.findtext("vcpu") == "3"  # the user's edit
    assert root.findtext("currentMemory") == str(80 * 1024)  # and theirs, kept
    assert root.find("devices/video/model").get("type") == "virtio"
    assert {g.get("passwd") for g in root.findall("devices/graphics")} == {"Other-pw"}


def _xml_replace(qtbot, xml, pattern, text):
    from PySide6.QtCore import QRegularExpression

    assert xml.text.find(QRegularExpression(pattern)), pattern
    qtbot.keyClicks(xml.text, text)


def test_xml_tab_asks_before_defining_over_a_change_made_elsewhere(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    xml = window.details.xml_editor
    window.details.tabs.setCurrentWidget(xml)
    vcpu = r"(?<=>)\d+(?=</vcpu>)"

    # Nobody else changed anything: Apply saves without a question.
    qtbot.mouseClick(xml.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.editing, timeout=60000)
    _xml_replace(qtbot, xml, vcpu, "2")
    qtbot.mouseClick(xml.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.status.text() == "Saved.", timeout=60000)
    assert _question(xml) is None and _saved(lab_vm).findtext("vcpu") == "2"

    # The user edits vCPUs in the text; meanwhile memory and video change elsewhere.
    qtbot.mouseClick(xml.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.editing, timeout=60000)
    _xml_replace(qtbot, xml, vcpu, "3")
    _change_elsewhere(lab_vm, memory_kib=80 * 1024, video="virtio")
    qtbot.mouseClick(xml.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _question(xml) is not None, timeout=60000)
    text = _question(xml).text()
    assert "currentMemory" in text and "video/model: type “vga” → “virtio”" in text
    assert _saved(lab_vm).findtext("vcpu") == "2"  # nothing defined before the answer

    # Reload: the text becomes the configuration as it is now; the user edits it again.
    _click_in(qtbot, _question(xml), "reloadButton")
    qtbot.waitUntil(lambda: "virtio" in xml.text.toPlainText()
                    and not xml.apply_button.isEnabled(), timeout=60000)
    _xml_replace(qtbot, xml, vcpu, "3")
    qtbot.mouseClick(xml.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.status.text() == "Saved.", timeout=60000)
    assert _question(xml) is None
    root = _saved(lab_vm)
    assert root.findtext("vcpu") == "3"
    assert root.findtext("currentMemory") == str(80 * 1024)
    assert root.find("devices/video/model").get("type") == "virtio"

    # "Apply my text anyway" replaces the whole configuration, theirs included.
    qtbot.mouseClick(xml.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.editing, timeout=60000)
    _xml_replace(qtbot, xml, vcpu, "1")
    _change_elsewhere(lab_vm, video="vga")
    qtbot.mouseClick(xml.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _question(xml) is not None, timeout=60000)
    _click_in(qtbot, _question(xml), "confirmButton")
    qtbot.waitUntil(lambda: xml.status.text() == "Saved.", timeout=60000)
    root = _saved(lab_vm)
    assert root.findtext("vcpu") == "1"
    assert root.find("devices/video/model").get("type") == "virtio"
