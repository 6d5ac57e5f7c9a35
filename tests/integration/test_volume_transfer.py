"""Volume upload and download through libvirt streams on a real dir pool: a sparse round
trip, and cancelled transfers that leave no partial file or volume behind."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.lab.daemon import SYSTEM_URI
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.storage import volume_transfer
from virtstudio.storage.volume_transfer import download_volume, upload_volume

MiB = 1024 * 1024


@pytest.fixture
def transfer_pool(system_libvirtd):
    name = f"vstest-xfer-{os.getpid()}"
    folder = Path(f"/var/lib/libvirt/images/{name}")
    folder.mkdir(parents=True, exist_ok=True)
    off_gui_thread(lambda: libvirt.open(SYSTEM_URI).storagePoolCreateXML(
        f"<pool type='dir'><name>{name}</name><target><path>{folder}</path></target></pool>",
        0))
    host = HostConnection(SYSTEM_URI, stats_interval=0)
    runner = JobRunner()
    host.open().result(60)
    yield host, runner, name, folder
    runner.shutdown(wait=True)
    host.shutdown()

    def destroy() -> None:
        try:
            libvirt.open(SYSTEM_URI).storagePoolLookupByName(name).destroy()
        except libvirt.libvirtError:
            pass

    off_gui_thread(destroy)
    shutil.rmtree(folder, ignore_errors=True)


def pool_of(host, name, volumes=None):
    return wait_for(lambda: next((p for p in host.pools.values() if p.name == name and
                                  (volumes is None or len(p.volumes) == volumes)), None),
                    timeout=60)


def finish(job, state=JobState.DONE):
    wait_for(lambda: job.state.finished, timeout=120)
    assert job.state is state, job.log_text()
    return job


def sparse_file(path: Path, size: int, pieces: dict[int, bytes]) -> None:
    with path.open("wb") as f:
        f.truncate(size)
        for offset, data in pieces.items():
            f.seek(offset)
            f.write(data)


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_sparse_upload_and_download_round_trip(transfer_pool, tmp_path):
    host, runner, name, folder = transfer_pool
    source = tmp_path / "disk.raw"
    pieces = {8 * MiB: os.urandom(MiB), 40 * MiB: os.urandom(512 * 1024)}
    sparse_file(source, 64 * MiB, pieces)
    job = finish(upload_volume(runner, host, pool_of(host, name), source))
    assert job.progress == 1.0
    uploaded = folder / "disk.raw"
    assert uploaded.read_bytes() == source.read_bytes()
    assert allocated(uploaded) < 8 * MiB  # the holes stayed holes

    pool = pool_of(host, name, volumes=1)
    target = tmp_path / "back.raw"
    finish(download_volume(runner, host, pool, "disk.raw", target))
    assert target.stat().st_size == 64 * MiB
    assert target.read_bytes() == source.read_bytes()
    assert allocated(target) < 8 * MiB

    with pytest.raises(VirtStudioError, match=r"has a volume called disk\.raw"):
        upload_volume(runner, host, pool, source)
    with pytest.raises(VirtStudioError, match="exists already"):
        download_volume(runner, host, pool, "disk.raw", target)


def cancel_on_first_progress(runner):
    def watch(job):
        job.changed.connect(lambda j: j.cancel() if (j.progress or 0) > 0 else None)
    runner.job_added.connect(watch)


def test_cancelled_transfers_leave_nothing_behind(transfer_pool, tmp_path):
    host, runner, name, folder = transfer_pool
    source = tmp_path / "dense.raw"
    source.write_bytes(os.urandom(256 * 1024) * 512)  # 128 MiB of data, no holes
    finish(upload_volume(runner, host, pool_of(host, name), source))
    pool = pool_of(host, name, volumes=1)

    cancel_on_first_progress(runner)
    target = tmp_path / "partial.raw"
    finish(download_volume(runner, host, pool, "dense.raw", target), JobState.CANCELLED)
    assert not target.exists()

    again = tmp_path / "again.raw"
    shutil.copyfile(source, again)
    job = finish(upload_volume(runner, host, pool, again), JobState.CANCELLED)
    assert "Removed the partial volume again.raw" in job.log_text()
    assert not (folder / "again.raw").exists()
    assert not _listed(name, "again.raw")
    assert (folder / "dense.raw").read_bytes() == source.read_bytes()


def _listed(pool: str, volume: str) -> bool:
    """Whether libvirt lists ``volume`` after reading the pool's folder again."""
    def look() -> bool:
        found = libvirt.open(SYSTEM_URI).storagePoolLookupByName(pool)
        found.refresh(0)
        return volume in found.listVolumes()
    return off_gui_thread(look)


def test_failed_upload_removes_its_partial_volume(transfer_pool, tmp_path, monkeypatch):
    host, runner, name, folder = transfer_pool
    source = tmp_path / "shrinks.raw"
    source.write_bytes(os.urandom(256 * 1024) * 256)  # 64 MiB of data, no holes

    real, calls = volume_transfer._section, []

    def failing_read(fd: int, pos: int, size: int):
        calls.append(pos)
        if len(calls) > 3:  # some data has gone: the volume is partial
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, pos, size)

    monkeypatch.setattr(volume_transfer, "_section", failing_read)
    job = finish(upload_volume(runner, host, pool_of(host, name), source), JobState.FAILED)
    assert "Input/output error" in job.error.message
    assert "Removed the partial volume shrinks.raw" in job.log_text()
    assert not (folder / "shrinks.raw").exists()
    assert not _listed(name, "shrinks.raw")
    wait_for(lambda: not any(v.name == "shrinks.raw" for v in pool_of(host, name).volumes),
             timeout=60)


def test_upload_and_download_from_the_storage_page(make_main_window, qtbot, transfer_pool,
                                                   tmp_path):
    from virtstudio.core.inventory import Inventory

    _host, _runner, name, folder = transfer_pool
    window = make_main_window(Inventory(stats_interval=0))
    conn = window.inventory.add(SYSTEM_URI)
    qtbot.waitUntil(lambda: conn.state.name == "CONNECTED", timeout=60000)
    top = window.host_model.index(0, 0)
    window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
    model = window.pool_model
    qtbot.waitUntil(lambda: any(model.pool_at(r).name == name
                                for r in range(model.rowCount())), timeout=60000)
    row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == name)
    window.pool_view.setCurrentIndex(model.index(row, 0))
    tools = window.storage_tools
    assert tools.upload_action.isEnabled() and tools.download_action.isEnabled()
    source = tmp_path / "page.raw"
    sparse_file(source, 16 * MiB, {MiB: b"page" * 1024})
    finish(tools.upload(source))
    qtbot.waitUntil(lambda: window.volume_model.rowCount() == 1, timeout=60000)
    window.volume_view.setCurrentIndex(window.volume_model.index(0, 0))
    target = tmp_path / "page-back.raw"
    finish(tools.download(target))
    assert target.read_bytes() == source.read_bytes()
    tools.upload(source)  # the same name again: refused with a message, nothing sent
    from PySide6.QtWidgets import QMessageBox

    box = next(w for w in window.findChildren(QMessageBox) if w.objectName() == "errorBox")
    assert "has a volume called page.raw" in box.text()
    assert len(list(folder.iterdir())) == 1
