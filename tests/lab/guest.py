"""A tiny interactive QEMU guest built from Debian's kernel and busybox.

The initramfs is written here, in Python (newc cpio, gzip), so nothing but the
``busybox-static`` and ``linux-image-amd64`` packages is needed.  The guest
boots under TCG to a shell on the VGA console (tty1) and on the first serial
port.  Before the VGA shell starts, ``/init`` clears the screen and prints
``VIRTSTUDIO-LAB-READY``, so a ready screen is always the same two lines: the
marker, then the prompt ``lab# `` (see :func:`prompt_on_screen`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import libvirt

LAB_DIR = Path("/var/lib/libvirt/images/virtstudio-lab")
READY_MARKER = "VIRTSTUDIO-LAB-READY"
PROMPT = "lab# "
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
# Bump when the archive layout changes in a way the input hashes cannot see.
_FORMAT = "lab-initramfs-2"

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root PS1='{PROMPT}'
cd /root
# The 8250 driver registers ttyS0 even without a UART (type 0); a shell loop
# on such a port would respawn forever, burning TCG time.
serial=0
read -r uart < /sys/class/tty/ttyS0/type 2>/dev/null && [ "$uart" != 0 ] && serial=1
if [ $serial = 1 ]; then
    stty -F /dev/ttyS0 115200 sane 2>/dev/null
    echo {READY_MARKER} > /dev/ttyS0
    ( while true; do
        setsid sh -c 'exec sh -i </dev/ttyS0 >/dev/ttyS0 2>&1'
        sleep 1
      done ) &
fi
# A known screen for screenshot checks: marker on line 1, prompt on line 2.
clear
echo {READY_MARKER}
while true; do
    setsid cttyhack sh
    sleep 1
done
"""


@dataclass(frozen=True)
class LabImages:
    """Where the lab guest's kernel and initramfs live (readable by the qemu user)."""

    kernel: Path
    initrd: Path


def _busybox() -> Path:
    for path in BUSYBOX_CANDIDATES:
        if path.is_file():
            return path
    raise RuntimeError("busybox not found: install the busybox-static package")


def _kernel_source() -> Path:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError("no kernel in /boot: install the linux-image-amd64 package")
    return kernels[-1]


