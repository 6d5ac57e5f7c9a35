"""Jobs that change several things, broken at each step by a daemon that dies.

A private QEMU libvirtd (tests/lab/qemu_daemon.py) holds the machines, so the
test may kill it mid-job and start it again: the source of a linked clone must
stay whole and startable, nothing half-made may stay behind unnamed, the job
must say what was done and what is left, and a retry must succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.conftest import connected_host
from tests.lab.guest import lab_domain_xml
from tests.lab.qemu_daemon import PrivateQemuDaemon, qemu_daemon_unavailable
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines.clone import DiskMode, clone_domain
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import discover
from virtstudio.machines.import_image import import_site, review_import
from virtstudio.machines.new_vm import InstallSource, NetworkChoice, VmSpec
from virtstudio.storage.volume_transfer import upload_volume

pytestmark = pytest.mark.skipif(bool(qemu_daemon_unavailable()),
                                reason=qemu_daemon_unavailable() or "available")
IMAGES = Path("/var/lib/libvirt/images")


@pytest.fixture
def daemon():
    made = off_gui_thread(PrivateQemuDaemon)
    off_gui_thread(made.start)
    yield made
    off_gui_thread(made.close)


class Source:
    """A shut-off machine on the private daemon with one qcow2 disk in a folder of its own."""

    def __init__(self, tag: str, uri: str, images) -> None:
        self.name = f"vstest-fault-{tag}-{os.getpid()}"
        self.uri = uri
        self.folder = IMAGES / self.name
        self.folder.mkdir()
        self.disk = self.folder / "base.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.disk), "32M"],
                       check=True)
        libvirt.open(uri).defineXML(lab_domain_xml(self.name, images, graphics=(),
                                                   disks=[self.disk]))

    def conn(self) -> libvirt.virConnect:
        return libvirt.open(self.uri)

    def top(self, name: str | None = None) -> Path:
        xml = self.conn().lookupByName(name or self.name).XMLDesc(0)
        return Path(ET.fromstring(xml).find("devices/disk/source").get("file"))

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())

    def defined(self, name: str) -> bool:
        try:
            self.conn().lookupByName(name)
        except libvirt.libvirtError:
            return False
        return True

    def startable(self) -> None:
        """QEMU opens the whole disk chain when it starts: a broken chain fails here."""
        dom = self.conn().lookupByName(self.name)
        dom.create()
        dom.destroy()
        subprocess.run(["qemu-img", "check", str(self.top())], check=True, capture_output=True)

    def remove(self, names: list[str]) -> None:
        try:
            conn = self.conn()
            for name in [*names, self.name]:
                try:
                    dom = conn.lookupByName(name)
                except libvirt.libvirtError:
                    continue
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        except libvirt.libvirtError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def source(request, daemon, lab_images):
    made = off_gui_thread(Source, request.node.name[5:20].replace("_", "-").strip("-[]"),
                          daemon.uri, lab_images)
    clones: list[str] = []
    made.clones = clones
    yield made
    off_gui_thread(made.remove, clones)


@pytest.fixture
def host(daemon):
    with connected_host(daemon.uri) as pair:
        yield pair


def _entity(conn: HostConnection, name: str):
    def find():
        if conn.state is not ConnectionState.CONNECTED:
            return None
        conn.call(lambda _c: None).result(timeout=60)  # let queued refreshes land
        return conn.find_domain_by_name(name)

    return wait_for(find, timeout=90)


def _at_status(runner: JobRunner, prefix: str, action) -> list[str]:
    """Run ``action`` once, on the job's thread, when a job's status starts with ``prefix``."""
    seen: list[str] = []

    def changed(job) -> None:
        if not seen and job.status.startswith(prefix):
            seen.append(job.status)
            action(job)

    runner.job_changed.connect(changed)
    return seen


def _finished(job, timeout: float = 120.0):
    wait_for(lambda: job.state.finished, timeout=timeout, interval=0.1)
    return job


def _retry_succeeds(conn, runner, source, name: str, mode: DiskMode = DiskMode.LINKED) -> None:
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": mode}))
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert source.top(name) == source.folder / f"{name}-vda.qcow2"
    if mode is DiskMode.LINKED:
        assert source.top() != source.disk and source.top().parent == source.folder
    else:
        assert source.top() == source.disk
        subprocess.run(["qemu-img", "compare", str(source.disk), str(source.top(name))],
                       check=True, capture_output=True)
    off_gui_thread(source.startable)


# Every step boundary before the source is touched: the daemon dies, nothing changed.
@pytest.mark.parametrize("step", ["vda: linked clone", "Creating ", "Defining "])
def test_daemon_death_before_the_source_moves_leaves_it_whole(daemon, source, host, step):
    conn, runner = host
    name = f"{source.name}-c"
    source.clones.append(name)
    seen = _at_status(runner, step, lambda _job: daemon.kill())
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": DiskMode.LINKED}))
    assert seen, job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to {conn.name} was lost during"), message
    assert f"{source.name} was not changed" in message and "Left: nothing" in message, message

    off_gui_thread(daemon.start)
    assert source.files() == ["base.qcow2"]
    assert source.top() == source.disk and not source.defined(name)
    off_gui_thread(source.startable)
    _retry_succeeds(conn, runner, source, name)


def test_daemon_death_as_the_source_moves_names_what_is_left(daemon, source, host):
    conn, runner = host
    name = f"{source.name}-c"
    source.clones.append(name)
    _at_status(runner, "Moving ", lambda _job: daemon.kill())
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": DiskMode.LINKED}))
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert f"was lost during moving {source.name} onto its new overlays" in message, message
    assert f"defined {name}" in message  # done
    clone_disk = source.folder / f"{name}-vda.qcow2"
    new_top = source.folder / f"{source.name}-vda.qcow2"
    assert source.files() == sorted(["base.qcow2", clone_disk.name, new_top.name])
    for left in (f"the machine {name}", str(clone_disk), str(new_top)):
        assert left in message.split("Left:")[1], message

    off_gui_thread(daemon.start)
    # The source's redefinition never arrived: it still runs from its own disk.
    assert source.top() == source.disk
    off_gui_thread(source.startable)
    # What the message says to do, then the retry.
    source.conn().lookupByName(name).undefine()
    clone_disk.unlink()
    new_top.unlink()
    assert source.files() == ["base.qcow2"]
    _retry_succeeds(conn, runner, source, name)


def test_failed_source_move_undoes_the_clone_and_keeps_the_source(daemon, source, host,
                                                                 monkeypatch):
    """The step that used to delete the source's new top after moving it there."""
    conn, runner = host
    name = f"{source.name}-c"
    source.clones.append(name)
    real = libvirt.virConnect.defineXML

    def refuse_the_move(self, xml):
        if f"<name>{source.name}</name>" in xml:
            raise libvirt.libvirtError("injected: the host refused the new definition")
        return real(self, xml)

    monkeypatch.setattr(libvirt.virConnect, "defineXML", refuse_the_move)
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": DiskMode.LINKED}))
    monkeypatch.undo()
    assert job.state is JobState.FAILED, job.log_text()
    assert "injected" in job.error.message.lower()
    assert source.files() == ["base.qcow2"]
    assert source.top() == source.disk and not source.defined(name)
    off_gui_thread(source.startable)
    _retry_succeeds(conn, runner, source, name)


