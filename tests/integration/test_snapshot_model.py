"""Random sequences of snapshot operations against a model of what the disk must hold.

A shut-off lab guest has one small qcow2 data disk.  Each step writes a marker
into the disk's current top image, or takes, reverts to or deletes a snapshot
(internal or external) through the same functions the window calls.  A model
keeps what the disk holds now and what each snapshot holds; after every step
the disk is read (qemu-io, explicit format, shared lock) and must match.  A
refused operation must leave the disk and the snapshots as they were.  Every
file in the machine's folder must be read by the machine or a snapshot, or
have been listed to the user as left for them to remove.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.conftest import _remove_domain
from tests.integration.test_snapshots_clone import BOOT_S, shell
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml, wait_for_prompt
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines import snapshots
from virtstudio.machines.disk_files import image_chain

IMAGES = Path("/var/lib/libvirt/images")
SLOTS = 4  # marker places on the disk, 1 MiB apart
CHUNK = 64 * 1024
KINDS = (snapshots.SnapshotKind.INTERNAL, snapshots.SnapshotKind.EXTERNAL_DISK)


@dataclass
class Model:
    disk: list[int] = field(default_factory=lambda: [0] * SLOTS)
    snaps: dict[str, list[int]] = field(default_factory=dict)
    leftovers: set[str] = field(default_factory=set)  # files listed for the user to remove


class Machine:
    def __init__(self, images, host: HostConnection, runner: JobRunner) -> None:
        self.name = f"vstest-snapmodel-{os.getpid()}"
        self.folder = IMAGES / self.name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir()
        disk = self.folder / "data.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "8M"],
                       check=True)
        self.conn = libvirt.open(SYSTEM_URI)
        self.conn.defineXML(lab_domain_xml(self.name, images, disks=[disk]))
        self.host, self.runner = host, runner
        self.uuid = self.conn.lookupByName(self.name).UUIDString()

    def remove(self) -> None:
        try:
            dom = self.conn.lookupByName(self.name)
            for snap in dom.listAllSnapshots(0):
                snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
        except libvirt.libvirtError:
            pass
        _remove_domain(self.name)
        shutil.rmtree(self.folder, ignore_errors=True)

    def top(self) -> str:
        root = ET.fromstring(self.conn.lookupByName(self.name).XMLDesc(0))
        return root.find("devices/disk/source").get("file")

    def qemu_io(self, *commands: str, read_only: bool) -> subprocess.CompletedProcess:
        argv = ["qemu-io", "-f", "qcow2"] + (["-r", "-U"] if read_only else [])
        for command in commands:
            argv += ["-c", command]
        return subprocess.run([*argv, self.top()], capture_output=True, text=True, timeout=60)

    def write(self, slot: int, byte: int) -> None:
        dom = self.conn.lookupByName(self.name)
        if dom.isActive():  # the guest writes, through its own block layer
            shell(dom, f"dd if=/dev/zero bs={CHUNK} count=1 2>/dev/null | tr '\\000' "
                       f"'\\{byte:03o}' > /tmp/m; dd if=/tmp/m of=/dev/vda bs={CHUNK} "
                       f"seek={(slot << 20) // CHUNK} count=1 conv=fsync 2>/dev/null")
            return
        done = self.qemu_io(f"write -P {byte} {slot << 20} {CHUNK}", read_only=False)
        assert done.returncode == 0 and "wrote" in done.stdout, done.stdout + done.stderr

    def mismatches(self, expected: list[int]) -> list[str]:
        wrong = []
        for slot, byte in enumerate(expected):
            done = self.qemu_io(f"read -P {byte} {slot << 20} {CHUNK}", read_only=True)
            if done.returncode != 0 or "Pattern verification failed" in done.stdout + done.stderr:
                wrong.append(f"slot {slot} should hold {byte}")
        return wrong

    def entity(self):
        def find():
            self.host.refresh_domain(self.uuid).result(timeout=60)
            found = self.host.find_domain_by_name(self.name)
            return found if found is not None and found.summary.disks else None

        return wait_for(find, timeout=60)

    def snapshot_names(self) -> set[str]:
        return {s.name for s in snapshots.read_snapshots(self.conn, self.uuid)}

    def needed_files(self) -> set[str]:
        """Files the machine's disk or one of its snapshots reads, as found on disk."""
        needed = set(image_chain(self.top(), "qcow2"))
        for snap in snapshots.read_snapshots(self.conn, self.uuid):
            for disk in snap.disks:
                if disk.base:
                    needed.update(image_chain(disk.base, disk.base_format))
            if snap.memory_file:
                needed.add(snap.memory_file)
        return needed

    def run_job(self, job) -> str:
        wait_for(lambda: job.state.finished, timeout=120, interval=0.05)
        return "" if job.state is JobState.DONE else f"{job.error}\n{job.log_text()}"