def _cpio_entry(out: io.BytesIO, ino: int, name: str, mode: int, data: bytes = b"",
                rdev: tuple[int, int] = (0, 0)) -> None:
    encoded = name.encode() + b"\0"
    nlink = 2 if mode & 0o170000 == 0o040000 else 1
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    out.write(header + encoded)
    # newc pads the header+name and the data each to a multiple of four bytes.
    out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def build_initramfs(busybox: Path | None = None) -> bytes:
    """A gzip'd newc cpio archive holding busybox and /init (byte-for-byte reproducible)."""
    binary = (busybox or _busybox()).read_bytes()
    entries = [
        ("bin", 0o040755, b"", (0, 0)), ("dev", 0o040755, b"", (0, 0)),
        ("proc", 0o040755, b"", (0, 0)), ("sys", 0o040755, b"", (0, 0)),
        ("tmp", 0o041777, b"", (0, 0)), ("root", 0o040700, b"", (0, 0)),
        # The kernel opens /dev/console for init before devtmpfs is mounted;
        # without this node init runs with no stdin/stdout at all.
        ("dev/console", 0o020600, b"", (5, 1)),
        ("bin/busybox", 0o100755, binary, (0, 0)),
        ("init", 0o100755, INIT_SCRIPT.encode(), (0, 0)),
    ]
    out = io.BytesIO()
    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        _cpio_entry(out, ino, name, mode, data, rdev)
    _cpio_entry(out, len(entries) + 1, "TRAILER!!!", 0)
    return gzip.compress(out.getvalue(), compresslevel=6, mtime=0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    # Running guests keep the old inode; a guest starting now sees old or new, never half.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    tmp.replace(path)


def build_lab_guest(dest: Path = LAB_DIR) -> LabImages:
    """Write the kernel and initramfs under ``dest`` once; reuse them while the inputs match.

    The cache key hashes the host kernel, busybox and /init; the stamp also
    records the outputs' hashes, so a truncated or replaced file is rebuilt.
    Concurrent callers (pytest-xdist workers, a benchmark) serialise on a lock
    file in ``dest``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    # The qemu user only needs to traverse and read; libvirt relabels the files itself.
    os.chmod(dest, 0o755)
    images = LabImages(dest / "vmlinuz", dest / "initrd.gz")
    stamp = dest / "stamp.json"
    source, busybox = _kernel_source(), _busybox()
    key = hashlib.sha256()
    key.update(_FORMAT.encode())
    key.update(INIT_SCRIPT.encode())
    key.update(_sha256(source).encode())
    key.update(_sha256(busybox).encode())
    wanted = key.hexdigest()
    with open(dest / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("key") == wanted and all(
                p.is_file() and recorded.get(p.name) == _sha256(p)
                for p in (images.kernel, images.initrd)):
            return images
        tmp_kernel = dest / f".vmlinuz.{os.getpid()}.tmp"
        shutil.copyfile(source, tmp_kernel)
        os.chmod(tmp_kernel, 0o644)
        tmp_kernel.replace(images.kernel)
        _write_atomically(images.initrd, build_initramfs(busybox))
        record = {"key": wanted, "kernel_source": str(source),
                  images.kernel.name: _sha256(images.kernel),
                  images.initrd.name: _sha256(images.initrd)}
        _write_atomically(stamp, json.dumps(record, indent=1).encode())
    return images


def lab_domain_xml(name: str, images: LabImages, *, memory_mib: int = 96,
                   graphics: tuple[str, ...] = ("vnc", "spice"), video: str = "vga",
                   serial: bool = True, disks: Sequence[Path] = (),
                   networks: Iterable[str] = (), machine: str = "pc",
                   serial_log: Path | None = None) -> str:
    """Domain XML for the lab guest under TCG (this machine has no usable KVM).

    Graphics listen on 127.0.0.1 with automatic ports; ``disks`` are attached
    as virtio (raw unless the name ends in ``.qcow2``); ``networks`` are
    libvirt network names, each giving a virtio NIC.  ``serial_log`` makes
    QEMU copy everything the guest writes to ttyS0 into that file (through
    virtlogd), including what it wrote before any console client attached.
    """
    if memory_mib < 64:
        raise ValueError("the Debian kernel needs at least 64 MiB to unpack the initramfs")
    devices: list[str] = []
    for i, disk in enumerate(disks):
        if i >= 26:
            raise ValueError("at most 26 lab disks (vda..vdz)")
        fmt = "qcow2" if Path(disk).suffix == ".qcow2" else "raw"
        devices.append(
            f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file={quoteattr(str(disk))}/>"
            f"<target dev='vd{chr(ord('a') + i)}' bus='virtio'/></disk>")
    for network in networks:
        devices.append(f"<interface type='network'><source network={quoteattr(network)}/>"
                       "<model type='virtio'/></interface>")
    if serial:
        log = (f"<log file={quoteattr(str(serial_log))} append='off'/>"
               if serial_log is not None else "")
        devices.append(f"<serial type='pty'>{log}<target port='0'/></serial>"
                       "<console type='pty'><target type='serial' port='0'/></console>")
    for kind in graphics:
        if kind not in ("vnc", "spice"):
            raise ValueError(f"unknown graphics type {kind!r}")
        devices.append(f"<graphics type='{kind}' autoport='yes' listen='127.0.0.1'>"
                       "<listen type='address' address='127.0.0.1'/></graphics>")
    devices.append(f"<video><model type={quoteattr(video)}/></video>")
    # No balloon: nothing in the guest would drive it, and it costs boot time.
    devices.append("<memballoon model='none'/>")
    return (
        f"<domain type='qemu'><name>{escape(name)}</name>"
        f"<memory unit='MiB'>{int(memory_mib)}</memory><vcpu>1</vcpu>"
        f"<os><type arch='x86_64' machine={quoteattr(machine)}>hvm</type>"
        f"<kernel>{escape(str(images.kernel))}</kernel>"
        f"<initrd>{escape(str(images.initrd))}</initrd>"
        "<cmdline>console=tty0 quiet</cmdline></os>"
        "<features><acpi/></features><clock offset='utc'/>"
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>"
        "<on_crash>destroy</on_crash>"
        f"<devices>{''.join(devices)}</devices></domain>"
    )


# --- Screenshots -----------------------------------------------------------

CELL_WIDTH, CELL_HEIGHT = 9, 16  # VGA text mode glyph cell; 80x25 cells in 720x400
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Screenshot:
    """A decoded screenshot: 8-bit RGB, row-major, three bytes per pixel."""

    width: int
    height: int
    pixels: bytes

    def pixel(self, x: int, y: int) -> bytes:
        i = (y * self.width + x) * 3
        return self.pixels[i:i + 3]

    def is_blank(self) -> bool:
        """True when every pixel has the same colour (a screen nothing has drawn on)."""
        return self.pixels == self.pixels[:3] * (self.width * self.height)

    def to_ppm(self) -> bytes:
        """The image as a binary PPM, e.g. to keep next to a failed test's report."""
        return f"P6\n{self.width} {self.height}\n255\n".encode() + self.pixels

    def inked_cells(self) -> dict[int, set[int]]:
        """Text rows -> columns whose 9x16 cell differs from the background colour.

        The background is taken from the bottom-right pixel, which the lab
        guest never writes to.
        """
        colour = self.pixel(self.width - 1, self.height - 1)
        background = colour * CELL_WIDTH
        blank_line = colour * self.width
        cell_bytes = CELL_WIDTH * 3
        stride = self.width * 3
        rows: dict[int, set[int]] = {}
        for row in range(self.height // CELL_HEIGHT):
            for y in range(row * CELL_HEIGHT, (row + 1) * CELL_HEIGHT):
                line = self.pixels[y * stride:(y + 1) * stride]
                if line == blank_line:
                    continue
                for col in range(self.width // CELL_WIDTH):
                    if line[col * cell_bytes:(col + 1) * cell_bytes] != background:
                        rows.setdefault(row, set()).add(col)
        return rows


def _parse_ppm(data: bytes) -> Screenshot:
    fields: list[bytes] = []
    pos = 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError("truncated PPM header")
        fields.append(data[start:pos])
    width, height, maxval = (int(f) for f in fields)
    if maxval != 255:
        raise ValueError(f"only 8-bit PPM is supported, not maxval {maxval}")
    pixels = data[pos + 1:pos + 1 + width * height * 3]
    if len(pixels) != width * height * 3:
        raise ValueError("truncated PPM pixel data")
    return Screenshot(width, height, pixels)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _parse_png(data: bytes) -> Screenshot:
    # Only what QEMU's screendump writes: 8-bit RGB or RGBA, not interlaced.
    pos = len(_PNG_SIGNATURE)
    header = b""
    compressed: list[bytes] = []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
    if len(header) != 13:
        raise ValueError("PNG without a header")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(compressed))
    if len(raw) != (stride + 1) * height:
        raise ValueError("truncated PNG pixel data")
    previous = bytearray(stride)
    rgb = bytearray()
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                corner = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], corner)) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown PNG filter {kind}")
        if bpp == 3:
            rgb += line
        else:
            rgb += bytes(b for i, b in enumerate(line) if i % 4 != 3)
        previous = line
    return Screenshot(width, height, bytes(rgb))


