"""A guest's disk bytes never decide how VirtStudio reads the disk.

The attack: a guest writes a qcow2 header into its own raw disk, naming a host
file (here a canary holding a secret) as the backing file.  Anything that lets
qemu-img guess the format from those bytes reads the host file into a clone,
an import, a copy or a new overlay.  Every test builds that disk with the real
qemu-img and checks that the secret never appears in what an operation writes
or says.  The libvirt tests use the real libvirtd with `vstest-imgfmt-*` names
and remove all they made, even on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.helpers import wait_for
from tests.lab.daemon import SYSTEM_URI, require_libvirtd
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines import domain_edit, snapshots
from virtstudio.machines.clone import DiskMode, clone_domain
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import discover
from virtstudio.machines.new_vm import DiskChoice, InstallSource, NetworkChoice, VmSpec
from virtstudio.storage import drop_plans, qemu_img
from virtstudio.storage.image_jobs import convert_job

MiB = 1024 * 1024
DISK_SIZE = 4 * MiB
IMAGES = Path("/var/lib/libvirt/images")


# ---- the hostile disk ---------------------------------------------------------------------


@pytest.fixture
def secret() -> bytes:
    return b"VSTEST-CANARY-" + os.urandom(8).hex().encode()


def make_canary(path: Path, secret: bytes) -> Path:
    """A host file full of the secret, so any block of it that is copied carries it."""
    line = secret + b"\n"
    path.write_bytes((line * (MiB // len(line) + 1))[:MiB])
    return path


def write_hostile_raw(path: Path, canary: Path, size: int = DISK_SIZE) -> Path:
    """A raw disk whose first bytes are a qcow2 header naming ``canary`` as backing file."""
    header = path.with_name(path.name + ".header")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(canary), "-F", "raw",
                    str(header), "1M"], check=True, timeout=60)
    data = header.read_bytes()
    header.unlink()
    with path.open("wb") as f:
        f.write(data)
        f.truncate(size)
    # The premise: a reader that guesses the format takes it for qcow2 over the canary.
    probed = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(path)],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert '"format": "qcow2"' in probed and str(canary) in probed
    return path


def assert_secret_absent(secret: bytes, *paths: Path) -> None:
    for path in paths:
        assert secret not in path.read_bytes(), f"{path} holds the canary's secret"


def recorded_backing_format(image: Path) -> str:
    """The backing format a qcow2 image records, as QEMU will read it."""
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", "-f", "qcow2", str(image)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out).get("backing-filename-format", "")


def read_as_qemu_does(image: Path, out: Path) -> Path:
    """The guest's view of a qcow2 top image, following the formats its chain records."""
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", str(image),
                    str(out)], check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture
def hostile(tmp_path, secret) -> tuple[Path, Path]:
    canary = make_canary(tmp_path / "canary-secret.txt", secret)
    return write_hostile_raw(tmp_path / "guest-disk.raw", canary), canary


# ---- qemu-img alone -----------------------------------------------------------------------


@pytest.mark.parametrize("target_format", ["raw", "qcow2"])
def test_convert_copies_a_raw_disk_byte_for_byte(hostile, tmp_path, secret, target_format):
    disk, _canary = hostile
    copy = tmp_path / f"copy.{target_format}"
    qemu_img.convert(disk, copy, fmt="raw", target_format=target_format)
    assert_secret_absent(secret, copy)
    plain = tmp_path / "copy-as-read.raw"
    subprocess.run(["qemu-img", "convert", "-f", target_format, "-O", "raw", str(copy),
                    str(plain)], check=True, timeout=60)
    assert plain.read_bytes() == disk.read_bytes()  # the guest's own bytes, nothing else


def test_convert_job_copies_a_raw_disk_byte_for_byte(hostile, tmp_path, secret):
    disk, _canary = hostile
    runner = JobRunner()
    try:
        job = convert_job(runner, disk, tmp_path / "job-copy.qcow2", fmt="raw")
        wait_for(lambda: job.state.finished, timeout=60)
        assert job.state is JobState.DONE, job.log_text()
        assert secret not in job.log_text().encode()
        assert_secret_absent(secret, tmp_path / "job-copy.qcow2")
    finally:
        runner.shutdown(wait=True)


def test_info_chain_and_measure_read_the_declared_format(hostile, secret):
    disk, canary = hostile
    info = qemu_img.info(disk, "raw")
    assert (info.format, info.virtual_size, info.backing) == ("raw", DISK_SIZE, "")
    layers = qemu_img.chain(disk, "raw")
    assert [layer.path for layer in layers] == [str(disk)]
    assert str(canary) not in repr(layers)
    size = qemu_img.measure(disk, fmt="raw", target_format="raw")
    assert size.fully_allocated == DISK_SIZE  # the raw disk, not a 1 MiB qcow2 over the canary