def choose(model: Model, rng: random.Random, counter: list[int],
           kinds: tuple[snapshots.SnapshotKind, ...] = KINDS) -> tuple[str, str, object]:
    """A random operation: what, on which snapshot, and a marker or kind."""
    names = sorted(model.snaps)
    op = rng.choice(["write"] * 3 + ["snapshot"] * 2 + (["revert"] * 2 + ["delete"]
                                                         if names else []))
    if op == "write":
        return op, "", (rng.randrange(SLOTS), rng.randrange(1, 256))
    if op == "snapshot":
        counter[0] += 1
        return op, f"s{counter[0]}", rng.choice(kinds)
    return op, rng.choice(names), None


def apply(machine: Machine, model: Model, op: str, name: str, arg: object) -> str:
    """Do one operation as the window would and update the model; say what happened."""
    if op == "write":
        slot, byte = arg
        machine.write(slot, byte)
        model.disk[slot] = byte
        return f"write slot {slot} = {byte}"
    if op == "snapshot":
        kind = arg
        try:
            job = snapshots.create_snapshot(machine.runner, machine.host, machine.entity(),
                                            name, "", kind, sorted(model.snaps))
        except VirtStudioError as exc:
            return f"snapshot {name} {kind.name}: refused ({exc})"
        error = machine.run_job(job)
        if error:
            return f"snapshot {name} {kind.name}: failed ({error.strip()})"
        model.snaps[name] = list(model.disk)
        return f"snapshot {name} {kind.name}"
    planner = snapshots.plan_revert if op == "revert" else snapshots.plan_delete
    doer = snapshots.revert_snapshot if op == "revert" else snapshots.delete_snapshot
    try:
        plan = machine.host.call(planner, machine.uuid, name).result(timeout=60)
    except VirtStudioError as exc:
        return f"{op} {name}: refused ({exc})"
    error = machine.run_job(doer(machine.runner, machine.host, machine.entity(), plan))
    if error:
        return f"{op} {name}: failed ({error.strip()})"
    model.leftovers |= set(plan.leftovers)
    if op == "revert":
        model.disk = list(model.snaps[name])
    else:
        del model.snaps[name]
    if op == "delete" and plan.snapshot.external:
        return f"delete {name} " + ("(record only)" if plan.metadata_only else "(merged)")
    return f"{op} {name}"


def check(machine: Machine, model: Model) -> list[str]:
    problems = [f"disk: {w}" for w in machine.mismatches(model.disk)]
    names = machine.snapshot_names()
    if names != set(model.snaps):
        problems.append(f"snapshots are {sorted(names)}, expected {sorted(model.snaps)}")
    needed = machine.needed_files()
    stray = {str(p) for p in machine.folder.iterdir()} - needed - model.leftovers
    if stray:
        problems.append(f"files nothing reads and nobody was told about: {sorted(stray)}")
    return problems


SEEDS = [int(s) for s in os.environ.get("VS_SNAPSHOT_SEEDS", "").split(",") if s] or [
    1, 2, 3, 4]
STEPS = int(os.environ.get("VS_SNAPSHOT_STEPS", "50"))
RUNNING_STEPS = int(os.environ.get("VS_SNAPSHOT_RUNNING_STEPS", "20"))


def run(machine: Machine, model: Model, operations, label: str) -> list[str]:
    done: list[str] = []
    for op, name, arg in operations:
        done.append(apply(machine, model, op, name, arg))
        problems = check(machine, model)
        if ": failed (" in done[-1]:
            # A plan the host then refuses is a plan that misread the files.
            problems.append("the job failed where its plan promised it would work")
        if problems:
            pytest.fail(f"{label}, after step {len(done)}:\n  " + "\n  ".join(problems)
                        + "\nsteps:\n  " + "\n  ".join(done))
    return done


