"""A real dir pool on the local libvirtd: thin volumes and a linked clone in the Storage view.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import libvirt
import pytest
from PySide6.QtCore import Qt

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI
from virtstudio.core.connection import ConnectionState
from virtstudio.core.inventory import Inventory
from virtstudio.storage import qemu_img

GiB = 1024**3


@pytest.fixture
def dir_pool(system_libvirtd):
    name = f"vstest-pool-{os.getpid()}"
    path = Path(f"/var/lib/libvirt/images/{name}")
    path.mkdir(parents=True, exist_ok=True)

    def define():
        conn = libvirt.open(SYSTEM_URI)
        pool = conn.storagePoolCreateXML(
            f"<pool type='dir'><name>{name}</name><target><path>{path}</path></target></pool>",
            0)
        pool.createXML(f"<volume><name>base.qcow2</name><capacity>{20 * GiB}</capacity>"
                       "<allocation>0</allocation><target><format type='qcow2'/></target>"
                       "</volume>", 0)
        return pool

    off_gui_thread(define)
    yield name, path

    def destroy():
        try:
            libvirt.open(SYSTEM_URI).storagePoolLookupByName(name).destroy()
        except libvirt.libvirtError:
            pass

    off_gui_thread(destroy)
    shutil.rmtree(path, ignore_errors=True)


def test_thin_volumes_and_linked_clone_in_the_storage_view(make_main_window, qtbot, dir_pool):
    name, path = dir_pool
    window = make_main_window(Inventory(stats_interval=0))
    conn = window.inventory.add(SYSTEM_URI)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    # libvirt made the volume thin: allocation far below its capacity.
    base = qemu_img.info(path / "base.qcow2", "qcow2")
    assert base.virtual_size == 20 * GiB and base.actual_size < 4 * 1024 * 1024
    qemu_img.linked_clone(path / "base.qcow2", path / "clone.qcow2", base_fmt="qcow2")
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).storagePoolLookupByName(name).refresh(0))

    host_index = window.host_model.index(0, 0)
    storage = window.host_model.index(1, 0, host_index)
    window.host_view.setCurrentIndex(storage)
    assert window.pages.currentWidget() is window.storage_page
    pools = window.pool_model
    qtbot.waitUntil(lambda: any(pools.pool_at(r).name == name for r in range(pools.rowCount())),
                    timeout=60000)
    row = next(r for r in range(pools.rowCount()) if pools.pool_at(r).name == name)
    qtbot.waitUntil(lambda: len(pools.pool_at(row).volumes) == 2, timeout=60000)
    window.pool_view.setCurrentIndex(pools.index(row, 0))
    volumes = window.volume_model
    qtbot.waitUntil(lambda: volumes.rowCount() == 2, timeout=60000)
    by_name = {volumes.index(r, 0).data(): r for r in range(2)}
    clone = by_name["clone.qcow2"]
    assert volumes.index(clone, 1).data() == "qcow2"
    assert volumes.index(clone, 4).data().endswith("base.qcow2")
    assert volumes.index(by_name["base.qcow2"], 2).data() == "20.0 GiB"
    headers = [pools.headerData(c, Qt.Orientation.Horizontal) for c in range(pools.columnCount())]
    promised = pools.index(row, headers.index("Promised")).data()
    assert promised == "40.0 GiB"  # two 20 GiB volumes promised on a few MiB of data
    assert pools.index(row, headers.index("Overcommit")).data().endswith("x")


def test_libvirt_creates_thin_and_preallocated_volumes_and_linked_clones(dir_pool):
    from tests.helpers import wait_for
    from virtstudio.core.connection import HostConnection
    from virtstudio.core.jobs import JobRunner, JobState
    from virtstudio.storage.volumes import VolumeSpec, create_volume

    name, path = dir_pool
    host = HostConnection(SYSTEM_URI, stats_interval=0)
    runner = JobRunner()
    try:
        host.open().result(60)
        pool = wait_for(lambda: next((p for p in host.pools.values() if p.name == name), None))

        def make(spec):
            job = create_volume(runner, host, pool, spec)
            wait_for(lambda: job.state.finished, timeout=60)
            assert job.state is JobState.DONE, job.log_text()

        make(VolumeSpec("thin.qcow2", 50 * GiB))
        make(VolumeSpec("meta.qcow2", GiB, preallocation="metadata"))
        make(VolumeSpec("full.raw", 32 * 1024 * 1024, format="raw", preallocation="full"))
        make(VolumeSpec("clone.qcow2", 20 * GiB, backing_path=str(path / "base.qcow2"),
                        backing_format="qcow2"))
        thin = qemu_img.info(path / "thin.qcow2", "qcow2")
        assert thin.virtual_size == 50 * GiB and thin.actual_size < 4 * 1024 * 1024
        assert qemu_img.info(path / "full.raw", "raw").actual_size >= 32 * 1024 * 1024
        clone = qemu_img.chain(path / "clone.qcow2", "qcow2")
        assert clone[0].backing.endswith("base.qcow2") and len(clone) == 2
        # The same checks refuse what cannot fit, before libvirt is asked.
        pool = next(p for p in host.pools.values() if p.name == name)
        with pytest.raises(Exception, match="does not fit"):
            create_volume(runner, host, pool, VolumeSpec("huge.raw", pool.available + GiB,
                                                         format="raw", preallocation="full"))
        assert not (path / "huge.raw").exists()
    finally:
        runner.shutdown(wait=True)
        host.shutdown()