def test_resize_grows_a_raw_disk_as_raw(hostile, secret):
    disk, _canary = hostile
    before = disk.read_bytes()
    qemu_img.resize(disk, 2 * DISK_SIZE, fmt="raw")
    after = disk.read_bytes()
    assert len(after) == 2 * DISK_SIZE and after[:DISK_SIZE] == before
    assert secret not in after


def test_a_backing_format_the_overlay_does_not_record_is_read_as_raw(hostile, tmp_path,
                                                                    secret):
    disk, _canary = hostile
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "raw",
                    str(overlay), str(DISK_SIZE)], check=True, timeout=60)
    # Rename the header extension that records the backing format: now it records none,
    # and a reader that guesses takes the raw disk below for qcow2 over the canary.
    data = bytearray(overlay.read_bytes())
    at = data.find(bytes.fromhex("e2792aca"), 0, 64 * 1024)
    assert at > 0
    data[at:at + 4] = bytes.fromhex("12345678")
    overlay.write_bytes(data)
    assert qemu_img.info(overlay, "qcow2").backing_format == ""

    layers = qemu_img.chain(overlay, "qcow2")
    assert [(layer.path, layer.format) for layer in layers] == [
        (str(overlay), "qcow2"), (str(disk), "raw")]
    copy = tmp_path / "flat.raw"
    qemu_img.convert(overlay, copy, fmt="qcow2", target_format="raw")
    assert_secret_absent(secret, copy)
    assert copy.read_bytes() == disk.read_bytes()


def test_an_image_naming_an_external_data_file_is_not_read(tmp_path, secret):
    canary = make_canary(tmp_path / "canary-secret.txt", secret)
    image = tmp_path / "data-file.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={canary},data_file_raw=on", str(image), "1M"],
                   check=True, timeout=60)
    make_canary(canary, secret)  # creating the image emptied it
    with pytest.raises(VirtStudioError, match="keeps its data in another file"):
        qemu_img.convert(image, tmp_path / "copy.raw", fmt="qcow2", target_format="raw")
    assert not (tmp_path / "copy.raw").exists()


# ---- through libvirt ----------------------------------------------------------------------


def _domain_xml(name: str, disk: Path) -> str:
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    ET.SubElement(root, "vcpu").text = "1"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    devices = ET.SubElement(root, "devices")
    el = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(el, "driver", name="qemu", type="raw")  # the machine's word: raw
    ET.SubElement(el, "source", file=str(disk))
    ET.SubElement(el, "target", dev="vda", bus="virtio")
    return ET.tostring(root, encoding="unicode")


def _pool_xml(name: str, folder: Path) -> str:
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    ET.SubElement(ET.SubElement(root, "target"), "path").text = str(folder)
    return ET.tostring(root, encoding="unicode")


def _remove_domain(conn: libvirt.virConnect, name: str) -> None:
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    for snap in dom.listAllSnapshots(0):
        snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
    if dom.isActive():
        dom.destroy()
    dom.undefine()


class Lab:
    """A folder of its own under the images folder, a raw-declared hostile machine, a host."""

    def __init__(self, tag: str, secret: bytes) -> None:
        self.name = f"vstest-imgfmt-{tag}-{os.getpid()}"
        self.folder = IMAGES / self.name
        self.conn = libvirt.open(SYSTEM_URI)
        self.domains = [self.name]
        self.pools: list[str] = []
        self.folder.mkdir()
        self.canary = make_canary(self.folder / "canary-secret.txt", secret)
        self.disk = write_hostile_raw(self.folder / "disk.img", self.canary)
        self.conn.defineXML(_domain_xml(self.name, self.disk))

    def pool(self, folder: Path) -> str:
        name = f"{self.name}-pool{len(self.pools)}"
        self.pools.append(name)
        self.conn.storagePoolCreateXML(_pool_xml(name, folder), 0)
        return name

    def remove(self) -> None:
        for name in self.domains:
            _remove_domain(self.conn, name)
        for name in self.pools:
            try:
                self.conn.storagePoolLookupByName(name).destroy()
            except libvirt.libvirtError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
        self.conn.close()


@pytest.fixture
def lab(request, secret):
    require_libvirtd()
    made = Lab(request.node.name[5:20].replace("_", "-").strip("-"), secret)
    yield made
    made.remove()