@pytest.fixture
def machine(host, lab_images):
    conn, runner = host
    made = off_gui_thread(Machine, lab_images, conn, runner)
    yield made
    off_gui_thread(made.remove)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_snapshot_sequences_keep_every_disk_state(seed, machine):
    rng, model, counter = random.Random(seed), Model(), [0]
    operations = (choose(model, rng, counter) for _ in range(STEPS))
    done = run(machine, model, operations, f"seed {seed}")
    print(f"seed {seed}: " + "; ".join(done))


EXTERNAL, INTERNAL = snapshots.SnapshotKind.EXTERNAL_DISK, snapshots.SnapshotKind.INTERNAL


def test_deleting_an_external_snapshot_under_a_later_one_keeps_the_later_ones_data(machine):
    # Write A, S1, write B, S2, back to S1, delete S1, back to S2: B must be there.
    done = run(machine, Model(), [("write", "", (0, 0xA)), ("snapshot", "s1", EXTERNAL),
                           ("write", "", (1, 0xB)), ("snapshot", "s2", EXTERNAL),
                           ("revert", "s1", None), ("delete", "s1", None),
                           ("revert", "s2", None)], "S1/S2 sequence")
    assert done[5].startswith("delete s1: refused (s2 was taken after s1")
    assert done[6] == "revert s2"


def test_deleting_external_snapshots_of_a_shut_off_machine_merges_them(machine):
    done = run(machine, Model(), [("write", "", (0, 1)), ("snapshot", "e1", EXTERNAL),
                           ("write", "", (1, 2)), ("snapshot", "e2", EXTERNAL),
                           ("write", "", (2, 3)), ("delete", "e2", None),
                           ("delete", "e1", None), ("snapshot", "i1", INTERNAL),
                           ("snapshot", "e3", EXTERNAL), ("write", "", (3, 4)),
                           ("delete", "e3", None), ("revert", "i1", None)], "shut-off merges")
    assert done[5:7] == ["delete e2 (merged)", "delete e1 (merged)"]
    # libvirt does not merge onto an internal snapshot: only the record goes.
    assert done[10] == "delete e3 (record only)"
    assert done[11] == "revert i1"


def test_reverting_to_an_external_snapshot_keeps_an_internal_one_taken_on_top(machine):
    done = run(machine, Model(), [("write", "", (0, 1)), ("snapshot", "e1", EXTERNAL),
                           ("write", "", (1, 2)), ("snapshot", "i1", INTERNAL),
                           ("write", "", (2, 3)), ("revert", "e1", None),
                           ("revert", "i1", None), ("revert", "e1", None),
                           ("delete", "i1", None), ("delete", "e1", None)], "mixed sequence")
    assert done[5:9] == ["revert e1", "revert i1", "revert e1", "delete i1"]


def test_running_guest_keeps_every_disk_state_across_memory_snapshots(machine):
    dom = machine.conn.lookupByName(machine.name)
    dom.create()
    wait_for_prompt(dom, BOOT_S)
    memory = snapshots.SnapshotKind.EXTERNAL_MEMORY
    model = Model()
    done = run(machine, model, [("write", "", (0, 0xA)), ("snapshot", "m1", memory),
                         ("write", "", (1, 0xB)), ("snapshot", "m2", memory),
                         ("revert", "m1", None), ("write", "", (2, 0xC)),
                         ("delete", "m1", None), ("revert", "m2", None),
                         ("write", "", (3, 0xD)),
                         # Merges while the guest runs (active commits), memory and disk-only.
                         ("snapshot", "m3", memory), ("write", "", (0, 0xE)),
                         ("delete", "m3", None), ("snapshot", "d1", EXTERNAL),
                         ("write", "", (1, 0xF)), ("delete", "d1", None)], "running guest")
    dom = machine.conn.lookupByName(machine.name)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert model.disk == [0xE, 0xF, 0, 0xD]
    assert done[-4] == "delete m3 (merged)" and done[-1] == "delete d1 (merged)", done


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get(
    "VS_SNAPSHOT_RUNNING_SEEDS", "7").split(",") if s])
def test_random_sequences_with_a_running_guest(seed, machine):
    dom = machine.conn.lookupByName(machine.name)
    dom.create()
    wait_for_prompt(dom, BOOT_S)
    rng, model, counter = random.Random(seed), Model(), [0]
    kinds = (*KINDS, snapshots.SnapshotKind.EXTERNAL_MEMORY)
    operations = (choose(model, rng, counter, kinds) for _ in range(RUNNING_STEPS))
    done = run(machine, model, operations, f"running, seed {seed}")
    print(f"running, seed {seed}: " + "; ".join(done))
