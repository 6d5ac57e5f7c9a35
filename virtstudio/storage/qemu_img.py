"""Disk images through qemu-img: thin creation, overlays, linked clones, measure, convert.

Every call passes an argv list.  Blocking calls belong on a job thread; the
long ones (convert) report progress and can be cancelled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

QEMU_IMG = "qemu-img"
FORMATS = ("qcow2", "raw")
PREALLOCATION = ("off", "metadata", "falloc", "full")
_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class ImageInfo:
    path: str
    format: str
    virtual_size: int
    actual_size: int
    backing: str = ""
    backing_format: str = ""
    dirty: bool = False


def _run(argv: list[str], timeout: float = 120.0) -> str:
    if shutil.which(argv[0]) is None:
        raise VirtStudioError("qemu-img is not installed (Debian package qemu-utils).")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VirtStudioError(f"{argv[1]} did not finish in {timeout:.0f} s.") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        first = message[-1] if message else f"exit status {done.returncode}"
        raise VirtStudioError(f"qemu-img {argv[1]} failed: {first.removeprefix('qemu-img: ')}",
                              " ".join(argv) + "\n" + done.stderr)
    return done.stdout


def _check_new(path: Path) -> None:
    if path.exists():
        raise VirtStudioError(f"{path.name} exists already; nothing was overwritten.")
    if not path.parent.is_dir():
        raise VirtStudioError(f"The folder {path.parent} does not exist.")


def create(path: Path, size: int, *, fmt: str = "qcow2", preallocation: str = "off") -> None:
    """A new image; sparse unless ``preallocation`` says otherwise."""
    if fmt not in FORMATS:
        raise VirtStudioError(f"Unknown image format {fmt}.")
    if preallocation not in PREALLOCATION:
        raise VirtStudioError(f"Unknown preallocation {preallocation}.")
    _check_new(path)
    if preallocation in ("falloc", "full"):
        free = shutil.disk_usage(path.parent).free
        if size > free:
            raise VirtStudioError(
                f"A fully allocated {size >> 30} GiB image does not fit: {free >> 30} GiB free "
                f"in {path.parent}. Use thin provisioning (preallocation off) instead.")
    _run([QEMU_IMG, "create", "-q", "-f", fmt, "-o", f"preallocation={preallocation}",
          str(path), str(size)])


def create_overlay(base: Path, path: Path, *, size: int | None = None) -> None:
    """A qcow2 overlay (a linked clone) whose unchanged blocks stay in ``base``."""
    _check_new(path)
    base_info = info(base)
    argv = [QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()),
            "-F", base_info.format, str(path)]
    if size is not None:
        argv.append(str(size))
    _run(argv)


linked_clone = create_overlay


def info(path: Path) -> ImageInfo:
    return chain(path)[0]


def chain(path: Path, fmt: str | None = None) -> list[ImageInfo]:
    """The image (read as ``fmt`` when given) and every backing file below it, top first."""
    if not path.exists():
        raise VirtStudioError(f"The image {path} does not exist.")
    forced = ["-f", fmt] if fmt else []
    out = _run([QEMU_IMG, "info", "--output=json", "--backing-chain", "-U", *forced, str(path)])
    data = json.loads(out)
    items = data if isinstance(data, list) else [data]
    return [ImageInfo(
        path=i.get("filename", ""), format=i.get("format", ""),
        virtual_size=int(i.get("virtual-size", 0)), actual_size=int(i.get("actual-size", 0)),
        backing=i.get("full-backing-filename") or i.get("backing-filename", ""),
        backing_format=i.get("backing-filename-format", ""),
        dirty=bool(i.get("dirty-flag", False))) for i in items]


@dataclass(frozen=True)
class Measure:
    required: int  # bytes the target needs as the data stands
    fully_allocated: int  # bytes if every block were written


def measure(*, source: Path | None = None, size: int | None = None,
            target_format: str = "qcow2") -> Measure:
    argv = [QEMU_IMG, "measure", "--output=json", "-O", target_format]
    if source is not None:
        argv += ["-U", str(source)]
    elif size is not None:
        argv += ["--size", str(size)]
    else:
        raise ValueError("measure needs a source image or a size")
    data = json.loads(_run(argv))
    return Measure(int(data["required"]), int(data["fully-allocated"]))


def convert(source: Path, target: Path, *, target_format: str = "qcow2", compress: bool = False,
            progress: Callable[[float], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> None:
    """Copy ``source`` into a new ``target`` (also how an image is compacted).

    Reports progress from 0 to 1; when ``cancelled`` turns true the copy stops
    and the partial target is removed, leaving the source untouched.
    """
    _check_new(target)
    need = measure(source=source, target_format=target_format).required
    free = shutil.disk_usage(target.parent).free
    if need > free:
        raise VirtStudioError(f"The copy needs {need >> 20} MiB and {target.parent} has "
                              f"{free >> 20} MiB free.")
    argv = [QEMU_IMG, "convert", "-p", "-U", "-O", target_format]
    if compress and target_format == "qcow2":
        argv.append("-c")
    argv += [str(source), str(target)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buffer = (buffer + chunk)[-256:]
            found = _PROGRESS_RE.findall(buffer)
            if found and progress is not None:
                progress(float(found[-1]) / 100.0)
            if cancelled is not None and cancelled():
                proc.terminate()
                break
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        target.unlink(missing_ok=True)
        raise
    if cancelled is not None and cancelled():
        target.unlink(missing_ok=True)
        return
    if code != 0:
        target.unlink(missing_ok=True)
        error = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise VirtStudioError(f"qemu-img convert failed: {error or code}")
