"""Snapshots and clones against the real libvirtd, with the lab guest and qcow2 disks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.conftest import _remove_domain
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import SerialConsole, lab_domain_xml, wait_for_prompt
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobState
from virtstudio.machines import snapshots

IMAGES = Path("/var/lib/libvirt/images")
# About 6 s on an idle machine; far longer while the suite loads both CPUs.
BOOT_S = 150


def _remove(name: str) -> None:
    try:
        dom = libvirt.open(SYSTEM_URI).lookupByName(name)
        for snap in dom.listAllSnapshots(0):
            snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
    except libvirt.libvirtError:
        pass
    _remove_domain(name)


class Guest:
    """A lab guest with one qcow2 data disk in a folder of its own."""

    def __init__(self, tag: str, images) -> None:
        self.name = f"vstest-{tag}-{os.getpid()}"
        self.folder = IMAGES / self.name
        self.folder.mkdir()
        self.disk = self.folder / "base.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.disk), "32M"],
                       check=True)
        self.conn = libvirt.open(SYSTEM_URI)
        self.conn.defineXML(lab_domain_xml(self.name, images, disks=[self.disk]))
        self.others: list[str] = []

    @property
    def dom(self) -> libvirt.virDomain:
        return self.conn.lookupByName(self.name)

    def remove(self) -> None:
        for name in [*self.others, self.name]:
            _remove(name)
        shutil.rmtree(self.folder, ignore_errors=True)


def shell(dom: libvirt.virDomain, command: str, timeout: float = 60.0) -> str:
    """Run ``command`` on the guest's serial shell and return what it printed."""
    token = f"END{time.monotonic_ns()}"
    with SerialConsole(dom, force=True) as console:
        console.send("\n")
        console.send(f"{command}; echo {token[:3]}''{token[3:]}\n")
        out = console.wait_for(token, timeout)
    return out


def write_marker(dom: libvirt.virDomain, text: str) -> None:
    shell(dom, f"echo {text} | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null")


def read_marker(dom: libvirt.virDomain) -> str:
    # Dropping the page cache makes the guest read the disk, not its memory.
    out = shell(dom, "echo 3 > /proc/sys/vm/drop_caches; "
                     "dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 16; echo")
    for word in ("BEFORE-SNAP", "AFTER-SNAP", "AFTER-REVERT"):
        if f"\n{word}" in out.replace("\r", ""):
            return word
    return out


@pytest.fixture
def guest(request, lab_images):
    made = off_gui_thread(Guest, request.node.name[5:25].replace("_", "-"), lab_images)
    yield made
    off_gui_thread(made.remove)


def finish(job, timeout: float = 180.0):
    wait_for(lambda: job.state.finished, timeout=timeout, interval=0.1)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    return job


def domain_entity(conn: HostConnection, name: str):
    def find():
        conn.call(lambda _c: None).result(timeout=60)  # let queued refreshes land
        return conn.find_domain_by_name(name)

    return wait_for(find, timeout=60)


