"""Drops onto the Storage page on the real libvirtd: a loop device becomes a disk pool
(and a cancelled drop writes nothing), a folder a dir pool, an image file a volume, a
volume dropped on a machine its disk; devices in use and bad sizes or names are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import libvirt
import pytest
from PySide6.QtCore import Qt

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI
from tests.storage.conftest import make_loop  # noqa: F401 - the fixture itself
from tests.storage.dropping import device_mime, drop
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobState
from virtstudio.storage import qemu_img
from virtstudio.storage.volumes import volume_users
from virtstudio.ui.drop_confirm import DropConfirmDialog
from virtstudio.ui.storage_drops import file_mime
from virtstudio.ui.volume_model import VOLUME_MIME

MiB = 1024 * 1024
IMAGES = Path("/var/lib/libvirt/images")


def blkid(device: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True,
                          text=True).stdout


def _remove_pool(name: str) -> None:
    conn = libvirt.open(SYSTEM_URI)
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    if pool.isActive():
        pool.destroy()
    pool.undefine()


@pytest.fixture
def pool_names():
    names: list[str] = []
    yield names
    for name in names:
        off_gui_thread(_remove_pool, name)
        shutil.rmtree(IMAGES / name, ignore_errors=True)


@pytest.fixture
def storage_window(make_main_window, qtbot, system_libvirtd):
    window = make_main_window(Inventory(stats_interval=0))
    conn = window.inventory.add(SYSTEM_URI)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    top = window.host_model.index(0, 0)
    window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
    assert window.pages.currentWidget() is window.storage_page
    dialogs: list[DropConfirmDialog] = []
    window.confirm_requested.connect(
        lambda d: dialogs.append(d) if isinstance(d, DropConfirmDialog) else None)
    return window, conn, dialogs


def pool_named(window, name):
    model = window.pool_model
    return next((model.pool_at(r) for r in range(model.rowCount())
                 if model.pool_at(r).name == name), None)


def go(qtbot, dialog):
    assert dialog.go_button.isEnabled(), dialog.error.text()
    qtbot.mouseClick(dialog.go_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job is not None and dialog.job.state.finished, timeout=60000)
    assert dialog.job.state is JobState.DONE, dialog.job.log_text()


def test_loop_device_dropped_becomes_a_disk_pool_and_a_cancelled_drop_writes_nothing(
        storage_window, qtbot, make_loop, pool_names):  # noqa: F811
    window, _conn, dialogs = storage_window
    loop = make_loop(64 * MiB)
    name = f"vstest-disk-{os.getpid()}"
    pool_names.append(name)
    mime = device_mime(window, loop, qtbot)

    assert drop(window.storage_page, mime)
    dialog = dialogs[-1]
    dialog.choose("disk")
    dialog.name_edit.setText(name)
    assert f"A new GPT partition table on {loop}" in dialog.writes.text()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert dialog.job is None and blkid(loop) == "" and pool_named(window, name) is None

    assert drop(window.storage_page, device_mime(window, loop, qtbot))
    dialog = dialogs[-1]
    assert dialog is not dialogs[0]
    dialog.choose("disk")
    dialog.name_edit.setText(name)
    go(qtbot, dialog)
    assert "PTTYPE=gpt" in blkid(loop)
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and p.active,
                    timeout=60000)
    assert pool_named(window, name).pool_type == "disk"

    # The same disk dropped again names the partition table it erases, and Go waits
    # until the user has typed the device's name.
    assert drop(window.storage_page, device_mime(window, loop, qtbot))
    again = dialogs[-1]
    again.choose("lvm-thin")
    assert again.error.text() == ""
    assert f"Erased first: the gpt partition table, on {loop}" in \
        again.writes.text()
    assert again.type_edit.isVisibleTo(again) and not again.go_button.isEnabled()
    qtbot.keyClicks(again.type_edit, loop[:-1])
    assert not again.go_button.isEnabled()
    again.type_edit.setText(loop)
    assert again.go_button.isEnabled()
    again.reject()
    assert "PTTYPE=gpt" in blkid(loop)


def test_a_formatted_disk_is_erased_only_after_its_name_is_typed(
        storage_window, qtbot, make_loop, pool_names):  # noqa: F811
    window, _conn, dialogs = storage_window
    loop = make_loop(64 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, capture_output=True)
    name = f"vstest-wipe-{os.getpid()}"
    pool_names.append(name)
    assert drop(window.storage_page, device_mime(window, loop, qtbot))
    dialog = dialogs[-1]
    dialog.choose("disk")
    dialog.name_edit.setText(name)
    assert f"Erased first: the ext4 signature (a file system or volume), on {loop}" in \
        dialog.writes.text()
    assert dialog.type_label.text() == f"Type {loop} to erase what it holds:"
    assert not dialog.go_button.isEnabled()
    dialog.accept()  # Go without the name typed does nothing
    assert dialog.job is None and "TYPE=ext4" in blkid(loop)
    qtbot.keyClicks(dialog.type_edit, loop)
    go(qtbot, dialog)
    found = blkid(loop)
    assert "PTTYPE=gpt" in found and "ext4" not in found
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and p.active,
                    timeout=60000)


def test_devices_in_use_bad_sizes_and_names_are_refused(storage_window, qtbot, make_loop,  # noqa: F811
                                                        tmp_path):
    window, _conn, dialogs = storage_window
    loop, mounted = make_loop(64 * MiB), make_loop(64 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", mounted], check=True, capture_output=True)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", mounted, str(mountpoint)], check=True)
    try:
        assert drop(window.storage_page, device_mime(window, mounted, qtbot))
        dialog = dialogs[-1]
        assert f"is mounted on {mountpoint}" in dialog.error.text()
        assert not dialog.go_button.isEnabled()
        dialog.choose("disk")
        assert "is mounted" in dialog.error.text() and not dialog.go_button.isEnabled()
        dialog.reject()
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)

    assert drop(window.storage_page, device_mime(window, loop, qtbot))
    dialog = dialogs[-1]
    dialog.choose("lvm-thin")
    assert dialog.go_button.isEnabled()  # the defaults fit
    assert "Thin pool" in dialog.writes.text() and loop in dialog.writes.text()
    qtbot.keyClicks(dialog.size_edit, "10G")
    assert "does not fit" in dialog.error.text() and not dialog.go_button.isEnabled()
    dialog.size_edit.clear()
    dialog.name_edit.setText("-bad")
    assert "not a name LVM accepts" in dialog.error.text() and not dialog.go_button.isEnabled()
    dialog.name_edit.setText("vg_snapshot")
    assert "reserves" in dialog.error.text()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert blkid(loop) == ""  # nothing was written


def test_folder_becomes_a_dir_pool_and_an_image_its_volume(storage_window, qtbot, pool_names,
                                                           tmp_path):
    window, _conn, dialogs = storage_window
    name = f"vstest-drop-{os.getpid()}"
    pool_names.append(name)
    folder = IMAGES / name
    folder.mkdir()
    (folder / "kept.raw").write_bytes(b"x" * 4096)

    assert drop(window.storage_page, file_mime(folder))
    dialog = dialogs[-1]
    assert dialog.name_edit.text() == name
    assert "Nothing inside" in dialog.writes.text()
    go(qtbot, dialog)
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and p.active
                    and len(p.volumes) == 1, timeout=60000)
    assert (folder / "kept.raw").read_bytes() == b"x" * 4096

    model = window.pool_model
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))
    image = tmp_path / "guest.qcow2"
    qemu_img.create(image, 256 * MiB)
    assert drop(window.storage_page, file_mime(image))
    dialog = dialogs[-1]
    assert dialog.choice.key == "raw"  # the file's bytes never choose its format
    assert "256.0 MiB virtual" not in dialog.writes.text()
    dialog.choose("qcow2")
    assert f"A new volume guest.qcow2 in {name}" in dialog.writes.text()
    assert "itself is only read" in dialog.writes.text()
    assert f"{image}: read as qcow2" in dialog.reads.text()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert not (folder / "guest.qcow2").exists()
    assert drop(window.storage_page, file_mime(image))
    dialogs[-1].choose("qcow2")
    go(qtbot, dialogs[-1])
    assert qemu_img.info(folder / "guest.qcow2", "qcow2").virtual_size == 256 * MiB
    qtbot.waitUntil(lambda: len(pool_named(window, name).volumes) == 2, timeout=60000)

    # Dropping the same image again is refused before anything is copied.
    assert drop(window.storage_page, file_mime(image))
    assert "has a volume called guest.qcow2 already" in dialogs[-1].error.text()
    dialogs[-1].reject()


def test_a_backing_file_outside_the_pools_is_read_only_once_its_name_is_typed(
        storage_window, qtbot, pool_names, tmp_path):
    from PySide6.QtWidgets import QLineEdit

    window, _conn, dialogs = storage_window
    name = f"vstest-drop-bk-{os.getpid()}"
    pool_names.append(name)
    folder = IMAGES / name
    folder.mkdir()
    assert drop(window.storage_page, file_mime(folder))
    go(qtbot, dialogs[-1])
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and p.active,
                    timeout=60000)
    model = window.pool_model
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))
    secret = tmp_path / "private-notes.txt"
    secret.write_bytes(b"not for any disk\n" * 4096)
    image = tmp_path / "layered.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(secret), "-F", "raw",
                    str(image), "1M"], check=True)

    assert drop(window.storage_page, file_mime(image))
    dialog = dialogs[-1]
    assert dialog.choice.key == "raw" and f"{image}: read as raw" in dialog.reads.text()
    assert dialog.findChild(QLineEdit, "dropConfirmName0") is None
    dialog.choose("qcow2")
    assert str(secret) in dialog.reads.text() and "OUTSIDE" in dialog.reads.text()
    confirm = dialog.findChild(QLineEdit, "dropConfirmName0")
    assert confirm is not None and not dialog.go_button.isEnabled()
    qtbot.keyClicks(confirm, "private-notes")  # not quite its name
    assert not dialog.go_button.isEnabled()
    qtbot.keyClicks(confirm, ".txt")
    assert dialog.go_button.isEnabled()
    confirm.clear()
    assert not dialog.go_button.isEnabled()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert not (folder / "layered.qcow2").exists()


def test_volume_dropped_on_a_machine_is_attached(storage_window, qtbot, pool_names, lab_vm):
    window, conn, dialogs = storage_window
    name = f"vstest-att-{os.getpid()}"
    pool_names.append(name)
    folder = IMAGES / name
    folder.mkdir()
    qemu_img.create(folder / "data.qcow2", 64 * MiB)
    assert drop(window.storage_page, file_mime(folder))
    go(qtbot, dialogs[-1])
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and bool(p.volumes),
                    timeout=60000)
    model = window.pool_model
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))
    qtbot.waitUntil(lambda: window.volume_model.rowCount() == 1, timeout=60000)
    mime = window.volume_model.mimeData([window.volume_model.index(0, 0)])
    assert mime.hasFormat(VOLUME_MIME)

    window.host_view.setCurrentIndex(window.host_model.index(0, 0))  # the machine list
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    index = window.vm_view.selectionModel().selectedRows()[0]
    target = window.vm_view.visualRect(index).center()
    assert drop(window.vm_view.viewport(), mime, target)
    dialog = dialogs[-1]
    assert f"{lab_vm}'s definition gets the disk vd" in dialog.writes.text()
    assert "next starts" in dialog.writes.text()
    go(qtbot, dialog)
    pool = pool_named(window, name)
    qtbot.waitUntil(lambda: volume_users(conn, pool, "data.qcow2") == [lab_vm], timeout=60000)

    # A second drop of the same volume is refused: it is that machine's disk already.
    assert drop(window.vm_view.viewport(), mime, target)
    assert "already a disk of" in dialogs[-1].error.text()
    dialogs[-1].reject()


def test_free_disk_dropped_on_a_machine_is_attached_as_a_block_disk(
        storage_window, qtbot, make_loop, lab_vm, tmp_path):  # noqa: F811
    window, conn, dialogs = storage_window
    loop, mounted = make_loop(32 * MiB), make_loop(32 * MiB)
    free_mime = device_mime(window, loop, qtbot)  # dragged out of the Host devices list
    subprocess.run(["mkfs.ext4", "-q", "-F", mounted], check=True, capture_output=True)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", mounted, str(mountpoint)], check=True)
    try:
        mounted_mime = device_mime(window, mounted, qtbot)
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)

    window.host_view.setCurrentIndex(window.host_model.index(0, 0))
    qtbot.waitUntil(lambda: window.select_domain(lab_vm), timeout=60000)
    index = window.vm_view.selectionModel().selectedRows()[0]
    target = window.vm_view.visualRect(index).center()
    subprocess.run(["mount", mounted, str(mountpoint)], check=True)
    try:
        assert drop(window.vm_view.viewport(), mounted_mime, target)
        assert f"is mounted on {mountpoint}; it was not attached" in dialogs[-1].error.text()
        assert not dialogs[-1].go_button.isEnabled()
        dialogs[-1].reject()
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)

    assert drop(window.vm_view.viewport(), free_mime, target)
    dialog = dialogs[-1]
    assert f"the block device {loop}" in dialog.writes.text()
    assert f"Nothing is written to {loop} now" in dialog.writes.text()
    go(qtbot, dialog)

    def disk_sources():
        dom = libvirt.open(SYSTEM_URI).lookupByName(lab_vm)
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    assert f"<source dev='{loop}'" in off_gui_thread(disk_sources)
    qtbot.waitUntil(lambda: any(d.source == loop for d in
                                conn.find_domain_by_name(lab_vm).summary.disks), timeout=60000)
    assert drop(window.vm_view.viewport(), free_mime, target)
    assert f"{loop} is already a disk of {lab_vm}" in dialogs[-1].error.text()
    dialogs[-1].reject()
    assert blkid(loop) == ""  # attaching wrote nothing to the disk


def test_several_items_dropped_at_once_are_confirmed_one_by_one(storage_window, qtbot,
                                                                  pool_names, tmp_path):
    window, _conn, dialogs = storage_window
    name = f"vstest-multi-{os.getpid()}"
    pool_names.append(name)
    folder = IMAGES / name
    folder.mkdir()
    assert drop(window.storage_page, file_mime(folder))
    go(qtbot, dialogs[-1])
    qtbot.waitUntil(lambda: (p := pool_named(window, name)) is not None and p.active,
                    timeout=60000)
    model = window.pool_model
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))
    images = [tmp_path / "one.qcow2", tmp_path / "two.qcow2", tmp_path / "three.qcow2"]
    for image in images:
        qemu_img.create(image, 16 * MiB)

    opened = len(dialogs)
    assert drop(window.storage_page, file_mime(*images))
    first = dialogs[-1]
    assert len(dialogs) == opened + 1  # one question at a time
    assert first.windowTitle() == "Import one.qcow2 (1 of 3)"
    go(qtbot, first)
    qtbot.waitUntil(lambda: len(dialogs) == opened + 2, timeout=60000)
    second = dialogs[-1]
    assert second.windowTitle() == "Import two.qcow2 (2 of 3)"
    qtbot.mouseClick(second.buttons.button(second.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialogs) == opened + 3, timeout=60000)
    third = dialogs[-1]
    assert third.windowTitle() == "Import three.qcow2 (3 of 3)"
    go(qtbot, third)
    qtbot.waitUntil(lambda: {v.name for v in pool_named(window, name).volumes}
                    == {"one.qcow2", "three.qcow2"}, timeout=60000)
    assert not (folder / "two.qcow2").exists()
    assert len(dialogs) == opened + 3
