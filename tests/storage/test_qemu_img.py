"""Disk images with the real qemu-img: thin by default, overlays, clones, measure, convert."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import wait_for
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.storage import qemu_img
from virtstudio.storage.image_jobs import convert_job
from virtstudio.storage.sizes import parse_size

MiB = 1024 * 1024
GiB = 1024 * MiB


def _fmt(image) -> str:
    return "raw" if image.suffix == ".raw" else "qcow2"


def write_pattern(image, offset: int, length: int, pattern: int) -> None:
    fmt = _fmt(image)
    subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P {pattern:#x} {offset} {length}",
                    str(image)], check=True, capture_output=True)


def read_bytes(image, offset: int, length: int, tmp_path) -> bytes:
    raw = tmp_path / f"read-{image.name}.raw"
    raw.unlink(missing_ok=True)
    qemu_img.convert(image, raw, fmt=_fmt(image), target_format="raw")
    with raw.open("rb") as f:
        f.seek(offset)
        return f.read(length)


def test_new_images_are_thin_by_default(tmp_path):
    thin = tmp_path / "thin.qcow2"
    qemu_img.create(thin, 10 * GiB)
    info = qemu_img.info(thin, "qcow2")
    assert info.format == "qcow2" and info.virtual_size == 10 * GiB
    assert info.actual_size < 2 * MiB  # allocation far below capacity
    raw = tmp_path / "thin.raw"
    qemu_img.create(raw, 10 * GiB, fmt="raw")
    assert raw.stat().st_size == 10 * GiB and raw.stat().st_blocks * 512 < 2 * MiB
    full = tmp_path / "full.qcow2"
    qemu_img.create(full, 64 * MiB, preallocation="full")
    assert qemu_img.info(full, "qcow2").actual_size >= 64 * MiB


def test_overlay_and_linked_clone_chain(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img.create(base, 64 * MiB)
    write_pattern(base, 0, MiB, 0xAA)
    clone = tmp_path / "clone.qcow2"
    qemu_img.linked_clone(base, clone, base_fmt="qcow2")
    write_pattern(clone, MiB, MiB, 0xBB)
    clone_of_clone = tmp_path / "clone2.qcow2"
    qemu_img.create_overlay(clone, clone_of_clone, base_fmt="qcow2")
    layers = qemu_img.chain(clone_of_clone, "qcow2")
    assert [p.path.rsplit("/", 1)[-1] for p in layers] == ["clone2.qcow2", "clone.qcow2",
                                                          "base.qcow2"]
    assert layers[0].backing.endswith("clone.qcow2") and layers[0].backing_format == "qcow2"
    assert all(layer.virtual_size == 64 * MiB for layer in layers)
    # Reads fall through the chain; the base never changed.
    assert read_bytes(clone_of_clone, 0, 4, tmp_path) == b"\xaa" * 4
    assert read_bytes(clone_of_clone, MiB, 4, tmp_path) == b"\xbb" * 4
    assert read_bytes(base, MiB, 4, tmp_path) == b"\x00" * 4
    assert qemu_img.info(clone, "qcow2").actual_size < 4 * MiB


def test_measure(tmp_path):
    empty = qemu_img.measure_size(10 * GiB)
    assert empty.required < 4 * MiB and empty.fully_allocated >= 10 * GiB
    image = tmp_path / "data.qcow2"
    qemu_img.create(image, 64 * MiB)
    write_pattern(image, 0, 8 * MiB, 0x11)
    used = qemu_img.measure(image, fmt="qcow2", target_format="raw")
    assert used.required >= 8 * MiB and used.fully_allocated == 64 * MiB


def test_convert_and_compact_as_jobs_with_progress(tmp_path):
    source = tmp_path / "src.qcow2"
    qemu_img.create(source, 256 * MiB)
    write_pattern(source, 0, 64 * MiB, 0x00)  # zeros compress to nothing
    write_pattern(source, 64 * MiB, 16 * MiB, 0x5A)
    runner = JobRunner()
    try:
        seen = []
        runner.job_changed.connect(lambda job: seen.append(job.progress))
        job = convert_job(runner, source, tmp_path / "compact.qcow2", fmt="qcow2",
                          compress=True)
        wait_for(lambda: job.state.finished, timeout=60)
        assert job.state is JobState.DONE, job.log_text()
        assert max(p for p in seen if p is not None) == 1.0
        compact = qemu_img.info(tmp_path / "compact.qcow2", "qcow2")
        assert compact.actual_size < qemu_img.info(source, "qcow2").actual_size
        assert read_bytes(tmp_path / "compact.qcow2", 64 * MiB, 4, tmp_path) == b"\x5a" * 4
    finally:
        runner.shutdown(wait=True)


def test_cancelled_convert_leaves_no_partial_copy(tmp_path):
    source = tmp_path / "big.raw"
    qemu_img.create(source, 512 * MiB, fmt="raw")
    write_pattern(source, 0, 256 * MiB, 0x33)
    target = tmp_path / "copy.qcow2"
    calls = []

    def cancelled() -> bool:
        calls.append(True)
        return len(calls) > 2

    qemu_img.convert(source, target, fmt="raw", cancelled=cancelled)
    assert not target.exists()
    assert read_bytes(source, 0, 4, tmp_path) == b"\x33" * 4


@pytest.mark.parametrize(("text", "expected"), [
    ("20G", 20 * GiB), ("512 MiB", 512 * MiB), ("1.5T", int(1.5 * 1024 * GiB)), ("4096", 4096),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1G", "0", "10 X", "9999999P"])
def test_bad_sizes(text):
    with pytest.raises(VirtStudioError):
        parse_size(text)


def test_refusals_change_nothing(tmp_path):
    existing = tmp_path / "keep.qcow2"
    qemu_img.create(existing, MiB)
    before = existing.read_bytes()
    with pytest.raises(VirtStudioError, match="exists already"):
        qemu_img.create(existing, GiB)
    with pytest.raises(VirtStudioError, match="exists already"):
        qemu_img.linked_clone(existing, existing, base_fmt="qcow2")
    assert existing.read_bytes() == before
    with pytest.raises(VirtStudioError, match="does not fit"):
        qemu_img.create(tmp_path / "huge.raw", 1024**5 // 2, fmt="raw", preallocation="full")
    assert not (tmp_path / "huge.raw").exists()
    with pytest.raises(VirtStudioError, match="does not exist"):
        qemu_img.linked_clone(tmp_path / "missing.qcow2", tmp_path / "c.qcow2",
                              base_fmt="qcow2")
    with pytest.raises(VirtStudioError, match="does not exist"):
        qemu_img.create(tmp_path / "no" / "dir.qcow2", MiB)


# ---- images are read as they are declared, never as their bytes suggest ------------------


def test_chains_that_loop_or_leave_this_computer_are_refused(tmp_path):
    first, second = tmp_path / "first.qcow2", tmp_path / "second.qcow2"
    for image, backing in ((first, second), (second, first)):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", str(backing),
                        "-F", "qcow2", str(image), "1M"], check=True)
    with pytest.raises(VirtStudioError, match="loops back"):
        qemu_img.chain(first, "qcow2")
    remote = tmp_path / "remote.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b",
                    "nbd://127.0.0.1:9/export", "-F", "raw", str(remote), "1M"], check=True)
    with pytest.raises(VirtStudioError, match="not a file on this computer"):
        qemu_img.chain(remote, "qcow2")
    with pytest.raises(VirtStudioError, match="only qcow2 and raw"):
        qemu_img.info(first, "vmdk")


def test_every_answer_is_bounded_in_time_and_size():
    with pytest.raises(VirtStudioError, match="did not finish in 1 s"):
        qemu_img._run(["sleep", "30"], timeout=1.0)
    with pytest.raises(VirtStudioError, match="more than 1 MiB"):
        qemu_img._run(["python3", "-c", "print('x' * 3_000_000)"])


def test_backing_files_inside_a_pool_need_no_confirmation(tmp_path):
    from virtstudio.storage.backing_chains import PoolPlaces, confirmed_by_name, review

    pool, elsewhere = tmp_path / "pool", tmp_path / "elsewhere"
    pool.mkdir()
    elsewhere.mkdir()
    base, outside = pool / "base.raw", elsewhere / "base.raw"
    for image in (base, outside):
        qemu_img.create(image, MiB, fmt="raw")
    inside_top, outside_top = tmp_path / "in.qcow2", tmp_path / "out.qcow2"
    qemu_img.create_overlay(base, inside_top, base_fmt="raw")
    qemu_img.create_overlay(outside, outside_top, base_fmt="raw")
    places = PoolPlaces(folders=(str(pool),))
    assert review(inside_top, "qcow2", places).outside == ()
    chain = review(outside_top, "qcow2", places)
    assert chain.outside == (str(outside),)
    assert chain.unconfirmed({str(outside)}) == ()
    assert confirmed_by_name(" base.raw ", str(outside))
    assert not confirmed_by_name("base", str(outside)) and not confirmed_by_name("", "")