def test_external_snapshot_with_memory_revert_delete_keeps_the_base(guest, host):
    conn, runner = host
    dom = guest.dom
    dom.create()
    wait_for_prompt(dom, BOOT_S)
    write_marker(dom, "BEFORE-SNAP")
    conn.refresh_domain(dom.UUIDString()).result(timeout=60)
    entity = domain_entity(conn, guest.name)

    finish(snapshots.create_snapshot(runner, conn, entity, "s1", "before the change",
                                     snapshots.SnapshotKind.EXTERNAL_MEMORY, []))
    overlay = guest.folder / f"{guest.name}-vda.s1.qcow2"
    memory = guest.folder / f"{guest.name}.s1.mem"
    assert overlay.exists() and memory.exists()
    write_marker(dom, "AFTER-SNAP")
    assert read_marker(dom) == "AFTER-SNAP"

    plan = conn.call(snapshots.plan_revert, entity.uuid, "s1").result(timeout=60)
    fates = {Path(f.path).name: f.fate for f in plan.files}
    assert "changes made since the last snapshot" in fates[overlay.name]
    assert fates[overlay.name].endswith("lost")
    assert fates["base.qcow2"].startswith("unchanged")
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))
    dom = guest.dom
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert read_marker(dom) == "BEFORE-SNAP"
    assert [s.current for s in snapshots.read_snapshots(conn.virconn, entity.uuid)] == [True]
    write_marker(dom, "AFTER-REVERT")

    plan = conn.call(snapshots.plan_delete, entity.uuid, "s1").result(timeout=60)
    assert not plan.metadata_only
    finish(snapshots.delete_snapshot(runner, conn, entity, plan))
    assert snapshots.read_snapshots(conn.virconn, entity.uuid) == []
    assert not overlay.exists() and not memory.exists()
    assert f"file='{guest.disk}'" in dom.XMLDesc(0)

    dom.destroy()
    check = subprocess.run(["qemu-img", "check", str(guest.disk)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    dom.create()
    wait_for_prompt(dom, BOOT_S)
    assert read_marker(dom) == "AFTER-REVERT"  # the merge kept what was written after


# ---- through the window ------------------------------------------------------------------


@pytest.fixture
def window(make_main_window, qtbot, system_libvirtd):
    from virtstudio.core.inventory import Inventory

    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    window.host = conn
    return window


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _select(window, qtbot, name: str) -> None:
    qtbot.waitUntil(lambda: window.select_domain(name), timeout=60000)


def test_linked_clone_from_the_dialog_boots_and_leaves_the_base_alone(window, qtbot, guest):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QComboBox

    _select(window, qtbot, guest.name)
    base_before = _sha256(guest.disk)
    dialogs = []
    window.confirm_requested.connect(dialogs.append)
    button = window.toolbar.widgetForAction(window.machine_actions.clone_action)
    qtbot.waitUntil(button.isEnabled, timeout=60000)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = dialogs[-1]
    clone_name = f"{guest.name}-c"
    guest.others.append(clone_name)
    dialog.name_edit.selectAll()
    qtbot.keyClicks(dialog.name_edit, f"{guest.name} c")
    assert "spaces or slashes" in dialog.error.text() and not dialog.clone_button.isEnabled()
    dialog.name_edit.selectAll()
    qtbot.keyClicks(dialog.name_edit, clone_name)
    combo = dialog.findChild(QComboBox, "mode_vda")
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText().startswith("Linked")
    # The disks' backing chains are read off the GUI thread; Clone waits for them.
    qtbot.waitUntil(dialog.clone_button.isEnabled, timeout=30000)
    assert "base.qcow2: read as qcow2" in dialog.chains.text()
    _run_job(window, qtbot, lambda: qtbot.mouseClick(dialog.clone_button,
                                                     Qt.MouseButton.LeftButton))

    clone_disk = guest.folder / f"{clone_name}-vda.qcow2"
    source_top = guest.folder / f"{guest.name}-vda.qcow2"
    for overlay in (clone_disk, source_top):
        info = subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                              capture_output=True, text=True, check=True).stdout
        assert f'"backing-filename": "{guest.disk}"' in info
    clone = off_gui_thread(lambda: guest.conn.lookupByName(clone_name))
    clone_xml = off_gui_thread(clone.XMLDesc, 0)
    source_xml = off_gui_thread(lambda: guest.dom.XMLDesc(0))
    assert f"file='{clone_disk}'" in clone_xml and f"file='{source_top}'" in source_xml
    assert off_gui_thread(clone.UUIDString) != off_gui_thread(lambda: guest.dom.UUIDString())
    off_gui_thread(clone.create)
    off_gui_thread(wait_for_prompt, clone, BOOT_S)
    off_gui_thread(clone.destroy)
    assert _sha256(guest.disk) == base_before  # neither machine ever writes the base


def _run_job(window, qtbot, click) -> None:
    """Click what starts a task and wait until it has finished well."""
    count = len(window.runner.jobs)
    click()
    qtbot.waitUntil(lambda: len(window.runner.jobs) > count, timeout=60000)
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=180000)
    assert job.state is JobState.DONE, (job.error, job.log_text())