def test_cancel_is_honoured_before_the_source_moves_and_refused_after(source, host):
    conn, runner = host
    # A full clone: once its definition is on the way, cancel says why it cannot.
    answers: list[bool] = []
    full = f"{source.name}-f"
    source.clones.append(full)
    _at_status(runner, "Defining ", lambda job: answers.append(job.cancel()))
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), full,
                                 {"vda": DiskMode.COPY}))
    assert answers == [False], job.log_text()
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert f"Cancel refused: {full} is being defined; delete {full} afterwards" in (
        job.log_text())
    files = source.files()  # the source's and the full clone's disk

    name = f"{source.name}-c"
    source.clones.append(name)
    _at_status(runner, "vda: linked clone", lambda job: job.cancel())
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": DiskMode.LINKED}))
    assert job.state is JobState.CANCELLED, (job.error, job.log_text())
    assert source.files() == files
    assert source.top() == source.disk and not source.defined(name)

    answers.clear()
    _at_status(runner, "Moving ", lambda job: answers.append(job.cancel()))
    job = _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                 {"vda": DiskMode.LINKED}))
    assert answers == [False]
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert "Cancel refused:" in job.log_text() and job.cancel_refused
    off_gui_thread(source.startable)


# ---- full clone: new files and a new definition, the source is only read -----------------


def _sha(path: Path) -> str:
    return subprocess.run(["sha256sum", str(path)], check=True, capture_output=True,
                          text=True).stdout.split()[0]


def _full_clone(conn, runner, source, name: str):
    return _finished(clone_domain(runner, conn, _entity(conn, source.name), name,
                                  {"vda": DiskMode.COPY}))


def _source_untouched(source, xml: str, digest: str) -> None:
    assert source.conn().lookupByName(source.name).XMLDesc(0) == xml
    assert _sha(source.disk) == digest
    off_gui_thread(source.startable)


