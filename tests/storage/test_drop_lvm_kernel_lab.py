"""Drop a loop device onto Storage and confirm: a volume group, a thin pool and a libvirt
logical pool over it; a cancelled drop writes nothing; a PV of that group and a full thin
pool are refused in words.  Runs in the kernel lab (this host has no device-mapper); the
window talks to libvirt's test driver, as no libvirtd runs inside the lab VM."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from PySide6.QtCore import Qt

from tests.storage.dropping import device_mime, drop
from virtstudio.core.connection import ConnectionState
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobState
from virtstudio.storage import drop_plans, lvm
from virtstudio.storage.thin import PROFILE_DIR, profile_name, read_autoextend
from virtstudio.ui.drop_confirm import DropConfirmDialog
from virtstudio.ui.host_devices_view import DEVICE_MIME

pytestmark = pytest.mark.kernel_lab
MiB = 1024 * 1024


def blkid(device: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True,
                          text=True).stdout


@pytest.fixture
def loops(tmp_path):
    subprocess.run(["modprobe", "loop"], check=False)
    subprocess.run(["modprobe", "dm-thin-pool"], check=True)
    made = []
    for i in range(2):
        backing = tmp_path / f"disk{i}.img"
        with backing.open("wb") as f:
            f.truncate(128 * MiB)
        made.append(subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                                   capture_output=True, text=True).stdout.strip())
    yield made
    for device in made:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def vg_name(loops):
    name = f"vsdrop{uuid.uuid4().hex[:6]}"
    yield name
    subprocess.run(["vgremove", "--yes", "--force", name], capture_output=True)
    for device in loops:
        subprocess.run(["pvremove", "--yes", device], capture_output=True)
    (PROFILE_DIR / f"{profile_name(name, 'thinpool')}.profile").unlink(missing_ok=True)


def test_drop_confirm_makes_an_lvm_thin_pool(make_main_window, qtbot, loops, vg_name):
    window = make_main_window(Inventory(stats_interval=0))
    host = window.inventory.add("test:///default")
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=15000)
    top = window.host_model.index(0, 0)
    window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
    dialogs: list[DropConfirmDialog] = []
    window.confirm_requested.connect(
        lambda d: dialogs.append(d) if isinstance(d, DropConfirmDialog) else None)
    first, second = loops

    # Cancelled: nothing is written to the disk.
    assert drop(window.storage_page, device_mime(window, second, qtbot))
    dialogs[-1].choose("lvm-thin")
    dialogs[-1].name_edit.setText(f"{vg_name}x")
    assert dialogs[-1].go_button.isEnabled()
    qtbot.mouseClick(dialogs[-1].buttons.button(dialogs[-1].buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert blkid(second) == "" and dialogs[-1].job is None

    # Confirmed: a 16 MiB thin pool in a new group on the first disk.
    assert drop(window.storage_page, device_mime(window, first, qtbot))
    dialog = dialogs[-1]
    dialog.choose("lvm-thin")
    dialog.name_edit.setText(vg_name)
    qtbot.keyClicks(dialog.size_edit, "16M")
    text = dialog.writes.text()
    assert f"LVM physical volume metadata on {first}" in text
    assert f"Thin pool {vg_name}/thinpool of 16.0 MiB" in text
    qtbot.mouseClick(dialog.go_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.job.state.finished, timeout=120000)
    assert dialog.job.state is JobState.DONE, dialog.job.log_text()
    assert "TYPE=LVM2_member" in blkid(first)
    (pool,) = lvm.thin_pools(vg_name)
    assert pool.name == "thinpool" and pool.size == 16 * MiB
    model = window.pool_model
    qtbot.waitUntil(lambda: any(model.pool_at(r).name == vg_name
                                for r in range(model.rowCount())), timeout=10000)
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == vg_name)
    assert model.pool_at(row).pool_type == "logical"

    # The thin panel reads the pool, warns at the user's level and sets autoextend.
    thin = window.storage_tools.thin
    with qtbot.waitSignal(thin.updated, timeout=60000):
        window.pool_view.setCurrentIndex(model.index(row, 0))
    assert f"{vg_name}/thinpool" in thin.usage_label.text() and thin.warning.text() == ""
    assert "Autoextend is off" in thin.autoextend_label.text()  # LVM's default

    # Filled to 100 % (exactly its 16 MiB, so no write waits): the panel says so, and
    # no new thin volume is made.
    path = lvm.create_thin_volume(vg_name, "thinpool", "filler", 64 * MiB)
    done = subprocess.run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", "count=16",
                           "oflag=direct"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # A periodic read started before the pool filled may still arrive: wait for the fresh one.
    thin.reread()
    qtbot.waitUntil(lambda: "is full (data)" in thin.warning.text(), timeout=60000)
    with pytest.raises(VirtStudioError, match="is full"):
        lvm.create_thin_volume(vg_name, "thinpool", "another", 16 * MiB)

    # The remedy the warning names: grow it.
    lvm.extend(vg_name, "thinpool", 32 * MiB)
    assert lvm.thin_pools(vg_name)[0].size == 32 * MiB

    # Autoextend set from the panel, through the helper, and read back from LVM.
    thin.grow_at.setValue(70)
    thin.grow_by.setValue(25)
    qtbot.mouseClick(thin.apply_button, Qt.MouseButton.LeftButton)
    job = window.runner.jobs[-1]
    qtbot.waitUntil(lambda: job.state.finished, timeout=60000)
    assert job.state is JobState.DONE, job.log_text()
    thin.reread()
    qtbot.waitUntil(lambda: "reaches 70 %" in thin.autoextend_label.text(), timeout=60000)
    assert read_autoextend(vg_name, "thinpool").threshold == 70

    # A thin volume of any virtual size from the panel; a name LVM rejects is refused first.
    thin.new_name.setText("-bad")
    thin.new_size.setText("10G")
    assert thin.create_volume() is None
    assert "not a name LVM accepts" in thin.new_error.text()
    thin.new_name.setText("vm1")
    job = thin.create_volume()
    qtbot.waitUntil(lambda: job.state.finished, timeout=60000)
    assert job.state is JobState.DONE, job.log_text()
    assert next(v for v in lvm.thin_volumes(vg_name) if v.name == "vm1").size == 10 * 1024 * MiB
    thin.reread()
    qtbot.waitUntil(lambda: any(thin.volume_list.item(i).text().startswith(f"/dev/{vg_name}/vm1")
                                for i in range(thin.volume_list.count())), timeout=60000)
    items = [thin.volume_list.item(i) for i in range(thin.volume_list.count())]
    vm1 = next(i for i in items if i.text().startswith(f"/dev/{vg_name}/vm1 (10.0 GiB promised"))
    mime = thin.volume_list.mimeData([vm1])  # what dragging it onto a machine carries
    assert bytes(mime.data(DEVICE_MIME).data()).decode() == f"/dev/{vg_name}/vm1"
    assert drop_plans.block_device_problem(f"/dev/{vg_name}/vm1") == ""

    # The disk is now a PV of that group: a second drop is refused and changes nothing.
    assert drop(window.storage_page, device_mime(window, first, qtbot))
    assert "LVM physical volume already; nothing was changed" in dialogs[-1].error.text()
    assert not dialogs[-1].go_button.isEnabled()
    dialogs[-1].reject()
    assert [p.name for p in lvm.thin_pools(vg_name)] == ["thinpool"]
    assert os.path.exists(path)


def test_libvirt_logical_pool_over_the_group_lists_its_thin_volumes(loops, vg_name):
    """A real libvirt storage driver (a private libvirtd inside the lab VM, whose /run is
    its own) over the group a drop makes, and what it lists of it."""
    from pathlib import Path

    import libvirt

    from tests.lab.daemon import PrivateLibvirtd
    from virtstudio.storage.pools import PoolSpec, pool_xml

    lvm.create_volume_group(vg_name, [loops[0]])
    lvm.create_thin_pool(vg_name, "thinpool", 64 * MiB)
    lvm.create_thin_volume(vg_name, "thinpool", "disk1", 1024 * MiB)
    subprocess.run(["lvcreate", "--yes", "-L", "8m", "-n", "plain", vg_name], check=True,
                   capture_output=True)
    driver = Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/"
                  "libvirt_driver_storage.so")
    if not driver.exists():
        pytest.skip("libvirt's storage driver module is not installed")
    # Pools defined on the real host must not be autostarted inside the VM.
    state = Path("/run/libvirt/storage")
    state.mkdir(parents=True, exist_ok=True)
    (state / "autostarted").touch()
    daemon = PrivateLibvirtd()
    (daemon.drivers / driver.name).symlink_to(driver)
    daemon.start(timeout=60)
    try:
        conn = libvirt.open(f"storage+unix:///system?socket={daemon.socket}")
        pool = conn.storagePoolCreateXML(
            pool_xml(PoolSpec("logical", vg_name, source_name=vg_name)), 0)
        names = {v.name(): v for v in pool.listAllVolumes(0)}
        # libvirt 9 lists plain LVs and skips thin pools and thin LVs (its lvs parser
        # wants a device for every LV, and thin LVs have none): thin volumes reach a
        # machine as block disks (/dev/VG/LV), not as volumes of this pool.
        assert "plain" in names and names["plain"].info()[1] == 8 * MiB
        assert "thinpool" not in names and "disk1" not in names
        assert pool.info()[1] == 124 * MiB  # the group's size, from vgs
        pool.destroy()
        conn.close()
    finally:
        daemon.close()