def decode_screenshot(data: bytes) -> Screenshot:
    """Decode what virDomainScreenshot sent: PNG (QEMU >= 7.1 via libvirt >= 8.x) or PPM."""
    if data.startswith(_PNG_SIGNATURE):
        return _parse_png(data)
    if data.startswith(b"P6"):
        return _parse_ppm(data)
    raise ValueError(f"unknown screenshot format {data[:8]!r}")


def take_screenshot(dom: libvirt.virDomain, screen: int = 0) -> Screenshot:
    """Grab the guest's screen over a blocking stream on the domain's connection."""
    stream = dom.connect().newStream(0)
    try:
        dom.screenshot(stream, screen, 0)
        chunks = []
        while chunk := stream.recv(1 << 20):
            if isinstance(chunk, int):  # -2 only happens on non-blocking streams
                raise RuntimeError("screenshot stream would block")
            chunks.append(chunk)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return decode_screenshot(b"".join(chunks))


def prompt_on_screen(shot: Screenshot) -> bool:
    """Whether a 720x400 text screen shows the lab shell waiting for input.

    /init clears the screen and prints the 20-character marker before starting
    the shell, so the first inked row holds exactly columns 0-19; busybox's
    banner may follow, and the last inked row is ``lab#`` in columns 0-3 (plus
    the cursor in column 5 in its visible blink phase).  Firmware and kernel
    screens never look like that.
    """
    if (shot.width, shot.height) != (80 * CELL_WIDTH, 25 * CELL_HEIGHT):
        return False
    rows = shot.inked_cells()
    if len(rows) < 2:
        return False
    first, last = min(rows), max(rows)
    return (rows[first] == set(range(len(READY_MARKER)))
            and rows[last] - {len(PROMPT)} == set(range(len(PROMPT.rstrip()))))


def wait_for_prompt(dom: libvirt.virDomain, timeout: float = 30.0,
                    interval: float = 0.25) -> Screenshot:
    """Poll screenshots until the shell prompt shows; raise TimeoutError with the last one."""
    deadline = time.monotonic() + timeout
    while True:
        shot = take_screenshot(dom)
        if prompt_on_screen(shot):
            return shot
        if time.monotonic() > deadline:
            raise LabTimeout(f"no lab prompt on {dom.name()}'s screen within {timeout:.0f} s",
                             shot)
        time.sleep(interval)


class LabTimeout(TimeoutError):
    """The guest did not get where it should in time; ``screenshot`` shows where it was."""

    def __init__(self, message: str, screenshot: Screenshot | None = None) -> None:
        super().__init__(message)
        self.screenshot = screenshot
