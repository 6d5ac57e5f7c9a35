"""Disk images through qemu-img: thin creation, overlays, linked clones, measure, convert.

An image's bytes never decide how it is read.  Every call names the format
(from libvirt's record, the pool's record or the user's choice), and an image
with backing files is handed to qemu-img as one JSON description in which
every layer's driver and file are spelled out, so qemu-img probes nothing and
opens no file it was not told about.  ``chain`` walks the layers one at a
time with ``qemu-img info`` (which never opens a backing file); a backing
format the overlay does not record is read as raw.

Images may come from guests or the user's downloads, so reads share locks
(``--force-share``), have a time limit, and their JSON answers are bounded in
size and checked field by field.  Every call passes an argv list.  Blocking
calls belong on a job thread; the long ones (convert) report progress and can
be cancelled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from virtstudio.core.errors import VirtStudioError

QEMU_IMG = "qemu-img"
FORMATS = ("qcow2", "raw")
PREALLOCATION = ("off", "metadata", "falloc", "full")
INFO_TIMEOUT = 30.0  # seconds for a read that only looks at headers
MAX_ANSWER = 1024 * 1024  # bytes of qemu-img output accepted for one call
MAX_CHAIN = 32  # layers; deeper chains are refused rather than followed
_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class ImageInfo:
    path: str
    format: str
    virtual_size: int
    actual_size: int
    backing: str = ""
    backing_format: str = ""  # as the image records it; "" when it records none
    dirty: bool = False
    data_file: str = ""  # a qcow2 external data file named in the header
    snapshots: tuple[str, ...] = ()  # names of the internal snapshots the image holds

    @property
    def backing_read_as(self) -> str:
        """The format the backing file is read in: recorded, else raw (never probed)."""
        return (self.backing_format or "raw") if self.backing else ""


def check_format(fmt: str, what: str = "The image") -> str:
    """``fmt`` when VirtStudio reads images of that format; raise otherwise."""
    if fmt not in FORMATS:
        raise VirtStudioError(f"{what} is recorded as {fmt or 'no format'}; VirtStudio reads "
                              "only qcow2 and raw images. Nothing was read.")
    return fmt


def _bounded(stream: IO[bytes], limit: int) -> tuple[str, bool]:
    """What a finished command wrote, at most ``limit`` bytes, and whether it wrote more."""
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - limit))
    return stream.read(limit).decode(errors="replace"), size > limit


def _run(argv: list[str], timeout: float = INFO_TIMEOUT) -> str:
    if shutil.which(argv[0]) is None:
        raise VirtStudioError("qemu-img is not installed (Debian package qemu-utils).")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VirtStudioError(f"qemu-img {argv[1]} did not finish in {timeout:.0f} s; "
                                  "nothing was changed.") from None
        text, too_long = _bounded(out, MAX_ANSWER)
        errors, _ = _bounded(err, MAX_ANSWER)
    if done.returncode != 0:
        message = (errors or text).strip().splitlines()
        first = message[-1] if message else f"exit status {done.returncode}"
        raise VirtStudioError(f"qemu-img {argv[1]} failed: {first.removeprefix('qemu-img: ')}",
                              " ".join(argv) + "\n" + errors)
    if too_long:
        raise VirtStudioError(f"qemu-img {argv[1]} answered with more than "
                              f"{MAX_ANSWER >> 20} MiB; the answer was not read.")
    return text


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise VirtStudioError(f"qemu-img gave no readable answer about {what}.") from None
    if not isinstance(data, dict):
        raise VirtStudioError(f"qemu-img gave an unexpected answer about {what}.")
    return data


def _size(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VirtStudioError(f"qemu-img gave an unexpected {key} for {what}.")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else ""


def _check_new(path: Path) -> None:
    if path.exists():
        raise VirtStudioError(f"{path.name} exists already; nothing was overwritten.")
    if not path.parent.is_dir():
        raise VirtStudioError(f"The folder {path.parent} does not exist.")


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise VirtStudioError(f"The image {path} does not exist.")


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
          str(path), str(size)], timeout=600.0)


def create_overlay(base: Path, path: Path, *, base_fmt: str, size: int | None = None) -> None:
    """A qcow2 overlay (a linked clone) whose unchanged blocks stay in ``base``.

    The overlay records ``base_fmt`` as its backing format; qemu-img is told not
    to open ``base`` at all (``-u``), so nothing below it is read here.
    """
    check_format(base_fmt, f"The base image {base}")
    _check_new(path)
    _check_exists(base)
    if size is None:
        size = info(base, base_fmt).virtual_size
    _run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-u", "-b", str(base.resolve()),
          "-F", base_fmt, str(path), str(size)])


linked_clone = create_overlay


def info(path: Path, fmt: str) -> ImageInfo:
    """What ``path`` says about itself when read as ``fmt``; its backing file is not opened."""
    check_format(fmt, f"The image {path}")
    _check_exists(path)
    data = _json_object(_run([QEMU_IMG, "info", "--output=json", "-f", fmt, "--force-share",
                              str(path)]), str(path))
    if _text(data, "format") != fmt:
        raise VirtStudioError(f"qemu-img did not read {path} as {fmt}.")
    specific = data.get("format-specific")
    details = specific.get("data") if isinstance(specific, dict) else None
    return ImageInfo(
        path=str(path), format=fmt,
        virtual_size=_size(data, "virtual-size", str(path)),
        actual_size=_size(data, "actual-size", str(path)),
        backing=_text(data, "full-backing-filename") or _text(data, "backing-filename"),
        backing_format=_text(data, "backing-filename-format"),
        dirty=data.get("dirty-flag") is True,
        data_file=_text(details, "data-file") if isinstance(details, dict) else "",
        snapshots=_snapshot_names(data))


def _snapshot_names(data: dict[str, Any]) -> tuple[str, ...]:
    listed = data.get("snapshots")
    if not isinstance(listed, list):
        return ()
    return tuple(str(item.get("name", "")) for item in listed if isinstance(item, dict))


def _layer(path: Path, fmt: str) -> ImageInfo:
    """``info``, refusing an image that keeps its data in another file it names."""
    item = info(path, fmt)
    if item.data_file:
        raise VirtStudioError(f"{path} keeps its data in another file ({item.data_file}); "
                              "such images are not read here.")
    return item


def chain(path: Path, fmt: str) -> list[ImageInfo]:
    """The image read as ``fmt`` and every backing file below it, top first.

    Each backing file is read in the format its overlay records (raw when it
    records none).  A backing file that is not a local file or block device, a
    loop, an external data file or a chain deeper than MAX_CHAIN is refused.
    """
    items: list[ImageInfo] = []
    seen: set[str] = set()
    current, current_fmt = path, fmt
    while True:
        real = os.path.realpath(current)
        if real in seen:
            raise VirtStudioError(f"The backing chain of {path} loops back to {current}; "
                                  "it was not read.")
        if len(items) >= MAX_CHAIN:
            raise VirtStudioError(f"The backing chain of {path} is deeper than {MAX_CHAIN} "
                                  "images; it was not read.")
        seen.add(real)
        item = _layer(current, current_fmt)
        items.append(item)
        if not item.backing:
            return items
        backing = Path(item.backing)
        if not backing.is_absolute() or not (backing.is_file() or backing.is_block_device()):
            raise VirtStudioError(f"{current} reads {item.backing} as its backing file, which "
                                  "is not a file on this computer; it was not read.")
        current, current_fmt = backing, item.backing_read_as


def _file_node(path: str) -> dict[str, Any]:
    try:
        block = stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        block = False
    return {"driver": "host_device" if block else "file", "filename": path}


def pinned(layers: list[ImageInfo]) -> str:
    """A qemu-img filename naming every layer's driver and file: nothing is probed.

    The lowest layer gets no backing file, even if its header names one.
    """
    node: dict[str, Any] | None = None
    for layer in reversed(layers):
        node = {"driver": check_format(layer.format, f"The image {layer.path}"),
                "file": _file_node(layer.path), "backing": node}
    if node is None:
        raise ValueError("an image needs at least one layer")
    return "json:" + json.dumps(node)


@dataclass(frozen=True)
class Measure:
    required: int  # bytes the target needs as the data stands
    fully_allocated: int  # bytes if every block were written


def _measure(argv: list[str], what: str) -> Measure:
    data = _json_object(_run(argv, timeout=300.0), what)
    return Measure(_size(data, "required", what), _size(data, "fully-allocated", what))


def measure(source: Path, *, fmt: str, target_format: str = "qcow2",
            layers: list[ImageInfo] | None = None) -> Measure:
    """What a copy of ``source`` (read as ``fmt``, chain included) needs as ``target_format``."""
    layers = layers or chain(source, fmt)
    return _measure([QEMU_IMG, "measure", "--output=json", "--force-share", "-O",
                     check_format(target_format), pinned(layers)], str(source))


def measure_size(size: int, *, target_format: str = "qcow2") -> Measure:
    """What a new empty image of ``size`` needs as ``target_format``."""
    return _measure([QEMU_IMG, "measure", "--output=json", "-O", check_format(target_format),
                     "--size", str(size)], f"a {size}-byte image")


def check(path: Path, *, fmt: str) -> str:
    """qemu-img check's verdict on ``path`` read as ``fmt``; raise when it finds corruption."""
    if check_format(fmt, f"The image {path}") == "raw":
        return "A raw image has no metadata to check."
    layers = [_layer(path, fmt)]
    with tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run([QEMU_IMG, "check", "--force-share", pinned(layers[:1])],
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=600)
        except subprocess.TimeoutExpired:
            raise VirtStudioError(f"qemu-img check of {path} did not finish in 600 s.") from None
        text = _bounded(out, 64 * 1024)[0].strip()
    # Exit status 2 means corruption; 3 only leaked clusters, which lose nothing.
    if done.returncode in (1, 2):
        raise VirtStudioError(f"qemu-img check found a problem in {path}: "
                              f"{text.splitlines()[-1] if text else done.returncode}", text)
    return text.splitlines()[0] if text else "No errors were found on the image."


