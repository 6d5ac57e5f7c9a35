"""A tiny interactive QEMU guest built from Debian's kernel and busybox.

The initramfs is written here, in Python (newc cpio, gzip), so nothing but the
``busybox-static`` and ``linux-image-amd64`` packages is needed.  The guest
boots under TCG to a shell on the VGA console (tty1) and on the first serial
port, after printing ``VIRTSTUDIO-LAB-READY`` on both.  The VGA screen keeps
the firmware and kernel lines above the marker, busybox's banner and the
prompt ``lab# `` (console tests count those rows; see :func:`prompt_on_screen`).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import struct
import threading
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
# At 80 MiB Debian's 6.1 kernel runs out of memory parsing its BTF during boot.
MIN_MEMORY_MIB = 88
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
# Loaded at boot with their dependencies (virtio_pci also gives the rng and input).
GUEST_MODULES = ("virtio_pci", "virtio_blk", "virtio_net")
# Bump when the archive layout changes in a way the input hashes cannot see.
_FORMAT = "lab-initramfs-3"

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root PS1='{PROMPT}'
cd /root
for module in /lib/modules/*.ko; do
    [ -e "$module" ] && insmod "$module" 2>/dev/null
done
# The 8250 driver registers ttyS0 even without a UART (type 0); a shell loop
# on such a port would respawn forever, burning TCG time.
serial=0
read -r uart 2>/dev/null </sys/class/tty/ttyS0/type && [ "$uart" != 0 ] && serial=1
if [ $serial = 1 ]; then
    stty -F /dev/ttyS0 115200 sane 2>/dev/null
    echo {READY_MARKER} > /dev/ttyS0
    ( while true; do
        setsid sh -c 'exec sh -i </dev/ttyS0 >/dev/ttyS0 2>&1'
        sleep 1
      done ) &
fi
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


def guest_modules(kernel: Path) -> list[Path]:
    """The host's modules for virtio disks and NICs, dependencies first.

    Debian builds virtio, virtio_pci, virtio_blk and virtio_net as modules,
    so without them a lab disk or NIC would not show up in the guest.  Empty
    when the kernel's module tree is not installed.
    """
    root = Path("/lib/modules") / kernel.name.removeprefix("vmlinuz-")
    try:
        lines = (root / "modules.dep").read_text().splitlines()
    except OSError:
        return []
    deps: dict[str, list[str]] = {}
    for line in lines:
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
    by_name = {Path(t).name.split(".ko")[0].replace("-", "_"): t for t in deps}
    ordered: list[str] = []

    def visit(module: str) -> None:
        if module in ordered:
            return
        for dep in deps.get(module, ()):
            visit(dep)
        ordered.append(module)

    for name in GUEST_MODULES:
        if name in by_name:
            visit(by_name[name])
    return [root / m for m in ordered if m.endswith((".ko", ".ko.xz", ".ko.gz"))]


def _module_bytes(path: Path) -> bytes:
    # busybox insmod wants a plain ELF object; newer kernels ship compressed ones.
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    return data


def build_initramfs(busybox: Path | None = None, modules: Sequence[Path] = ()) -> bytes:
    """A gzip'd newc cpio archive holding busybox, /init and ``modules`` (reproducible).

    Modules are stored as /lib/modules/NN-name.ko so /init loads them in order.
    """
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
    if modules:
        entries += [("lib", 0o040755, b"", (0, 0)), ("lib/modules", 0o040755, b"", (0, 0))]
        for i, module in enumerate(modules):
            name = module.name.split(".ko")[0]
            entries.append((f"lib/modules/{i:02d}-{name}.ko", 0o100644,
                            _module_bytes(module), (0, 0)))
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
    """Write the kernel and initramfs once; reuse them while the inputs match.

    Each distinct build lives in its own folder under ``dest``, named by the
    hash of its inputs (the host kernel, its virtio modules, busybox, /init),
    so two checkouts or test runs with different guests never overwrite each
    other's files while a guest boots from them.  ``stamp.json`` there records
    the outputs' hashes: a damaged file is rebuilt.  Concurrent callers
    (threads, pytest-xdist workers, a benchmark) serialise on ``dest/.lock``.
    """
    source, busybox = _kernel_source(), _busybox()
    modules = guest_modules(source)
    key = hashlib.sha256()
    key.update(_FORMAT.encode())
    key.update(INIT_SCRIPT.encode())
    for path in (source, busybox, *modules):
        key.update(f"{path.name}={_sha256(path)};".encode())
    wanted = key.hexdigest()
    folder = dest / wanted[:16]
    images = LabImages(folder / "vmlinuz", folder / "initrd.gz")
    stamp = folder / "stamp.json"
    dest.mkdir(parents=True, exist_ok=True)
    # The qemu user only needs to traverse and read; libvirt relabels the files itself.
    os.chmod(dest, 0o755)
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
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o755)
        tmp_kernel = folder / f".vmlinuz.{os.getpid()}.tmp"
        shutil.copyfile(source, tmp_kernel)
        os.chmod(tmp_kernel, 0o644)
        tmp_kernel.replace(images.kernel)
        _write_atomically(images.initrd, build_initramfs(busybox, modules))
        record = {"key": wanted, "kernel_source": str(source), "busybox": str(busybox),
                  "modules": [m.name for m in modules],
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
    if memory_mib < MIN_MEMORY_MIB:
        raise ValueError(f"below {MIN_MEMORY_MIB} MiB the Debian kernel panics out of memory")
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
    # No balloon: the guest never loads virtio_balloon, so nothing would answer it.
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


class LabTimeout(TimeoutError):
    """The guest did not get where it should in time; ``screenshot`` shows where it was."""

    def __init__(self, message: str, screenshot: Screenshot | None = None) -> None:
        super().__init__(message)
        self.screenshot = screenshot


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
    """Decode what virDomainScreenshot sent: PNG (libvirt 9.0 with QEMU 7.2) or PPM."""
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

    The text-mode screen (80x25 cells of 9x16 pixels) ends with /init's
    20-character marker, busybox's banner and then the prompt: the last inked
    row is ``lab#`` in columns 0-3 (plus the cursor in column 5 in its
    visible blink phase), and some row above it has exactly columns 0-19
    inked.  Firmware and kernel screens never look like that.
    """
    if (shot.width, shot.height) != (80 * CELL_WIDTH, 25 * CELL_HEIGHT):
        return False
    rows = shot.inked_cells()
    if not rows:
        return False
    last = max(rows)
    marker = set(range(len(READY_MARKER)))
    return (any(cols == marker for row, cols in rows.items() if row < last)
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


class SerialConsole:
    """The guest's ttyS0 through virDomainOpenConsole, read by a background thread.

    Output written before the console was opened is lost (QEMU drops pty
    output nobody reads): open it on a domain created paused, or use
    ``lab_domain_xml(serial_log=...)`` to see the boot marker.
    """

    def __init__(self, dom: libvirt.virDomain, *, force: bool = False) -> None:
        self._stream = dom.connect().newStream(0)
        dom.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0)
        self._buffer = bytearray()
        self._changed = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="lab-serial", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while chunk := self._stream.recv(4096):
                if isinstance(chunk, int):
                    break
                with self._changed:
                    self._buffer += chunk
                    self._changed.notify_all()
        except libvirt.libvirtError:
            pass  # closed by close() or by the domain going away: both end the output
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return self._buffer.decode(errors="replace")

    def send(self, text: str) -> None:
        """Type ``text``; a serial terminal sends CR for Enter, so newlines become CR."""
        data = text.replace("\n", "\r").encode()
        while data:
            sent = self._stream.send(data)
            data = data[sent:]

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Block until ``text`` appears in the output; return the output so far."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in self._buffer.decode(errors="replace"):
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise LabTimeout(f"{text!r} not on the serial console; got "
                                     f"{self._buffer[-300:].decode(errors='replace')!r}")
                self._changed.wait(left)
            return self._buffer.decode(errors="replace")

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()
        self._reader.join(5)

    def __enter__(self) -> SerialConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
