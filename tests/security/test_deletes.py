"""Deletes name exactly what is lost, from one usage graph, on the real libvirtd.

Threat: a delete that decides "in use" from part of the picture (running
machines only, a stopped pool's empty volume list, disk sources without
backing chains or snapshots) destroys the disks of machines that are merely
shut off.  Each test builds real qcow2 files with qemu-img in a ``vstest-*``
dir pool and defines shut-off ``vstest-*`` machines on them (never started),
then checks the plan the user is shown and what the job really does.
Everything made here is removed even when a test fails.
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
from tests.lab.daemon import SYSTEM_URI, require_libvirtd
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.domain_actions import Action, run_action
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.storage.delete_plans import plan_machine, plan_pool, plan_volume
from virtstudio.storage.pool_jobs import delete_pool
from virtstudio.storage.volumes import delete_volume

pytestmark = pytest.mark.libvirtd

IMAGES = Path("/var/lib/libvirt/images")
PREFIX = f"vstest-del-{os.getpid()}"  # every name here is PREFIX-<what>


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, timeout=60)


def domain_xml(name: str, disks: list[tuple[str, str]]) -> str:
    """A small shut-off QEMU machine reading ``disks`` (path, format), as vda, vdb..."""
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", arch="x86_64").text = "hvm"
    devices = ET.SubElement(root, "devices")
    for i, (path, fmt) in enumerate(disks):
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=fmt)
        ET.SubElement(disk, "source", file=path)
        ET.SubElement(disk, "target", dev=f"vd{chr(ord('a') + i)}", bus="virtio")
    return ET.tostring(root, encoding="unicode")


def pool_xml(name: str, folder: Path) -> str:
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    ET.SubElement(ET.SubElement(root, "target"), "path").text = str(folder)
    return ET.tostring(root, encoding="unicode")


def _cleanup() -> None:
    conn = libvirt.open(SYSTEM_URI)
    try:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(f"{PREFIX}-"):
                if dom.isActive():
                    dom.destroy()
                for snap in dom.listAllSnapshots(0):
                    snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
                dom.undefine()
        for pool in conn.listAllStoragePools(0):
            if pool.name().startswith(f"{PREFIX}-"):
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
    finally:
        conn.close()
    for folder in IMAGES.glob(f"{PREFIX}-*"):
        shutil.rmtree(folder, ignore_errors=True)


class Lab:
    """A started dir pool holding base.qcow2 and its linked clone clone.qcow2, and a
    shut-off machine whose only disk is the clone."""

    def __init__(self) -> None:
        self.conn = libvirt.open(SYSTEM_URI)
        self.pool_name = f"{PREFIX}-pool"
        self.folder = IMAGES / self.pool_name
        self.folder.mkdir(parents=True)
        self.base = self.folder / "base.qcow2"
        self.clone = self.folder / "clone.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", str(self.base), "16M")
        qemu_img("create", "-q", "-f", "qcow2", "-b", str(self.base), "-F", "qcow2",
                 str(self.clone))
        self.pool = self.conn.storagePoolDefineXML(pool_xml(self.pool_name, self.folder), 0)
        self.pool.create(0)
        self.machine = f"{PREFIX}-clone"
        self.define(self.machine, [(str(self.clone), "qcow2")])

    def define(self, name: str, disks: list[tuple[str, str]]) -> libvirt.virDomain:
        return self.conn.defineXML(domain_xml(name, disks))

    def file(self, name: str, size: str = "8M") -> Path:
        path = self.folder / name
        qemu_img("create", "-q", "-f", "qcow2", str(path), size)
        self.pool.refresh(0)
        return path


@pytest.fixture
def lab():
    off_gui_thread(require_libvirtd)
    off_gui_thread(_cleanup)
    made = Lab()
    try:
        yield made
    finally:
        made.conn.close()
        off_gui_thread(_cleanup)


@pytest.fixture
def host(lab):
    connection = HostConnection(SYSTEM_URI, stats_interval=0)
    runner = JobRunner()
    connection.open().result(60)
    wait_for(lambda: connection.state is ConnectionState.CONNECTED, timeout=15)
    try:
        yield connection, runner
    finally:
        runner.shutdown(wait=True)
        connection.shutdown()


def finish(job, state=JobState.DONE):
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is state, job.log_text()
    return job


def cached_pool(connection, name):
    return wait_for(lambda: next((p for p in connection.pools.values() if p.name == name),
                                 None), timeout=10)


# ---- a volume ---------------------------------------------------------------------------

def test_volume_delete_refuses_the_base_of_a_shut_off_linked_clone(lab, host):
    plan = plan_volume(lab.conn, lab.pool.UUIDString(), "base.qcow2")
    assert plan.blocked and not plan.lost
    (refusal,) = plan.refused
    assert refusal.path == str(lab.base)
    assert any(lab.machine in user and "backing" in user for user in refusal.users)
    assert any("clone.qcow2" in user for user in refusal.users)  # the overlay volume too
    assert lab.machine in plan.describe()
    connection, runner = host
    with pytest.raises(VirtStudioError):
        delete_volume(runner, connection, cached_pool(connection, lab.pool_name), plan)
    assert lab.base.exists()


def test_volume_delete_names_the_snapshot_that_needs_it(lab):
    # An external disk-only snapshot of the shut-off machine: its disk moves onto a new
    # overlay, and the snapshot's own record keeps the clone (and so the base) as its disk.
    dom = lab.conn.lookupByName(lab.machine)
    snap = ET.Element("domainsnapshot")
    ET.SubElement(snap, "name").text = "before-update"
    disks = ET.SubElement(snap, "disks")
    disk = ET.SubElement(disks, "disk", name="vda", snapshot="external")
    ET.SubElement(disk, "source", file=str(lab.folder / "clone.before-update.qcow2"))
    dom.snapshotCreateXML(ET.tostring(snap, encoding="unicode"),
                          libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY)
    # The machine itself moves on to an unrelated disk: only the snapshot needs the clone.
    fresh = lab.file("fresh.qcow2")
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    source = root.find("devices/disk/source")
    source.attrib.clear()
    source.set("file", str(fresh))
    lab.conn.defineXML(ET.tostring(root, encoding="unicode"))
    plan = plan_volume(lab.conn, lab.pool.UUIDString(), "clone.qcow2")
    assert plan.blocked
    users = plan.refused[0].users
    assert any("snapshot before-update" in u and lab.machine in u for u in users), users


def test_volume_job_replans_and_aborts_when_a_machine_takes_the_volume(lab, host):
    scratch = lab.file("scratch.qcow2")
    plan = plan_volume(lab.conn, lab.pool.UUIDString(), "scratch.qcow2")
    assert not plan.blocked and [loss.path for loss in plan.lost] == [str(scratch)]
    # Between the confirmation and the job, a shut-off machine is given the volume.
    lab.define(f"{PREFIX}-late", [(str(scratch), "qcow2")])
    connection, runner = host
    job = finish(delete_volume(runner, connection, cached_pool(connection, lab.pool_name), plan),
                 JobState.FAILED)
    assert "changed since you confirmed" in job.error.message
    assert scratch.exists()
    # Once the machine is gone again, a fresh plan deletes exactly the volume.
    lab.conn.lookupByName(f"{PREFIX}-late").undefine()
    plan = plan_volume(lab.conn, lab.pool.UUIDString(), "scratch.qcow2")
    finish(delete_volume(runner, connection, cached_pool(connection, lab.pool_name), plan))
    assert not scratch.exists() and lab.base.exists() and lab.clone.exists()


# ---- a pool -----------------------------------------------------------------------------

def test_stopped_pool_lists_its_files_and_refuses_deleting_data_in_use(lab, host):
    lab.pool.destroy()
    plan = plan_pool(lab.conn, lab.pool.UUIDString(), True)
    lost = {loss.path for loss in plan.lost}
    assert lost == {str(lab.base), str(lab.clone)}  # listed without starting the pool
    assert not lab.pool.isActive()
    assert plan.blocked
    refused = {r.path: r.users for r in plan.refused}
    assert any(lab.machine in u for u in refused[str(lab.clone)])
    assert any(lab.machine in u for u in refused[str(lab.base)])
    connection, runner = host
    pool = wait_for(lambda: next((p for p in connection.pools.values()
                                  if p.name == lab.pool_name and not p.active), None))
    with pytest.raises(VirtStudioError):
        delete_pool(runner, connection, pool, plan, with_data=True)
    # The definition alone may still go; every file stays.
    alone = plan_pool(lab.conn, lab.pool.UUIDString(), False)
    assert not alone.blocked and not alone.lost
    finish(delete_pool(runner, connection, pool, alone, with_data=False))
    assert lab.base.exists() and lab.clone.exists()


def test_stopped_pool_data_job_aborts_when_its_contents_changed(lab, host):
    lab.conn.lookupByName(lab.machine).undefine()
    lab.pool.destroy()
    plan = plan_pool(lab.conn, lab.pool.UUIDString(), True)
    assert not plan.blocked and {loss.path for loss in plan.lost} == {str(lab.base),
                                                                      str(lab.clone)}
    # After the confirmation a shut-off machine starts using the clone (so the base too).
    lab.define(f"{PREFIX}-late", [(str(lab.clone), "qcow2")])
    connection, runner = host
    pool = wait_for(lambda: next((p for p in connection.pools.values()
                                  if p.name == lab.pool_name and not p.active), None))
    job = finish(delete_pool(runner, connection, pool, plan, with_data=True), JobState.FAILED)
    assert "changed since you confirmed" in job.error.message
    assert lab.base.exists() and lab.clone.exists()
    assert not lab.pool.isActive()  # not even started


def test_stopped_unused_pool_deletes_exactly_what_it_listed(lab, host):
    lab.conn.lookupByName(lab.machine).undefine()
    lab.pool.destroy()
    plan = plan_pool(lab.conn, lab.pool.UUIDString(), True)
    assert not plan.blocked
    assert "base.qcow2" in plan.describe() and "clone.qcow2" in plan.describe()
    connection, runner = host
    pool = wait_for(lambda: next((p for p in connection.pools.values()
                                  if p.name == lab.pool_name and not p.active), None))
    finish(delete_pool(runner, connection, pool, plan, with_data=True))
    assert not lab.folder.exists()


# ---- a machine ----------------------------------------------------------------------------

def test_machine_delete_keeps_a_disk_another_shut_off_machine_reads_as_base(lab, host):
    # A second machine runs on the base directly; deleting it may not take the base,
    # which the first machine's clone reads.
    owner = lab.define(f"{PREFIX}-owner", [(str(lab.base), "qcow2"),
                                           (str(lab.file("own.qcow2")), "qcow2")])
    plan = plan_machine(lab.conn, owner.UUIDString())
    choices = {c.target: c for c in plan.choices}
    assert not choices["vda"].removable and lab.machine in choices["vda"].why_not
    assert choices["vdb"].removable and choices["vdb"].checked
    forged = plan.pick((str(lab.base), str(lab.folder / "own.qcow2")))
    assert [loss.path for loss in forged.lost][1:] == [str(lab.folder / "own.qcow2")]
    connection, runner = host
    domain = wait_for(lambda: connection.find_domain_by_name(f"{PREFIX}-owner"), timeout=10)
    finish(run_action(runner, connection, domain, Action.DELETE, forged))
    assert lab.base.exists() and not (lab.folder / "own.qcow2").exists()


def test_machine_job_aborts_when_its_disk_gained_a_user(lab, host):
    own = lab.file("own.qcow2")
    owner = lab.define(f"{PREFIX}-owner", [(str(own), "qcow2")])
    plan = plan_machine(lab.conn, owner.UUIDString())
    assert [loss.path for loss in plan.lost][1:] == [str(own)]
    lab.define(f"{PREFIX}-late", [(str(own), "qcow2")])
    connection, runner = host
    domain = wait_for(lambda: connection.find_domain_by_name(f"{PREFIX}-owner"), timeout=10)
    job = finish(run_action(runner, connection, domain, Action.DELETE, plan), JobState.FAILED)
    assert "changed since you confirmed" in job.error.message
    assert own.exists()
    assert lab.conn.lookupByName(f"{PREFIX}-owner").isPersistent()  # still defined


# ---- what the user sees ---------------------------------------------------------------------

def test_delete_dialogs_name_the_shut_off_machine_that_reads_the_file(make_main_window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QCheckBox, QLabel

    from virtstudio.core.inventory import Inventory
    from virtstudio.ui.delete_dialog import DeletePlanDialog, DeleteVmDialog

    off_gui_thread(require_libvirtd)
    off_gui_thread(_cleanup)
    lab = off_gui_thread(Lab)
    try:
        owner = f"{PREFIX}-owner"
        off_gui_thread(lab.define, owner, [(str(lab.base), "qcow2")])
        window = make_main_window(Inventory(stats_interval=0))
        host = window.inventory.add(SYSTEM_URI)
        qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=15000)
        boxes = []
        window.confirm_requested.connect(boxes.append)

        # Deleting the base volume: refused, and the shut-off clone's machine is named.
        top = window.host_model.index(0, 0)
        window.host_view.setCurrentIndex(window.host_model.index(1, 0, top))
        assert window.pages.currentWidget() is window.storage_page
        model = window.pool_model
        qtbot.waitUntil(lambda: any(model.pool_at(r).name == lab.pool_name
                                    and len(model.pool_at(r).volumes) == 2
                                    for r in range(model.rowCount())), timeout=10000)
        row = next(r for r in range(model.rowCount()) if model.pool_at(r).name == lab.pool_name)
        window.pool_view.setCurrentIndex(model.index(row, 0))
        volumes = window.volume_model
        qtbot.waitUntil(lambda: volumes.rowCount() == 2, timeout=20000)
        row = next(r for r in range(volumes.rowCount())
                   if volumes.volume_at(r).name == "base.qcow2")
        window.volume_view.setCurrentIndex(volumes.index(row, 0))
        qtbot.mouseClick(window.delete_volume_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(boxes), timeout=15000)
        dialog = boxes[-1]
        assert isinstance(dialog, DeletePlanDialog)
        refused = dialog.findChild(QLabel, "deleteRefused")
        assert refused.isVisible()
        assert f"{lab.machine} (disk vda) (as a backing file)" in refused.text()
        assert not dialog.findChild(type(dialog.delete_button), "deleteButton").isEnabled()
        dialog.reject()

        # Deleting the machine that runs on the base: its disk is kept, and why is said.
        qtbot.waitUntil(lambda: window.select_domain(owner), timeout=10000)
        window.trigger(Action.DELETE)
        qtbot.waitUntil(lambda: isinstance(boxes[-1], DeleteVmDialog), timeout=15000)
        dialog = boxes[-1]
        disk = dialog.findChild(QCheckBox, "disk_vda")
        assert not disk.isEnabled() and not disk.isChecked()
        assert lab.machine in disk.text()
        assert lab.machine in dialog.findChild(QLabel, "deleteRefused").text()
        dialog.reject()
    finally:
        off_gui_thread(lab.conn.close)
        off_gui_thread(_cleanup)


def test_a_disk_declared_raw_is_never_read_for_a_backing_file(lab):
    # A guest can write a qcow2 header naming any file into its raw disk: the graph
    # takes the machine's declared format, so that header neither protects nor
    # exposes the named file (and no image contents decide how the disk is read).
    outside = IMAGES / f"{PREFIX}-outside"
    outside.mkdir()
    raw = outside / "guest.img"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(lab.base), "-F", "qcow2", str(raw))
    lab.conn.lookupByName(lab.machine).undefine()
    lab.define(f"{PREFIX}-raw", [(str(raw), "raw")])
    from virtstudio.storage import usage_graph

    graph = usage_graph.build(lab.conn)
    assert graph.chain(str(raw), "raw") == ([str(raw)], True)
    assert not [u for u in graph.users_of(str(lab.base)) if u.kind == "machine"]
    assert [u.machine for u in graph.users_of(str(raw))] == [f"{PREFIX}-raw"]
