"""Upload and download of volumes through libvirt streams, sparse where libvirt can.

Holes travel as holes (VIR_STORAGE_VOL_*_SPARSE_STREAM) instead of runs of
zeros, so a mostly empty 20 GiB image moves in seconds and lands sparse.
Both directions are cancellable jobs: a cancelled or failed download removes
its partial file, a cancelled or failed upload removes the volume it made, or,
when it cannot (the daemon went away), says which volume is left to delete.
"""

from __future__ import annotations

import errno
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import (
    VirtStudioError,
    connection_lost,
    describe,
    lost_connection_error,
)
from virtstudio.core.jobs import Job, JobCancelled, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.storage.volumes import VolumeSpec, check_spec

CHUNK = 1024 * 1024
_NO_SPARSE = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG,
              libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED)


def _section(fd: int, pos: int, size: int) -> tuple[bool, int]:
    """(is data, length) of the run of data or hole that starts at ``pos``."""
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # only a hole is left
            return False, size - pos
        raise
    if data > pos:
        return False, data - pos
    return True, min(os.lseek(fd, pos, os.SEEK_HOLE), size) - pos


def _open_stream(conn: libvirt.virConnect, start: Callable[[libvirt.virStream, int], None],
                 sparse_flag: int, job: Job) -> tuple[libvirt.virStream, bool]:
    stream = conn.newStream(0)
    try:
        start(stream, sparse_flag)
        return stream, True
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in _NO_SPARSE:
            raise
    job.log("This host has no sparse streams: holes are sent as zeros")
    stream = conn.newStream(0)
    start(stream, 0)
    return stream, False


def _cancel_check(job: Job, stream: libvirt.virStream) -> None:
    if job.cancel_requested:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        raise JobCancelled()


def download_volume(runner: JobRunner, host: HostConnection, pool: StoragePool, name: str,
                    target: Path) -> Job:
    """Copy the volume's bytes into the new local file ``target``."""
    if target.exists():
        raise VirtStudioError(f"{target} exists already; nothing was overwritten.")
    if not target.parent.is_dir():
        raise VirtStudioError(f"The folder {target.parent} does not exist.")
    uuid = pool.uuid

    def work(job: Job) -> None:
        conn = host.virconn
        vol = conn.storagePoolLookupByUUIDString(uuid).storageVolLookupByName(name)
        total = max(1, vol.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2])
        stream, sparse = _open_stream(
            conn, lambda s, flags: vol.download(s, 0, 0, flags),
            libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM, job)
        job.report(0.0, f"Downloading {name} ({format_bytes(total)}) to {target}")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            done = 0
            while True:
                _cancel_check(job, stream)
                got = stream.recvFlags(CHUNK, libvirt.VIR_STREAM_RECV_STOP_AT_HOLE
                                       if sparse else 0)
                if got == -3:
                    length = stream.recvHole(0)
                    os.lseek(fd, length, os.SEEK_CUR)
                    done += length
                elif isinstance(got, bytes) and got:
                    view = memoryview(got)
                    while view:
                        view = view[os.write(fd, view):]
                    done += len(got)
                elif isinstance(got, bytes):
                    break
                else:
                    raise VirtStudioError(f"The download stream stopped ({got}).")
                job.report(min(done / total, 0.99))
            os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR))  # a trailing hole still counts
            stream.finish()
        except BaseException:
            os.close(fd)
            target.unlink(missing_ok=True)
            raise
        os.close(fd)
        job.report(1.0, f"Wrote {target} ({format_bytes(done)})")

    return runner.submit(f"Download {name}", work, host=host.name, target=name,
                         cancellable=True)


def _vol_path(vol: libvirt.virStorageVol) -> str:
    try:
        return vol.path()
    except libvirt.libvirtError:
        return vol.name()