# The copy runs in qemu-img, so a daemon that dies while it copies is met at the definition.
@pytest.mark.parametrize("step", ["vda: copying", "Defining "])
def test_daemon_death_during_a_full_clone_leaves_nothing(daemon, source, host, step):
    conn, runner = host
    name = f"{source.name}-f"
    source.clones.append(name)
    xml, digest = source.conn().lookupByName(source.name).XMLDesc(0), _sha(source.disk)
    seen = _at_status(runner, step, lambda _job: daemon.kill())
    job = _full_clone(conn, runner, source, name)
    assert seen, job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to {conn.name} was lost during defining {name}"), \
        message
    copy = source.folder / f"{name}-vda.qcow2"
    assert f"Done: copied {source.disk} to {copy}; removed {copy} again." in message, message
    assert f"{source.name} was not changed" in message and "Left: nothing" in message, message
    assert "pointer" not in message

    off_gui_thread(daemon.start)
    assert source.files() == ["base.qcow2"] and not source.defined(name)
    _source_untouched(source, xml, digest)
    _retry_succeeds(conn, runner, source, name, DiskMode.COPY)


def test_daemon_death_as_the_full_clone_is_defined_names_it(daemon, source, host, monkeypatch):
    """The definition arrives and the daemon dies before it answers: the clone may exist."""
    conn, runner = host
    name = f"{source.name}-f"
    source.clones.append(name)
    xml, digest = source.conn().lookupByName(source.name).XMLDesc(0), _sha(source.disk)
    real = libvirt.virConnect.defineXML

    def arrives_then_dies(self, text):
        real(self, text)
        daemon.kill()
        return real(self, text)  # the reply that never comes

    monkeypatch.setattr(libvirt.virConnect, "defineXML", arrives_then_dies)
    job = _full_clone(conn, runner, source, name)
    monkeypatch.undo()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    clone_disk = source.folder / f"{name}-vda.qcow2"
    assert f"was lost during defining {name}" in message, message
    assert f"{source.name} was not changed" in message, message
    left = message.split("Left:")[1]
    assert f"the machine {name}, if it is listed" in left and str(clone_disk) in left, message

    off_gui_thread(daemon.start)
    assert source.defined(name) and clone_disk.exists()
    _source_untouched(source, xml, digest)
    # What the message says to do, then the retry.
    source.conn().lookupByName(name).undefine()
    clone_disk.unlink()
    _retry_succeeds(conn, runner, source, name, DiskMode.COPY)


def test_cancel_during_a_full_copy_leaves_no_partial_file(source, host):
    conn, runner = host
    name = f"{source.name}-f"
    source.clones.append(name)
    _at_status(runner, "vda: copying", lambda job: job.cancel())
    job = _full_clone(conn, runner, source, name)
    assert job.state is JobState.CANCELLED, (job.error, job.log_text())
    assert source.files() == ["base.qcow2"] and not source.defined(name)
    _retry_succeeds(conn, runner, source, name, DiskMode.COPY)


# ---- import: a new machine defined on the user's image, then started ------------------------