@pytest.fixture
def host():
    conn = HostConnection(SYSTEM_URI, stats_interval=0)
    conn.open().result(timeout=60)
    assert conn.state is ConnectionState.CONNECTED
    runner = JobRunner()
    yield conn, runner
    runner.shutdown(wait=True)
    conn.shutdown()


def _finish(job, timeout: float = 120.0):
    wait_for(lambda: job.state.finished, timeout=timeout, interval=0.05)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    return job


def _entity(conn: HostConnection, name: str):
    def find():
        conn.call(lambda _c: None).result(timeout=60)  # let queued refreshes land
        return conn.find_domain_by_name(name)

    return wait_for(find, timeout=30)


def _pool_entity(conn: HostConnection, name: str):
    uuid = conn.virconn.storagePoolLookupByName(name).UUIDString()
    conn.refresh_pool(uuid).result(timeout=60)
    return wait_for(lambda: next((p for p in conn.pools.values() if p.name == name), None),
                    timeout=20)


@pytest.mark.libvirtd
def test_full_and_linked_clone_never_read_the_named_host_file(lab, host, secret, tmp_path):
    conn, runner = host
    source = _entity(conn, lab.name)
    full = f"{lab.name}-full"
    lab.domains.append(full)
    job = _finish(clone_domain(runner, conn, source, full, {"vda": DiskMode.COPY}))
    copy = lab.folder / f"{full}-vda.img"
    assert_secret_absent(secret, copy)
    assert copy.read_bytes() == lab.disk.read_bytes()
    assert secret not in job.log_text().encode()

    linked = f"{lab.name}-linked"
    lab.domains.append(linked)
    conn.refresh_domain(source.uuid).result(timeout=60)
    _finish(clone_domain(runner, conn, _entity(conn, lab.name), linked,
                         {"vda": DiskMode.LINKED}))
    for overlay in (lab.folder / f"{linked}-vda.qcow2", lab.folder / f"{lab.name}-vda.qcow2"):
        assert recorded_backing_format(overlay) == "raw"
        assert_secret_absent(secret, read_as_qemu_does(overlay, tmp_path / f"{overlay.stem}.raw"))


@pytest.mark.libvirtd
def test_import_reads_a_dropped_file_as_raw_and_asks_before_a_foreign_backing_file(
        lab, host, secret, tmp_path):
    conn, runner = host
    pool_folder = lab.folder / "pool"
    pool_folder.mkdir()
    pool = _pool_entity(conn, lab.pool(pool_folder))
    dropped = write_hostile_raw(tmp_path / "download.img", make_canary(
        tmp_path / "canary-secret.txt", secret))

    plan = drop_plans.plan_import(conn, pool, dropped)  # nobody said anything: raw
    assert not any(secret in line.encode() for line in plan.writes)
    _finish(plan.submit(runner))
    assert_secret_absent(secret, pool_folder / "download.qcow2")

    # Read as qcow2 (the user's word), the file names the canary, outside every pool.
    second = tmp_path / "second.img"
    shutil.copyfile(dropped, second)
    plan = drop_plans.plan_import(conn, pool, second, source_format="qcow2")
    assert plan.confirm_names == (str(tmp_path / "canary-secret.txt"),)
    assert any("OUTSIDE every storage pool" in line for line in plan.reads)
    with pytest.raises(VirtStudioError, match="Type the name"):
        plan.submit(runner)
    assert not (pool_folder / "second.qcow2").exists()


@pytest.mark.libvirtd
def test_offline_resize_grows_the_disk_in_the_format_the_machine_declares(lab, host, secret):
    conn, runner = host
    lab.pool(lab.folder)  # libvirt's dir pool now guesses qcow2 from the guest's bytes
    before = lab.disk.read_bytes()
    dom = lab.conn.lookupByName(lab.name)
    _finish(domain_edit.apply_changes(runner, conn, dom.UUIDString(), lab.name,
                                      [domain_edit.ResizeDisk("vda", 2 * DISK_SIZE)]))
    after = lab.disk.read_bytes()
    assert len(after) == 2 * DISK_SIZE and after[:DISK_SIZE] == before
    assert secret not in after


@pytest.mark.libvirtd
def test_snapshot_revert_reads_the_raw_base_as_raw(lab, host, secret, tmp_path):
    conn, runner = host
    entity = _entity(conn, lab.name)
    _finish(snapshots.create_snapshot(runner, conn, entity, "s1", "",
                                      snapshots.SnapshotKind.EXTERNAL_DISK, []))
    uuid = entity.uuid
    conn.refresh_domain(uuid).result(timeout=60)
    plan = conn.call(snapshots.plan_revert, uuid, "s1").result(timeout=30)
    _finish(snapshots.revert_snapshot(runner, conn, _entity(conn, lab.name), plan))
    top = Path(ET.fromstring(lab.conn.lookupByName(lab.name).XMLDesc(0))
               .find("devices/disk/source").get("file"))
    assert top != lab.disk
    assert recorded_backing_format(top) == "raw"
    assert_secret_absent(secret, read_as_qemu_does(top, tmp_path / "top.raw"))


