"""A tiny interactive QEMU guest built from Debian's kernel and busybox.

The initramfs is written here, in Python (newc cpio, gzip), so nothing but the
``busybox-static`` and ``linux-image-amd64`` packages is needed.  The guest
boots in seconds under TCG to a shell on the VGA console (tty1) and on the
first serial port, after printing ``VIRTSTUDIO-LAB-READY`` on both.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

LAB_DIR = Path("/var/lib/libvirt/images/virtstudio-lab")
READY_MARKER = "VIRTSTUDIO-LAB-READY"
BUSYBOX = Path("/bin/busybox")

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root PS1='lab# '
cd /root
echo {READY_MARKER}
echo {READY_MARKER} > /dev/ttyS0 2>/dev/null
( while true; do setsid sh -c 'exec sh -i </dev/ttyS0 >/dev/ttyS0 2>&1'; done ) &
while true; do setsid cttyhack sh; done
"""


@dataclass(frozen=True)
class LabImages:
    kernel: Path
    initrd: Path


def _kernel_source() -> Path:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels:
        raise RuntimeError("no kernel in /boot: install the linux-image-amd64 package")
    return kernels[-1]


def _cpio_entry(out: io.BytesIO, ino: int, name: str, mode: int, data: bytes = b"",
                rdev: tuple[int, int] = (0, 0)) -> None:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    out.write(header + encoded)
    out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def build_initramfs() -> bytes:
    """A gzip'd newc cpio archive holding busybox and /init."""
    if not BUSYBOX.is_file():
        raise RuntimeError("busybox not found: install the busybox-static package")
    out = io.BytesIO()
    entries = [
        ("bin", 0o040755, b"", (0, 0)), ("dev", 0o040755, b"", (0, 0)),
        ("proc", 0o040755, b"", (0, 0)), ("sys", 0o040755, b"", (0, 0)),
        ("tmp", 0o041777, b"", (0, 0)), ("root", 0o040700, b"", (0, 0)),
        # The kernel opens /dev/console for init before devtmpfs is mounted.
        ("dev/console", 0o020600, b"", (5, 1)),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes(), (0, 0)),
        ("init", 0o100755, INIT_SCRIPT.encode(), (0, 0)),
    ]
    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        _cpio_entry(out, ino, name, mode, data, rdev)
    _cpio_entry(out, len(entries) + 1, "TRAILER!!!", 0)
    return gzip.compress(out.getvalue(), mtime=0)


def build_lab_guest(dest: Path = LAB_DIR) -> LabImages:
    """Write the kernel and initramfs once; reuse them after.

    Each distinct build lives in its own folder named by its content hash, so
    two checkouts (or test runs) with different guests never overwrite each
    other's files while a guest boots from them.
    """
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    source = _kernel_source()
    image = build_initramfs()
    digest = hashlib.sha256(image + source.name.encode()).hexdigest()[:16]
    folder = dest / digest
    kernel = folder / "vmlinuz"
    initrd = folder / "initrd.gz"
    with open(dest / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o755)
        if not kernel.exists() or kernel.stat().st_size != source.stat().st_size:
            tmp = kernel.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
            tmp.replace(kernel)
        if not initrd.exists():
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(image)
            os.chmod(tmp, 0o644)
            tmp.replace(initrd)
    return LabImages(kernel, initrd)


def lab_domain_xml(name: str, images: LabImages, *, memory_mib: int = 128,
                   graphics: tuple[str, ...] = ("vnc", "spice"), video: str = "vga",
                   serial: bool = True, disks: tuple[Path, ...] = (),
                   networks: tuple[str, ...] = ()) -> str:
    """Domain XML for the lab guest under TCG (this machine has no usable KVM)."""
    devices = ["<emulator>/usr/bin/qemu-system-x86_64</emulator>"]
    for i, disk in enumerate(disks):
        fmt = "qcow2" if disk.suffix == ".qcow2" else "raw"
        devices.append(
            f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file='{escape(str(disk))}'/><target dev='vd{chr(ord('a') + i)}' "
            "bus='virtio'/></disk>")
    for network in networks:
        devices.append(f"<interface type='network'><source network='{escape(network)}'/>"
                       "<model type='virtio'/></interface>")
    if serial:
        devices.append("<serial type='pty'><target port='0'/></serial>"
                       "<console type='pty'><target type='serial' port='0'/></console>")
    for kind in graphics:
        devices.append(f"<graphics type='{kind}' autoport='yes' listen='127.0.0.1'>"
                       "<listen type='address' address='127.0.0.1'/></graphics>")
    devices.append(f"<video><model type='{video}'/></video>")
    devices.append("<memballoon model='none'/>")
    return (
        f"<domain type='qemu'><name>{escape(name)}</name>"
        f"<memory unit='MiB'>{memory_mib}</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type>"
        f"<kernel>{images.kernel}</kernel><initrd>{images.initrd}</initrd>"
        "<cmdline>console=tty0 quiet</cmdline></os>"
        "<features><acpi/></features><clock offset='utc'/>"
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>"
        "<on_crash>destroy</on_crash>"
        f"<devices>{''.join(devices)}</devices></domain>"
    )
