"""Which files a machine's snapshots need, read from real qcow2 files (qemu-img)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from virtstudio.machines.snapshot_files import DiskReader, snapshot_needs
from virtstudio.machines.snapshots import SnapshotDisk, SnapshotInfo

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def _img(path: Path, backing: Path | None = None) -> str:
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*argv, str(path), "8M"], check=True)
    return str(path)


def _internal(path: str, name: str) -> None:
    subprocess.run(["qemu-img", "snapshot", "-c", name, path], check=True)


def _snap(name: str, kind: str, base: str, overlay: str = "", memory: str = "") -> SnapshotInfo:
    return SnapshotInfo(name, "", "", 0, "shutoff", False, "external" if memory else "no",
                        memory, (SnapshotDisk("vda", kind, overlay, base, "qcow2"),))


def test_an_external_snapshot_needs_its_base_and_what_the_base_reads_on_disk(tmp_path):
    gold = _img(tmp_path / "gold.qcow2")
    base = _img(tmp_path / "base.qcow2", Path(gold))
    top = _img(tmp_path / "top.qcow2", Path(base))
    reader = DiskReader()
    chains = {"vda": reader.chain(top, "qcow2")}
    assert chains["vda"] == [top, base, gold]
    needs = snapshot_needs(reader, [_snap("e1", "external", base, top, "/m/e1.mem")], chains)
    # The record names only the base; gold is needed because base reads it.
    assert needs.files() == {base, gold, "/m/e1.mem"}
    assert needs.users(gold) == ("the snapshot e1",)
    assert snapshot_needs(reader, [_snap("e1", "external", base, top)], chains, "e1").files() \
        == set()


def test_an_internal_snapshot_is_found_in_the_file_that_holds_it_not_the_record(tmp_path):
    gold = _img(tmp_path / "gold.qcow2")
    base = _img(tmp_path / "base.qcow2", Path(gold))
    _internal(base, "i1")
    reader = DiskReader()
    chains = {"vda": reader.chain(base, "qcow2")}
    # A record naming a file that does not hold i1 (rewritten or stale).
    stale = _img(tmp_path / "stale.qcow2")
    needs = snapshot_needs(reader, [_snap("i1", "internal", stale)], chains)
    assert {base, gold} <= needs.files()
    assert "the snapshot i1" in needs.users(base)
    assert stale not in needs


def test_a_file_holding_internal_snapshots_is_needed_without_a_record(tmp_path):
    old = _img(tmp_path / "old.qcow2")
    _internal(old, "lost")
    top = _img(tmp_path / "top.qcow2", Path(old))
    reader = DiskReader()
    # The machine now runs on a fresh file: old.qcow2 is reached only through e1.
    fresh = _img(tmp_path / "fresh.qcow2")
    chains = {"vda": reader.chain(fresh, "qcow2")}
    needs = snapshot_needs(reader, [_snap("e1", "external", old, top)], chains, "e1")
    assert needs.users(old) == ("the internal snapshot lost inside old.qcow2",)
    # The snapshot being deleted is no reason to keep its own file (a new plan reads anew).
    _internal(old, "other")
    subprocess.run(["qemu-img", "snapshot", "-d", "lost", str(old)], check=True)
    assert snapshot_needs(DiskReader(), [], {"vda": [old]}, "other").files() == set()


def test_a_remote_host_is_not_read_here():
    reader = DiskReader(local=False)
    assert reader.chain("/nowhere/disk.qcow2", "qcow2") == ["/nowhere/disk.qcow2"]
    assert reader.internal("/nowhere/disk.qcow2") == ()