def test_take_revert_delete_from_the_snapshots_tab(window, qtbot, guest):
    from PySide6.QtCore import Qt

    dom = off_gui_thread(lambda: guest.dom)
    off_gui_thread(dom.create)
    off_gui_thread(wait_for_prompt, dom, BOOT_S)
    _select(window, qtbot, guest.name)
    panel = window.details.snapshots
    window.details.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.take_button.isEnabled()
                    and "running" in window.details._fields["state"].text().lower(),
                    timeout=60000)
    dialogs = []
    window.confirm_requested.connect(dialogs.append)
    qtbot.mouseClick(panel.take_button, Qt.MouseButton.LeftButton)
    dialog = dialogs[-1]
    memory = next(b for k, b in dialog.kind_buttons.items() if k.name == "EXTERNAL_MEMORY")
    assert memory.isEnabled() and memory.isChecked()  # the default for a running machine
    qtbot.keyClicks(dialog.name_edit, "first")
    assert "first.qcow2" in dialog.files.text() and "first.mem" in dialog.files.text()
    _run_job(window, qtbot, lambda: qtbot.mouseClick(dialog.take_button,
                                                     Qt.MouseButton.LeftButton))
    qtbot.waitUntil(lambda: [s.name for s in panel.snapshots if s.current] == ["first"],
                    timeout=60000)
    assert panel.tree.topLevelItem(0).text(2) == "external, with memory"

    for verb, says in (("Revert", "set back to first"), ("Delete Snapshot", "merged")):
        assert panel.select("first")
        before = len(dialogs)
        button = panel.revert_button if verb == "Revert" else panel.delete_button
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda b=before: len(dialogs) > b, timeout=60000)
        box = dialogs[-1]
        assert says in box.text(), box.text()
        go = next(b for b in box.buttons() if b.text() == verb)
        _run_job(window, qtbot, lambda g=go: qtbot.mouseClick(g, Qt.MouseButton.LeftButton))
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 0, timeout=60000)
    off_gui_thread(dom.destroy)
    check = subprocess.run(["qemu-img", "check", str(guest.disk)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(p.name for p in guest.folder.iterdir()) == ["base.qcow2"]


# ---- offline chains: data written with qemu-io, checked block by block --------------------


def _write(image: Path, byte: int) -> None:
    subprocess.run(["qemu-io", "-c", f"write -P {byte} 0 64k", str(image)], check=True,
                   capture_output=True)


def _holds(image: Path, byte: int) -> bool:
    done = subprocess.run(["qemu-io", "-r", "-c", f"read -P {byte} 0 64k", str(image)],
                          capture_output=True, text=True)
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def _top(conn: HostConnection, name: str) -> Path:
    xml = conn.virconn.lookupByName(name).XMLDesc(0)
    root = ET.fromstring(xml)
    return Path(root.find("devices/disk/source").get("file"))


def _snap(conn, runner, guest, name):
    finish(snapshots.create_snapshot(runner, conn, domain_entity(conn, guest.name), name, "",
                                     snapshots.SnapshotKind.EXTERNAL_DISK,
                                     [s.name for s in snapshots.read_snapshots(
                                         conn.virconn, guest.dom.UUIDString())]))
    conn.refresh_domain(guest.dom.UUIDString()).result(timeout=60)


def test_revert_across_branches_keeps_every_snapshot_s_data(guest, host):
    conn, runner = host
    uuid = guest.dom.UUIDString()
    _write(guest.disk, 0x11)
    _snap(conn, runner, guest, "s1")
    _write(_top(conn, guest.name), 0x22)
    _snap(conn, runner, guest, "s2")
    _write(_top(conn, guest.name), 0x33)
    s1_overlay = guest.folder / f"{guest.name}-vda.s1.qcow2"

    plan = conn.call(snapshots.plan_revert, uuid, "s1").result(timeout=60)
    fates = {Path(f.path).name: f.fate for f in plan.files}
    assert fates[f"{guest.name}-vda.s2.qcow2"].startswith("deleted")  # only the 0x33 writes
    assert s1_overlay.name not in fates  # s2 still needs it: untouched
    entity = domain_entity(conn, guest.name)
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))
    top = _top(conn, guest.name)
    assert top.name == f"{guest.name}-vda.s1-1.qcow2" and _holds(top, 0x11)
    assert _holds(s1_overlay, 0x22)  # s2's disk state survived the revert

    plan = conn.call(snapshots.plan_revert, uuid, "s2").result(timeout=60)
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))
    assert _holds(_top(conn, guest.name), 0x22)
    assert not top.exists()  # the branch left behind held nothing a snapshot needs
    current = [s.name for s in snapshots.read_snapshots(conn.virconn, uuid) if s.current]
    assert current == ["s2"]