def _remove_partial(job: Job, pool: libvirt.virStoragePool, vol: libvirt.virStorageVol,
                    stream: libvirt.virStream | None, name: str, path: str) -> str:
    """Delete the volume a failed upload made; "" when it is gone, else what is left.

    The stream is aborted first: libvirt refuses to delete a volume a stream still
    writes.  Gone means gone from a fresh listing of the pool, not just a delete
    that raised nothing."""
    if stream is not None:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass  # already finished or broken: either way it writes no more
    problem = ""
    for _attempt in range(20):
        try:
            vol.delete(0)
        except libvirt.libvirtError as exc:
            problem = describe(exc).message
            if connection_lost(exc):
                break
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                problem = ""
        try:
            pool.refresh(0)
            pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                job.log(f"Removed the partial volume {name}")
                return ""
            problem = describe(exc).message
            if connection_lost(exc):
                break
        time.sleep(0.25)  # a stream just aborted may hold the volume a moment
    job.log(f"Could not remove the partial volume {name}: {problem}")
    return (f"the partial volume {name} ({path}): delete it from the pool's volume list, "
            "it does not hold the whole file")


def upload_xml(name: str, size: int) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "capacity", unit="bytes").text = str(size)
    ET.SubElement(root, "allocation", unit="bytes").text = "0"
    ET.SubElement(ET.SubElement(root, "target"), "format", type="raw")
    return ET.tostring(root, encoding="unicode")


def upload_volume(runner: JobRunner, host: HostConnection, pool: StoragePool,
                  source: Path) -> Job:
    """A new volume named like ``source`` in ``pool``, holding its bytes exactly.

    The volume is made raw of the file's length; libvirt sees a qcow2 file's
    own format when it reads the pool again.
    """
    if not source.is_file():
        raise VirtStudioError(f"{source} is not a file; nothing was uploaded.")
    size = source.stat().st_size
    if size == 0:
        raise VirtStudioError(f"{source} is empty; nothing was uploaded.")
    problem = check_spec(VolumeSpec(source.name, size, "raw"), pool)
    if problem:
        raise VirtStudioError(problem)
    uuid, name = pool.uuid, source.name

    def work(job: Job) -> None:
        conn = host.virconn
        target = conn.storagePoolLookupByUUIDString(uuid)
        step = f"creating the volume {name}"
        vol = target.createXML(upload_xml(name, size), 0)
        path = _vol_path(vol)
        stream: libvirt.virStream | None = None
        pos = 0
        fd = os.open(source, os.O_RDONLY)
        try:
            step = f"starting the upload into {name}"
            stream, sparse = _open_stream(
                conn, lambda s, flags: vol.upload(s, 0, size, flags),
                libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM, job)
            job.report(0.0, f"Uploading {source} ({format_bytes(size)}) as {name}")
            step = f"the upload of {source} into {name}"
            while pos < size:
                _cancel_check(job, stream)
                in_data, length = _section(fd, pos, size) if sparse else (True, size - pos)
                if not in_data:
                    if os.fstat(fd).st_size < size:  # past a shorter file's end is no hole
                        raise VirtStudioError(f"{source} shrank while it was uploaded.")
                    stream.sendHole(length, 0)
                    pos += length
                else:
                    chunk = os.pread(fd, min(CHUNK, length), pos)
                    if not chunk:
                        raise VirtStudioError(f"{source} shrank while it was uploaded.")
                    stream.send(chunk)
                    pos += len(chunk)
                job.report(min(pos / size, 0.99))
            step = f"finishing the upload into {name}"
            stream.finish()
        except BaseException as exc:
            left = _remove_partial(job, target, vol, stream, name, path)
            host.refresh_pool(uuid)
            done = [f"created the volume {name}",
                    f"sent {format_bytes(pos)} of {format_bytes(size)}"]
            if connection_lost(exc):
                raise lost_connection_error(
                    exc, host.name, step, done, [f"the upload of {source}"],
                    [left] if left else []) from exc
            if left:
                raise VirtStudioError(f"{describe(exc).message} Left: {left}.",
                                      describe(exc).detail) from exc
            raise
        finally:
            os.close(fd)
        target.refresh(0)
        host.refresh_pool(uuid)
        job.report(1.0, f"Uploaded {name}")

    return runner.submit(f"Upload {name}", work, host=host.name, target=name, cancellable=True)
