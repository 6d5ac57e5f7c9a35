"""Pool actions as jobs on the real libvirtd: create with build, autostart, stop, start,
refresh, delete with and without data, and libvirt's source discovery."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import libvirt
import pytest

from tests.helpers import wait_for
from tests.lab.daemon import SYSTEM_URI
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.storage.pool_jobs import (
    PoolAction,
    ask_delete_pool,
    create_pool,
    delete_pool,
    find_sources,
    run_pool_action,
)
from virtstudio.storage.pools import PoolSpec

IMAGES = Path("/var/lib/libvirt/images")


@pytest.fixture
def host(system_libvirtd):
    connection = HostConnection(SYSTEM_URI, stats_interval=0)
    runner = JobRunner()
    connection.open().result(60)
    yield connection, runner
    runner.shutdown(wait=True)
    connection.shutdown()


@pytest.fixture
def pool_name():
    name = f"vstest-life-{os.getpid()}"
    yield name
    conn = libvirt.open(SYSTEM_URI)
    try:
        pool = conn.storagePoolLookupByName(name)
        if pool.isActive():
            pool.destroy()
        pool.undefine()
    except libvirt.libvirtError:
        pass
    shutil.rmtree(IMAGES / name, ignore_errors=True)


def finish(job, state=JobState.DONE):
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is state, job.log_text()
    return job


def pool_of(connection, name, **expect):
    def match():
        pool = next((p for p in connection.pools.values() if p.name == name), None)
        if pool is None and expect.get("gone"):
            return True
        if pool is not None and all(getattr(pool, k) == v for k, v in expect.items()):
            return pool
        return None
    return wait_for(match, timeout=60)


def test_dir_pool_from_create_to_delete(host, pool_name):
    connection, runner = host
    folder = IMAGES / pool_name
    finish(create_pool(runner, connection, PoolSpec("dir", pool_name, target_path=str(folder)),
                       autostart=True))
    assert folder.is_dir()  # built by libvirt
    pool = pool_of(connection, pool_name, active=True, autostart=True)
    assert pool.pool_type == "dir" and pool.target_path == str(folder)

    finish(run_pool_action(runner, connection, pool, PoolAction.AUTOSTART_OFF))
    pool = pool_of(connection, pool_name, autostart=False)
    (folder / "added-outside.raw").write_bytes(b"\0" * 4096)
    finish(run_pool_action(runner, connection, pool, PoolAction.REFRESH))
    pool = wait_for(lambda: next((p for p in connection.pools.values()
                                  if p.name == pool_name and len(p.volumes) == 1), None))
    finish(run_pool_action(runner, connection, pool, PoolAction.STOP))
    pool = pool_of(connection, pool_name, active=False)
    finish(run_pool_action(runner, connection, pool, PoolAction.START))
    pool = pool_of(connection, pool_name, active=True)

    # Deleting without data forgets the pool and keeps the files.
    plans = ask_delete_pool(connection, pool).result(30)
    finish(delete_pool(runner, connection, pool, plans[False], with_data=False))
    pool_of(connection, pool_name, gone=True)
    assert (folder / "added-outside.raw").exists()


def test_delete_with_data_removes_volumes_and_folder(host, pool_name):
    connection, runner = host
    folder = IMAGES / pool_name
    finish(create_pool(runner, connection, PoolSpec("dir", pool_name, target_path=str(folder))))
    (folder / "scratch.raw").write_bytes(b"\0" * 4096)
    pool = pool_of(connection, pool_name, active=True)
    finish(run_pool_action(runner, connection, pool, PoolAction.REFRESH))
    pool = wait_for(lambda: next((p for p in connection.pools.values()
                                  if p.name == pool_name and p.volumes), None))
    plan = ask_delete_pool(connection, pool).result(30)[True]
    assert [loss.path for loss in plan.lost] == [str(folder / "scratch.raw")]
    finish(delete_pool(runner, connection, pool, plan, with_data=True))
    pool_of(connection, pool_name, gone=True)
    assert not folder.exists()


def test_bad_spec_and_failed_build_leave_nothing(host, pool_name):
    connection, runner = host
    with pytest.raises(VirtStudioError, match="absolute path"):
        create_pool(runner, connection, PoolSpec("dir", pool_name, target_path="rel"))
    # libvirt refuses to build a disk pool on a device that does not exist: the
    # definition made for it is removed again.
    job = finish(create_pool(runner, connection,
                             PoolSpec("disk", pool_name, source_device="/dev/vsnodisk9"),
                             autostart=True), JobState.FAILED)
    assert "Removing the new definition" in job.log_text()
    conn = libvirt.open(SYSTEM_URI)
    with pytest.raises(libvirt.libvirtError):
        conn.storagePoolLookupByName(pool_name)


def test_logical_source_discovery_lists_a_volume_group(host, tmp_path):
    connection, _runner = host
    backing = tmp_path / "pv.img"
    with backing.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    loop = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                          capture_output=True, text=True).stdout.strip()
    vg = f"vsdisc{os.getpid()}"
    try:
        subprocess.run(["vgcreate", "--yes", vg, loop], check=True, capture_output=True)
        found = find_sources(connection, "logical").result(60)
        mine = [s for s in found if s.values["source_name"] == vg]
        assert mine and loop in mine[0].label
    finally:
        subprocess.run(["vgremove", "--yes", "--force", vg], capture_output=True)
        subprocess.run(["pvremove", "--yes", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