def test_delete_of_a_snapshot_later_ones_depend_on_is_refused(guest, host):
    conn, runner = host
    uuid = guest.dom.UUIDString()
    entity = domain_entity(conn, guest.name)
    _write(guest.disk, 0x11)
    _snap(conn, runner, guest, "s1")
    _write(_top(conn, guest.name), 0x22)
    _snap(conn, runner, guest, "s2")
    plan = conn.call(snapshots.plan_revert, uuid, "s1").result(timeout=60)
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))
    _snap(conn, runner, guest, "s3")  # a second branch on base.qcow2
    branch_base = guest.folder / f"{guest.name}-vda.s1-1.qcow2"
    plan = conn.call(snapshots.plan_revert, uuid, "s2").result(timeout=60)
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))

    # Merging would change s3's base; removing only the record would let libvirt point
    # s2 and s3 at base.qcow2. Neither happens: the delete is refused.
    with pytest.raises(VirtStudioError, match=r"s2, s3 were taken after s1.*delete them first"):
        conn.call(snapshots.plan_delete, uuid, "s1").result(timeout=60)
    assert _holds(guest.disk, 0x11) and _holds(branch_base, 0x11)  # s3's disk is unchanged
    assert _holds(_top(conn, guest.name), 0x22)
    assert [s.name for s in snapshots.read_snapshots(conn.virconn, uuid)] == ["s1", "s2", "s3"]


def test_delete_keeps_every_file_while_another_machine_reads_the_base(guest, host, lab_images):
    conn, runner = host
    uuid = guest.dom.UUIDString()
    _write(guest.disk, 0x11)
    _snap(conn, runner, guest, "s1")
    overlay = _top(conn, guest.name)
    reader_disk = guest.folder / "reader.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest.disk),
                    "-F", "qcow2", str(reader_disk)], check=True)
    reader = f"{guest.name}-reader"
    guest.others.append(reader)
    guest.conn.defineXML(lab_domain_xml(reader, lab_images, disks=[reader_disk]))
    _write(overlay, 0x22)

    plan = conn.call(snapshots.plan_delete, uuid, "s1").result(timeout=60)
    assert plan.metadata_only and reader in plan.summary
    assert {f.fate for f in plan.files} == {"kept as it is"}
    finish(snapshots.delete_snapshot(runner, conn, domain_entity(conn, guest.name), plan))
    assert snapshots.read_snapshots(conn.virconn, uuid) == []
    assert overlay.exists() and _top(conn, guest.name) == overlay and _holds(overlay, 0x22)
    assert _holds(guest.disk, 0x11) and _holds(reader_disk, 0x11)  # the reader is unharmed
    subprocess.run(["qemu-img", "check", str(guest.disk)], check=True, capture_output=True)


def test_changed_host_stops_a_stale_revert(guest, host):
    conn, runner = host
    uuid = guest.dom.UUIDString()
    _snap(conn, runner, guest, "s1")
    plan = conn.call(snapshots.plan_revert, uuid, "s1").result(timeout=60)
    _snap(conn, runner, guest, "s2")  # the disks change after the question was answered
    top = _top(conn, guest.name)
    job = snapshots.revert_snapshot(runner, conn, domain_entity(conn, guest.name), plan)
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is JobState.FAILED and "changed since you were asked" in job.error.message
    assert _top(conn, guest.name) == top and top.exists()