class Brought:
    """An image the user brings, in a folder of its own, and the machines made on it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.folder = IMAGES / f"vstest-fault-import-{os.getpid()}"
        self.folder.mkdir()
        self.image = self.folder / "brought.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.image), "32M"],
                       check=True)
        self.digest = _sha(self.image)
        self.name = f"vstest-fault-import-{os.getpid()}"

    def machine(self) -> libvirt.virDomain | None:
        try:
            return libvirt.open(self.uri).lookupByName(self.name)
        except libvirt.libvirtError:
            return None

    def remove(self) -> None:
        try:
            dom = self.machine()
            if dom is not None:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        except libvirt.libvirtError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def brought(daemon):
    made = off_gui_thread(Brought, daemon.uri)
    yield made
    off_gui_thread(made.remove)


def _import(conn: HostConnection, runner: JobRunner, brought: Brought):
    facts = conn.call(discover).result(timeout=60)
    machines = facts.arch("x86_64").machines
    spec = VmSpec(name=brought.name, source=InstallSource.IMPORT,
                  import_path=str(brought.image), import_format="qcow2", arch="x86_64",
                  machine="q35" if "q35" in machines else machines[0], domain_type="qemu",
                  vcpus=1, memory_mib=256, network=NetworkChoice.NONE, graphics="vnc")
    site = import_site(conn.uri, list(conn.pools.values()))
    review = conn.call(review_import, str(brought.image), "qcow2", site).result(timeout=60)
    return _finished(create_vm(runner, conn, spec, host_context(conn, facts),
                               image_chain=review))


def _import_retry_succeeds(conn, runner, brought: Brought) -> None:
    wait_for(lambda: conn.state is ConnectionState.CONNECTED, timeout=90)
    job = _import(conn, runner, brought)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert brought.machine().isActive()


# The image is only read: a daemon that dies before the definition leaves nothing but it.
@pytest.mark.parametrize("step", ["Reading the backing chain", "Defining "])
def test_daemon_death_before_an_import_is_defined(daemon, brought, host, step):
    conn, runner = host
    seen = _at_status(runner, step, lambda _job: daemon.kill())
    job = _import(conn, runner, brought)
    assert seen, job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to {conn.name} was lost during defining "
                              f"{brought.name}. Done: nothing."), message
    # The definition was sent: whether it arrived cannot be known, so the message says how
    # to tell, and to keep the image.
    left = message.split("Left:")[1]
    assert f"the machine {brought.name}, if it is listed: delete it" in left, message
    assert f"keep {brought.image}" in left and "pointer" not in message, message

    off_gui_thread(daemon.start)
    assert brought.machine() is None
    assert _sha(brought.image) == brought.digest
    assert sorted(p.name for p in brought.folder.iterdir()) == ["brought.qcow2"]
    _import_retry_succeeds(conn, runner, brought)


def test_daemon_death_before_an_import_starts_names_the_machine(daemon, brought, host):
    conn, runner = host
    _at_status(runner, "Starting ", lambda _job: daemon.kill())
    job = _import(conn, runner, brought)
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert f"was lost during starting {brought.name}" in message, message
    assert f"Done: defined {brought.name}." in message, message
    left = message.split("Left:")[1]
    assert f"the machine {brought.name}, defined and perhaps not running: start it" in left
    assert f"keep {brought.image}" in left, message

    off_gui_thread(daemon.start)
    assert _sha(brought.image) == brought.digest
    dom = brought.machine()
    assert dom is not None and not dom.isActive()
    dom.create()  # what the message says: start it, or delete it and create it again
    dom.destroy()
    dom.undefine()
    _import_retry_succeeds(conn, runner, brought)


# ---- upload: the daemon dies with the volume half written ---------------------------------


@pytest.fixture
def storage_daemon():
    made = off_gui_thread(lambda: PrivateQemuDaemon(storage=True))
    off_gui_thread(made.start)
    name = f"vstest-fault-up-{os.getpid()}"
    folder = IMAGES / name
    folder.mkdir()
    off_gui_thread(lambda: libvirt.open(made.uri).storagePoolDefineXML(
        f"<pool type='dir'><name>{name}</name><target><path>{folder}</path></target></pool>",
        0).create(0))
    yield made, name, folder
    off_gui_thread(made.close)
    shutil.rmtree(folder, ignore_errors=True)


def _pool(conn: HostConnection, name: str):
    def find():
        if conn.state is not ConnectionState.CONNECTED:
            return None
        conn.call(lambda _c: None).result(timeout=60)
        return next((p for p in conn.pools.values() if p.name == name and p.active), None)

    return wait_for(find, timeout=90)


def test_daemon_death_mid_upload_names_the_partial_volume(storage_daemon, tmp_path):
    daemon, pool_name, folder = storage_daemon
    source = tmp_path / "dense.raw"
    source.write_bytes(os.urandom(256 * 1024) * 512)  # 128 MiB of data, no holes
    conn = HostConnection(daemon.uri, stats_interval=0)
    runner = JobRunner()
    try:
        conn.open().result(timeout=60)
        killed: list[bool] = []

        def kill_once_data_went(job) -> None:
            if not killed and (job.progress or 0) > 0:
                killed.append(True)
                daemon.kill()

        runner.job_changed.connect(kill_once_data_went)
        job = _finished(upload_volume(runner, conn, _pool(conn, pool_name), source))
        assert job.state is JobState.FAILED, job.log_text()
        message = job.error.message
        assert message.startswith(f"The connection to {conn.name} was lost during"), message
        partial = folder / "dense.raw"
        assert f"Left: the partial volume dense.raw ({partial})" in message, message
        assert "delete it" in message

        off_gui_thread(daemon.start)
        pool = libvirt.open(daemon.uri).storagePoolLookupByName(pool_name)
        if not pool.isActive():
            pool.create(0)
        pool.refresh(0)
        # What the message says: the volume is there, not whole; delete it, then retry.
        assert partial.exists()
        pool.storageVolLookupByName("dense.raw").delete(0)
        wait_for(lambda: not any(v.name == "dense.raw" for v in _pool(conn, pool_name).volumes),
                 timeout=90)
        job = _finished(upload_volume(runner, conn, _pool(conn, pool_name), source))
        assert job.state is JobState.DONE, (job.error, job.log_text())
        assert partial.read_bytes() == source.read_bytes()
    finally:
        runner.shutdown(wait=True)
        conn.shutdown()