def resize(path: Path, size: int, *, fmt: str) -> None:
    """Grow ``path`` (read as ``fmt``) to ``size`` bytes; its backing files are not opened."""
    layer = _layer(path, fmt)
    if size < layer.virtual_size:
        raise VirtStudioError(f"Shrinking {path.name} would destroy data; only growing is "
                              "offered.")
    _run([QEMU_IMG, "resize", "-q", pinned([layer]), str(size)])


def convert(source: Path, target: Path, *, fmt: str, target_format: str = "qcow2",
            compress: bool = False, layers: list[ImageInfo] | None = None,
            progress: Callable[[float], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> None:
    """Copy ``source`` (read as ``fmt``, backing chain included) into a new ``target``.

    Also how an image is compacted.  ``layers`` is the chain the user was shown;
    without it the chain is read here.  Reports progress from 0 to 1; when
    ``cancelled`` turns true the copy stops and the partial target is removed,
    leaving the source untouched.
    """
    check_format(target_format, "The copy")
    _check_new(target)
    layers = layers or chain(source, fmt)
    need = measure(source, fmt=fmt, target_format=target_format, layers=layers).required
    free = shutil.disk_usage(target.parent).free
    if need > free:
        raise VirtStudioError(f"The copy needs {need >> 20} MiB and {target.parent} has "
                              f"{free >> 20} MiB free.")
    argv = [QEMU_IMG, "convert", "-p", "--force-share", "-O", target_format]
    if compress and target_format == "qcow2":
        argv.append("-c")
    argv += [pinned(layers), str(target)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)
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
        finally:
            proc.stdout.close()
        error = _bounded(err, 64 * 1024)[0].strip()
    if cancelled is not None and cancelled():
        target.unlink(missing_ok=True)
        return
    if code != 0:
        target.unlink(missing_ok=True)
        last = error.splitlines()[-1] if error else f"exit status {code}"
        raise VirtStudioError(f"qemu-img convert failed: {last}", error)
