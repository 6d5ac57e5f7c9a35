"""Host devices from lsblk: sizes, file systems, and every way a device can be in use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from virtstudio.core.errors import VirtStudioError
from virtstudio.storage.host_devices import check_free, find_device, list_devices, parse_lsblk

MiB = 1024 * 1024


def run(*argv):
    subprocess.run(list(argv), check=True, capture_output=True, timeout=60)


def test_a_blank_loop_device_is_free(make_loop):
    loop = make_loop(96 * MiB)
    device = find_device(loop)
    assert device.kind == "loop" and device.size == 96 * MiB and device.free
    assert check_free(loop) == device
    assert "96.0 MiB loop device" in device.describe()


def test_root_disk_is_in_use():
    root = next(d for d in list_devices() if "/" in d.mountpoints or
                d.in_use == "holds the root file system")
    assert root.in_use == "holds the root file system"
    with pytest.raises(VirtStudioError, match="root file system; nothing was changed"):
        check_free(root.path)


def test_file_system_mounted_and_physical_volume_are_refused(make_loop, tmp_path):
    formatted, pv = make_loop(), make_loop()
    run("mkfs.ext4", "-q", "-F", formatted)
    assert "holds a ext4 file system" in find_device(formatted).in_use
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    run("mount", formatted, str(mountpoint))
    try:
        assert find_device(formatted).in_use == f"is mounted on {mountpoint}"
    finally:
        run("umount", str(mountpoint))
    run("pvcreate", "--yes", pv)
    try:
        with pytest.raises(VirtStudioError, match="LVM physical volume already"):
            check_free(pv)
    finally:
        subprocess.run(["pvremove", "--yes", pv], capture_output=True)


def test_partition_table_and_partitions(make_loop):
    loop = make_loop(64 * MiB)
    run("parted", "-s", loop, "mklabel", "gpt")
    assert find_device(loop).in_use == "has a gpt partition table"


def test_unknown_paths_are_refused():
    with pytest.raises(VirtStudioError, match="is not a disk, partition or loop device"):
        check_free("/dev/null")
    with pytest.raises(VirtStudioError, match="is not a disk"):
        find_device(str(Path("/nonexistent/dev")))


def test_parse_marks_swap_holders_and_partitioned_disks():
    text = """{"blockdevices": [
      {"name": "sda", "path": "/dev/sda", "size": 1000, "type": "disk", "fstype": null,
       "mountpoints": [null], "ro": false, "pttype": "gpt", "children": [
        {"name": "sda1", "path": "/dev/sda1", "size": 500, "type": "part", "fstype": "swap",
         "mountpoints": ["[SWAP]"], "ro": false},
        {"name": "sda2", "path": "/dev/sda2", "size": 500, "type": "part", "fstype": null,
         "mountpoints": [null], "ro": false}]},
      {"name": "sdb", "path": "/dev/sdb", "size": 1000, "type": "disk", "fstype": null,
       "mountpoints": [null], "ro": false},
      {"name": "sdc", "path": "/dev/sdc", "size": 1000, "type": "disk", "fstype": null,
       "mountpoints": [null], "ro": true},
      {"name": "zram0", "path": "/dev/zram0", "size": 0, "type": "disk"}]}"""
    devices = {d.name: d for d in parse_lsblk(text, swaps=["/dev/sda1"],
                                              holders={"sdb": ["dm-0"]})}
    assert set(devices) == {"sda", "sda1", "sda2", "sdb", "sdc"}
    assert devices["sda1"].in_use.startswith("is mounted on [SWAP]")
    assert devices["sda2"].free and devices["sda2"].parent == "sda"
    assert devices["sda"].in_use == "has a gpt partition table"
    assert devices["sdb"].in_use == "is in use by dm-0"
    assert devices["sdc"].in_use == "is read-only"
