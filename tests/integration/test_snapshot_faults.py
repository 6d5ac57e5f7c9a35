"""Snapshot jobs broken at each step by a daemon that dies.

The machines live on a private QEMU libvirtd (the fixtures of test_job_faults.py,
with a daemon that keeps its run state as a host's does), which the test kills
in the middle of a snapshot with memory (before the request, while the memory is
saved) or of a delete that merges an overlay (before the request and during the
merge, shut off; during the merge, running), then starts again.  The machine's
disk must still hold every write, the machine must start, anything the job could
not finish must be named in its message with what to do, and doing the job
again must succeed.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration import test_job_faults as faults
from tests.integration.test_job_faults import _at_status, _entity, _finished
from tests.lab.qemu_daemon import PrivateQemuDaemon, qemu_daemon_unavailable
from virtstudio.core.jobs import JobState
from virtstudio.machines import snapshots

pytestmark = pytest.mark.skipif(bool(qemu_daemon_unavailable()),
                                reason=qemu_daemon_unavailable() or "available")
MEMORY = snapshots.SnapshotKind.EXTERNAL_MEMORY
DISK_ONLY = snapshots.SnapshotKind.EXTERNAL_DISK
CHUNK = 1 << 20
# The machine and connection fixtures of the clone faults, on the daemon defined below.
source = faults.source
host = faults.host


@pytest.fixture
def daemon():
    """A private daemon that finds its running guests again after it is killed."""
    made = off_gui_thread(lambda: PrivateQemuDaemon(storage=True))
    off_gui_thread(made.start)
    yield made
    off_gui_thread(made.close)


def _qemu_io(path: Path, command: str, *, write: bool) -> subprocess.CompletedProcess:
    argv = ["qemu-io", "-f", "qcow2", *([] if write else ["-r", "-U"]), "-c", command,
            str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _write(path: Path, offset: int, length: int, byte: int) -> None:
    done = _qemu_io(path, f"write -P {byte} {offset} {length}", write=True)
    assert done.returncode == 0 and "wrote" in done.stdout, done.stdout + done.stderr


def _holds(path: Path, offset: int, length: int, byte: int) -> bool:
    done = _qemu_io(path, f"read -P {byte} {offset} {length}", write=False)
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def _when(condition: Callable[[], bool], action: Callable[[], None],
          stop: threading.Event) -> threading.Thread:
    """Poll ``condition`` on a thread of its own and run ``action`` once it holds."""
    fired = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                met = condition()
            except (OSError, libvirt.libvirtError):
                met = False
            if met:
                action()
                fired.set()
                return
            stop.wait(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.fired = fired
    thread.start()
    return thread


def _snapshot(conn, runner, source, name: str, kind: snapshots.SnapshotKind):
    entity = _entity(conn, source.name)
    existing = [s.name for s in snapshots.read_snapshots(source.conn(), entity.uuid)]
    return _finished(snapshots.create_snapshot(runner, conn, entity, name, "", kind, existing))


def _delete(conn, runner, source, name: str):
    entity = _entity(conn, source.name)
    plan = conn.call(snapshots.plan_delete, entity.uuid, name).result(timeout=60)
    assert not plan.metadata_only, plan.describe()
    return plan, _finished(snapshots.delete_snapshot(runner, conn, entity, plan),
                           timeout=300)


def _names(source) -> list[str]:
    dom = source.conn().lookupByName(source.name)
    return sorted(s.getName() for s in dom.listAllSnapshots(0))


def _running_entity(conn, source):
    def running():
        entity = _entity(conn, source.name)
        conn.refresh_domain(entity.uuid).result(timeout=60)
        found = conn.find_domain_by_name(source.name)
        return found if found is not None and found.state.is_active else None

    return wait_for(running, timeout=90)


def _left_part(message: str) -> str:
    return message.split("Left:", 1)[1] if "Left:" in message else ""


# ---- a snapshot with memory --------------------------------------------------------------


@pytest.mark.parametrize("step", ["before the request", "while the memory is saved"])
def test_daemon_death_during_a_memory_snapshot(daemon, source, host, step):
    conn, runner = host
    dom = source.conn().lookupByName(source.name)
    dom.create()
    _running_entity(conn, source)
    name = "m1"
    mem = source.folder / f"{source.name}.{name}.mem"
    overlay = source.folder / f"{source.name}-vda.{name}.qcow2"
    stop = threading.Event()
    if step == "before the request":
        _at_status(runner, "Taking snapshot", lambda _job: daemon.kill())
        watcher = None
    else:
        watcher = _when(lambda: mem.exists() and mem.stat().st_size > 0, daemon.kill, stop)
    try:
        job = _snapshot(conn, runner, source, name, MEMORY)
    finally:
        stop.set()
    if watcher is not None:
        assert watcher.fired.is_set(), "the memory file never appeared: " + job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to {conn.name} was lost during taking "
                              f"snapshot {name}"), message
    off_gui_thread(daemon.start)

    # Every file the job made and the daemon did not take over is named, with what to do.
    listed = name in _names(source)
    made = [p for p in (mem, overlay) if p.exists()]
    if not listed:
        for path in made:
            assert str(path) in _left_part(message), message
    # The machine runs on: the daemon, started again, finds it and takes up where the
    # interrupted snapshot paused it (it resumes guests whose memory was being saved).
    dom = source.conn().lookupByName(source.name)
    assert dom.isActive(), "the guest died with the daemon"
    wait_for(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, timeout=60, interval=0.2)
    subprocess.run(["qemu-img", "check", "-U", str(source.top())], check=True,
                   capture_output=True)

    # The retry: what is left from the interrupted snapshot never makes it fail.
    if listed:
        _finished(snapshots.delete_snapshot(
            runner, conn, _entity(conn, source.name),
            conn.call(snapshots.plan_delete, dom.UUIDString(), name).result(timeout=60)))
    _running_entity(conn, source)
    leftover = [p for p in (mem, overlay) if p.exists()]
    job = _snapshot(conn, runner, source, name, MEMORY)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    for path in leftover:
        assert f"{path} is left from an interrupted snapshot" in job.log_text()
    print(f"{step}: {message}\nretry: {job.log_text()}")
    assert _names(source) == [name]
    assert mem.exists() and source.top() == overlay
    dom.destroy()
    off_gui_thread(source.startable)


# ---- a delete that merges the overlay ---------------------------------------------------


def _prepared_merge(conn, runner, source, size_mib: int) -> tuple[Path, Path]:
    """A shut-off machine with snapshot s1 whose overlay holds ``size_mib`` MiB of changes."""
    subprocess.run(["qemu-img", "resize", "-q", "-f", "qcow2", str(source.disk),
                    f"{max(64, size_mib * 2)}M"], check=True)
    _write(source.disk, 0, CHUNK, 0xA)
    job = _snapshot(conn, runner, source, "s1", DISK_ONLY)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    overlay = source.top()
    assert overlay != source.disk
    _write(overlay, 0, size_mib * CHUNK, 0xB)
    return source.disk, overlay


def _merged_or_whole(base: Path, overlay: Path, size_mib: int) -> None:
    """What the machine reads now still holds every write made after s1."""
    assert _holds(overlay if overlay.exists() else base, 0, size_mib * CHUNK, 0xB)


@pytest.mark.parametrize("step", ["before the request", "while the overlay is merged"])
def test_daemon_death_during_a_merging_delete(daemon, source, host, step):
    conn, runner = host
    size = 4 if step == "before the request" else 384
    base, overlay = off_gui_thread(_prepared_merge, conn, runner, source, size, timeout=300)
    stop = threading.Event()
    watcher = None
    if step == "before the request":
        _at_status(runner, "Deleting s1", lambda _job: daemon.kill())
    else:
        watch = libvirt.open(daemon.uri)

        def committing() -> bool:
            dom = watch.lookupByName(source.name)
            return dom.isActive() and bool(dom.blockJobInfo("vda", 0))

        watcher = _when(committing, daemon.kill, stop)
    try:
        _plan, job = _delete(conn, runner, source, "s1")
    finally:
        stop.set()
    if watcher is not None:
        assert watcher.fired.is_set(), "the merge never showed as a block job: " + job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to {conn.name} was lost during deleting "
                              "snapshot s1 and merging"), message
    off_gui_thread(daemon.start)

    listed = "s1" in _names(source)
    if listed:
        assert str(overlay) in _left_part(message) and "delete it again" in message, message
    dom = source.conn().lookupByName(source.name)
    if dom.isActive():
        # The paused QEMU libvirt started for the merge: what the message says to do.
        assert f"the machine {source.name}, if it shows as running and paused" in message
        try:
            dom.destroy()
        except libvirt.libvirtError:
            assert not dom.isActive()  # the daemon stopped it meanwhile
    _merged_or_whole(base, overlay, size)
    off_gui_thread(source.startable)

    # The retry finishes the merge and leaves the base holding every write.
    if "s1" in _names(source):
        _plan, job = _delete(conn, runner, source, "s1")
        assert job.state is JobState.DONE, (job.error, job.log_text())
    assert _names(source) == []
    assert source.top() == base and not overlay.exists(), source.files()
    assert _holds(base, 0, size * CHUNK, 0xB)
    off_gui_thread(source.startable)
    print(f"{step}: {message}")


def test_daemon_death_while_a_running_machine_merges(daemon, source, host):
    conn, runner = host
    size = 384
    base, overlay = off_gui_thread(_prepared_merge, conn, runner, source, size, timeout=300)
    source.conn().lookupByName(source.name).create()
    _running_entity(conn, source)
    stop = threading.Event()
    watch = libvirt.open(daemon.uri)
    watcher = _when(lambda: bool(watch.lookupByName(source.name).blockJobInfo("vda", 0)),
                    daemon.kill, stop)
    try:
        _plan, job = _delete(conn, runner, source, "s1")
    finally:
        stop.set()
    assert watcher.fired.is_set(), "the merge never showed as a block job: " + job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert f"merging {overlay.name} into {base.name}" in message, message
    off_gui_thread(daemon.start)

    # The guest runs on, still on the overlay, with s1 listed: what the message covers.
    dom = source.conn().lookupByName(source.name)
    wait_for(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING, timeout=60, interval=0.2)
    assert "s1" in _names(source) and source.top() == overlay
    assert str(overlay) in _left_part(message) and "delete it again" in message, message
    # The retry finishes the merge while the guest runs; the base then holds every write.
    _plan, job = _delete(conn, runner, source, "s1")
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert _names(source) == [] and source.top() == base and not overlay.exists()
    source.conn().lookupByName(source.name).destroy()
    assert _holds(base, 0, size * CHUNK, 0xB)
    off_gui_thread(source.startable)