def test_full_clone_copies_the_data_and_bad_input_changes_nothing(guest, host):
    from virtstudio.core.errors import VirtStudioError
    from virtstudio.machines.clone import DiskMode, clone_domain

    conn, runner = host
    _write(guest.disk, 0x44)
    entity = domain_entity(conn, guest.name)
    for bad in (f"{guest.name} copy", "a/b", guest.name):
        with pytest.raises(VirtStudioError):
            clone_domain(runner, conn, entity, bad, {"vda": DiskMode.COPY})
    assert sorted(p.name for p in guest.folder.iterdir()) == ["base.qcow2"]

    name = f"{guest.name}-full"
    guest.others.append(name)
    finish(clone_domain(runner, conn, entity, name, {"vda": DiskMode.COPY}))
    copy = guest.folder / f"{name}-vda.qcow2"
    assert _top(conn, name) == copy and _top(conn, guest.name) == guest.disk
    subprocess.run(["qemu-img", "compare", str(guest.disk), str(copy)], check=True,
                   capture_output=True)
    info = subprocess.run(["qemu-img", "info", str(copy)], capture_output=True, text=True,
                          check=True).stdout
    assert "backing file" not in info  # a full copy stands alone


def test_internal_snapshot_revert_and_delete_on_a_shut_off_guest(guest, host):
    conn, runner = host
    uuid = guest.dom.UUIDString()
    _write(guest.disk, 0x55)
    finish(snapshots.create_snapshot(runner, conn, domain_entity(conn, guest.name), "inside",
                                     "", snapshots.SnapshotKind.INTERNAL, []))
    assert sorted(p.name for p in guest.folder.iterdir()) == ["base.qcow2"]  # no new file
    _write(guest.disk, 0x66)
    entity = domain_entity(conn, guest.name)
    plan = conn.call(snapshots.plan_revert, uuid, "inside").result(timeout=60)
    assert "changes since then are lost" in plan.summary
    finish(snapshots.revert_snapshot(runner, conn, entity, plan))
    assert _holds(guest.disk, 0x55)
    plan = conn.call(snapshots.plan_delete, uuid, "inside").result(timeout=60)
    finish(snapshots.delete_snapshot(runner, conn, entity, plan))
    assert snapshots.read_snapshots(conn.virconn, uuid) == [] and _holds(guest.disk, 0x55)
    listing = subprocess.run(["qemu-img", "snapshot", "-l", str(guest.disk)],
                             capture_output=True, text=True, check=True).stdout
    assert "inside" not in listing


def test_internal_revert_is_refused_while_another_machine_reads_the_disk(guest, host,
                                                                          lab_images):
    from virtstudio.core.errors import VirtStudioError

    conn, runner = host
    uuid = guest.dom.UUIDString()
    finish(snapshots.create_snapshot(runner, conn, domain_entity(conn, guest.name), "inside",
                                     "", snapshots.SnapshotKind.INTERNAL, []))
    _write(guest.disk, 0x77)
    reader_disk = guest.folder / "reader.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(guest.disk),
                    "-F", "qcow2", str(reader_disk)], check=True)
    reader = f"{guest.name}-reader"
    guest.others.append(reader)
    guest.conn.defineXML(lab_domain_xml(reader, lab_images, disks=[reader_disk]))
    with pytest.raises(VirtStudioError, match=f"{reader} reads .* as a base"):
        conn.call(snapshots.plan_revert, uuid, "inside").result(timeout=60)
    assert _holds(guest.disk, 0x77) and _holds(reader_disk, 0x77)