@pytest.mark.libvirtd
def test_clone_refuses_a_backing_file_outside_the_pools_until_it_is_named(lab, host, secret,
                                                                         tmp_path):
    conn, runner = host
    # The machine declares qcow2 this time: its disk is a qcow2 image whose header names a
    # canary outside every storage pool as its backing file.
    canary = make_canary(tmp_path / "canary-secret.txt", secret)
    disk = write_hostile_raw(lab.folder / "qcow2-disk.img", canary)
    name = f"{lab.name}-q"
    lab.domains.append(name)
    xml = _domain_xml(name, disk).replace('type="raw"', 'type="qcow2"')
    assert 'type="qcow2"' in xml
    lab.conn.defineXML(xml)
    entity = _entity(conn, name)
    assert entity.summary.disks[0].fmt == "qcow2"
    clone = f"{name}-c"
    lab.domains.append(clone)
    job = clone_domain(runner, conn, entity, clone, {"vda": DiskMode.COPY})
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is JobState.FAILED, job.log_text()
    assert "type its name" in job.error.message
    assert not (lab.folder / f"{clone}-vda.qcow2").exists()
    assert clone not in [d.name() for d in lab.conn.listAllDomains(0)]

    # Named by the user, the same file may be read: the refusal was the only thing in the way.
    job = clone_domain(runner, conn, entity, clone, {"vda": DiskMode.COPY},
                       confirmed={str(canary)})
    _finish(job)
    assert (lab.folder / f"{clone}-vda.qcow2").exists()


@pytest.mark.libvirtd
def test_a_volume_whose_guessed_backing_file_is_outside_the_pools_is_not_attached_unasked(
        lab, host, secret, tmp_path):
    conn, runner = host
    pool_folder = lab.folder / "pool"
    pool_folder.mkdir()
    canary = make_canary(tmp_path / "canary-secret.txt", secret)
    write_hostile_raw(pool_folder / "uploaded.img", canary)
    # libvirt's dir pool guesses qcow2 from the bytes and records the canary as backing file.
    pool = _pool_entity(conn, lab.pool(pool_folder))
    volume = next(v for v in pool.volumes if v.name == "uploaded.img")
    assert (volume.format, volume.backing) == ("qcow2", str(canary))
    machine = _entity(conn, lab.name)
    plan = drop_plans.plan_attach(conn, machine, pool, volume)
    with pytest.raises(VirtStudioError, match="Type the name"):
        plan.submit(runner)
    xml = lab.conn.lookupByName(lab.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "uploaded.img" not in xml
    assert plan.confirm_names == (str(canary),)
    assert any(str(canary) in line for line in plan.reads)


@pytest.mark.libvirtd
@pytest.mark.parametrize("how", ["import", "existing disk"])
def test_new_vm_never_defines_a_disk_image_by_its_file_name_alone(lab, host, secret, tmp_path,
                                                                  how):
    conn, runner = host
    # A download called *.qcow2 whose header names a host file outside every pool.
    canary = make_canary(tmp_path / "canary-secret.txt", secret)
    image = lab.folder / "download.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(canary), "-F", "raw",
                    str(image), "4M"], check=True, timeout=60)
    facts = conn.call(discover).result(timeout=30)
    machines = facts.arch("x86_64").machines
    name = f"{lab.name}-new"
    lab.domains.append(name)
    spec = VmSpec(name=name, arch="x86_64", machine="q35" if "q35" in machines else machines[0],
                  domain_type="qemu", vcpus=1, memory_mib=256, network=NetworkChoice.NONE,
                  graphics="vnc", customize=True)  # nobody chose a format
    if how == "import":
        spec.source, spec.import_path = InstallSource.IMPORT, str(image)
    else:
        spec.iso, spec.disk, spec.disk_path = str(lab.disk), DiskChoice.EXISTING, str(image)
    try:
        job = create_vm(runner, conn, spec, host_context(conn, facts))
    except VirtStudioError as exc:
        assert "format" in exc.message
    else:
        wait_for(lambda: job.state.finished, timeout=60)
    assert name not in [d.name() for d in lab.conn.listAllDomains(0)]
