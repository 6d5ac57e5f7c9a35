"""LVM thin provisioning on loop devices, inside the kernel lab (this host has no device-mapper)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import lvm

pytestmark = pytest.mark.kernel_lab
MiB = 1024 * 1024


def run(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True,
                          timeout=120).stdout.strip()


@pytest.fixture
def loop_devices(tmp_path):
    subprocess.run(["modprobe", "loop"], check=False)
    subprocess.run(["modprobe", "dm-thin-pool"], check=True)
    devices = []
    for i in range(3):
        backing = tmp_path / f"disk{i}.img"
        with backing.open("wb") as f:
            f.truncate(256 * MiB)
        devices.append(run("losetup", "--find", "--show", str(backing)))
    yield devices
    for device in devices:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def vg_name(loop_devices):
    name = f"vsvg{uuid.uuid4().hex[:6]}"
    yield name
    subprocess.run(["vgremove", "--yes", "--force", name], capture_output=True)


def test_thin_pool_and_volumes_on_loop_devices(loop_devices, vg_name):
    lvm.create_volume_group(vg_name, loop_devices[:2])
    lvm.create_thin_pool(vg_name, "pool0", 128 * MiB)
    path = lvm.create_thin_volume(vg_name, "pool0", "disk1", 10 * 1024 * MiB)
    assert path == f"/dev/{vg_name}/disk1" and Path(path).exists()
    volume = next(v for v in lvm.thin_volumes(vg_name) if v.name == "disk1")
    assert volume.size == 10 * 1024 * MiB and volume.pool == "pool0"  # 10 GiB on 128 MiB
    with open(path, "r+b") as disk:
        disk.write(os.urandom(32 * MiB))
        disk.flush()
        os.fsync(disk.fileno())
    pool = next(p for p in lvm.thin_pools(vg_name) if p.name == "pool0")
    assert 20.0 < pool.data_percent < 40.0 and pool.metadata_percent > 0
    snap = lvm.snapshot_thin_volume(vg_name, "disk1", "disk1-snap")
    assert Path(snap).exists()
    lvm.extend(vg_name, "disk1", 12 * 1024 * MiB)
    assert next(v for v in lvm.thin_volumes(vg_name) if v.name == "disk1").size == 12 * 1024 * MiB


def test_devices_in_use_are_refused_untouched(loop_devices, vg_name, tmp_path):
    lvm.create_volume_group(vg_name, loop_devices[:1])
    with pytest.raises(VirtStudioError, match="already an LVM physical volume"):
        lvm.create_volume_group(f"{vg_name}b", [loop_devices[0]])
    run("mkfs.ext4", "-q", "-F", loop_devices[2]) if Path("/sbin/mkfs.ext4").exists() else None
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", loop_devices[2], str(mountpoint)], capture_output=True)
    try:
        if mounted.returncode == 0:
            with pytest.raises(VirtStudioError, match="is mounted"):
                lvm.create_volume_group(f"{vg_name}c", [loop_devices[2]])
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
    with pytest.raises(VirtStudioError, match="not a name LVM accepts"):
        lvm.create_volume_group("-bad", [loop_devices[1]])
    with pytest.raises(VirtStudioError, match="does not fit"):
        lvm.create_thin_pool(vg_name, "toobig", 10 * 1024 * MiB)
    assert run("pvs", "--noheadings", "-o", "pv_name").count(loop_devices[1]) == 0


def test_full_thin_pool_refuses_new_volumes(loop_devices, vg_name):
    lvm.create_volume_group(vg_name, loop_devices[:1])
    lvm.create_thin_pool(vg_name, "small", 16 * MiB, error_when_full=True)
    path = lvm.create_thin_volume(vg_name, "small", "big", 256 * MiB)
    subprocess.run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", "count=20",
                    "oflag=direct"], capture_output=True, timeout=120)
    pool = next(p for p in lvm.thin_pools(vg_name) if p.name == "small")
    assert pool.data_percent >= 100.0
    with pytest.raises(VirtStudioError, match="is full"):
        lvm.create_thin_volume(vg_name, "small", "another", 16 * MiB)