def test_clone_dialog_lists_the_chain_and_wants_an_outside_backing_file_named(
        window, qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLineEdit

    name = f"vstest-clonebk-{os.getpid()}"
    folder = IMAGES / name
    folder.mkdir()
    outside = tmp_path / "shared-base.img"
    outside.write_bytes(b"\0" * (1024 * 1024))
    disk = folder / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(outside), "-F", "raw",
                    str(disk), "1M"], check=True)
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    ET.SubElement(ET.SubElement(root, "os"), "type", arch="x86_64").text = "hvm"
    el = ET.SubElement(ET.SubElement(root, "devices"), "disk", type="file", device="disk")
    ET.SubElement(el, "driver", name="qemu", type="qcow2")
    ET.SubElement(el, "source", file=str(disk))
    ET.SubElement(el, "target", dev="vda", bus="virtio")
    conn = off_gui_thread(libvirt.open, SYSTEM_URI)
    clone = f"{name}-c"
    try:
        off_gui_thread(conn.defineXML, ET.tostring(root, encoding="unicode"))
        _select(window, qtbot, name)
        dialogs = []
        window.confirm_requested.connect(dialogs.append)
        window.machine_actions.show_clone()
        dialog = dialogs[-1]
        qtbot.waitUntil(lambda: "reads:" in dialog.chains.text(), timeout=30000)
        assert str(outside) in dialog.chains.text() and "OUTSIDE" in dialog.chains.text()
        confirm = dialog.findChild(QLineEdit, "cloneConfirmName0")
        assert confirm is not None and not dialog.clone_button.isEnabled()
        assert "Type the name" in dialog.error.text()
        dialog.name_edit.selectAll()
        qtbot.keyClicks(dialog.name_edit, clone)
        qtbot.keyClicks(confirm, "shared-base")
        assert not dialog.clone_button.isEnabled()
        qtbot.keyClicks(confirm, ".img")
        assert dialog.clone_button.isEnabled(), dialog.error.text()
        _run_job(window, qtbot, lambda: qtbot.mouseClick(dialog.clone_button,
                                                         Qt.MouseButton.LeftButton))
        assert (folder / f"{clone}-vda.qcow2").exists()
    finally:
        for gone in (clone, name):
            off_gui_thread(_remove, gone)
        shutil.rmtree(folder, ignore_errors=True)


def test_file_left_by_an_interrupted_snapshot_is_named_and_removed(guest, host):
    conn, runner = host
    entity = domain_entity(conn, guest.name)
    kind = snapshots.SnapshotKind.EXTERNAL_DISK
    [left] = snapshots.planned_files(entity, "s1", kind)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", left, "1M"], check=True)
    job = finish(snapshots.create_snapshot(runner, conn, entity, "s1", "", kind, []))
    assert f"{left} is left from an interrupted snapshot s1" in job.log_text()
    assert _top(conn, guest.name) == Path(left)  # the snapshot's own overlay, made anew
    info = subprocess.run(["qemu-img", "info", left], capture_output=True, text=True,
                          check=True).stdout
    assert str(guest.disk) in info


def test_file_a_machine_uses_is_never_taken_for_a_leftover(guest, host):
    from virtstudio.core.jobs import JobState

    conn, runner = host
    entity = domain_entity(conn, guest.name)
    kind = snapshots.SnapshotKind.EXTERNAL_DISK
    # Another machine's disk has the name this snapshot's overlay would get.
    [taken] = snapshots.planned_files(entity, "s2", kind)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", taken, "1M"], check=True)
    other = f"{guest.name}-other"
    guest.others.append(other)
    guest.conn.defineXML(f"<domain type='qemu'><name>{other}</name><memory>65536</memory>"
                         "<os><type>hvm</type></os><devices><disk type='file' device='disk'>"
                         f"<driver name='qemu' type='qcow2'/><source file='{taken}'/>"
                         "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    job = snapshots.create_snapshot(runner, conn, entity, "s2", "", kind, [])
    wait_for(lambda: job.state.finished, timeout=120)
    assert job.state is JobState.FAILED
    assert job.error.message.startswith(f"{taken} exists already and the machine {other} "
                                        "uses it"), job.error.message
    assert Path(taken).exists() and _top(conn, guest.name) == guest.disk
