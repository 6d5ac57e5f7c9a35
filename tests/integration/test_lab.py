"""The test lab itself: the busybox guest on the real daemon, and the killable private daemon."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.lab.daemon import SYSTEM_URI, PrivateLibvirtd
from tests.lab.guest import (
    PROMPT,
    READY_MARKER,
    LabImages,
    SerialConsole,
    build_lab_guest,
    decode_screenshot,
    lab_domain_xml,
    prompt_on_screen,
    take_screenshot,
    wait_for_prompt,
)
from virtstudio.core.events import ensure_event_loop

pytestmark = pytest.mark.libvirtd

# TCG boots in about 6 s on an idle machine; leave room for a loaded CI host.
BOOT_TIMEOUT = 150.0


def _cpio_names(archive: bytes) -> list[str]:
    data = gzip.decompress(archive)
    names, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad newc magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        size, name_size = fields[6], fields[11]
        name = data[pos + 110:pos + 110 + name_size - 1].decode()
        if name == "TRAILER!!!":
            return names
        names.append(name)
        pos += 110 + name_size
        pos += -pos % 4
        pos += size + (-size % 4)


def test_build_is_cached_and_safe_for_concurrent_callers(tmp_path: Path) -> None:
    dest = tmp_path / "lab"
    results: list[LabImages] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_lab_guest(dest))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results[0] == results[1]
    images = results[0]
    names = _cpio_names(images.initrd.read_bytes())
    assert names[:9] == [
        "bin", "dev", "proc", "sys", "tmp", "root", "dev/console", "bin/busybox", "init"]
    modules = [n.rsplit("-", 1)[-1] for n in names if n.startswith("lib/modules/")]
    if modules:  # the host's module tree is optional; with it the virtio drivers come along
        assert modules.index("virtio.ko") < modules.index("virtio_blk.ko")
        assert {"virtio_pci.ko", "virtio_net.ko"} <= set(modules)
    before = (images.kernel.stat().st_mtime_ns, images.initrd.stat().st_mtime_ns)
    assert build_lab_guest(dest) == images
    assert (images.kernel.stat().st_mtime_ns, images.initrd.stat().st_mtime_ns) == before

    # A damaged output is noticed by its hash and rebuilt.
    images.initrd.write_bytes(b"truncated")
    build_lab_guest(dest)
    assert _cpio_names(images.initrd.read_bytes()) == names
    assert images.initrd.parent.parent == dest  # one folder per distinct build
    assert not [p for p in images.initrd.parent.iterdir() if p.name.endswith(".tmp")]


def _remove(conn: libvirt.virConnect, name: str) -> None:
    # Listing rather than lookupByName: a miss is normal here, not an error to print.
    for dom in conn.listAllDomains(0):
        if dom.name() == name:
            persistent = dom.isPersistent()
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
            if persistent:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefine()


@pytest.fixture
def system_conn(system_libvirtd: str):
    conn = libvirt.open(system_libvirtd)
    yield conn
    conn.close()


def test_persistent_guest_boots_to_a_prompt_on_screen_and_serial(
        system_conn: libvirt.virConnect, lab_images: LabImages, tmp_path: Path,
        record_property) -> None:
    name = f"vstest-lab-{os.getpid()}"
    serial_log = Path(f"/var/log/libvirt/qemu/{name}-serial0.log")
    _remove(system_conn, name)
    try:
        dom = system_conn.defineXML(lab_domain_xml(name, lab_images, serial_log=serial_log))
        # Paused first, so the console is attached before the guest prints anything.
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        # QEMU's own "display not initialized" text, not the guest's.
        assert not prompt_on_screen(take_screenshot(dom))
        with SerialConsole(dom) as console:
            started = time.monotonic()
            dom.resume()
            shot = wait_for_prompt(dom, timeout=BOOT_TIMEOUT)
            boot = time.monotonic() - started
            (tmp_path / "prompt.ppm").write_bytes(shot.to_ppm())
            record_property("boot_to_prompt_s", round(boot, 2))
            assert not shot.is_blank()
            assert prompt_on_screen(shot)
            assert decode_screenshot(shot.to_ppm()) == shot

            console.wait_for(PROMPT, timeout=60)
            assert READY_MARKER in console.output
            console.send("echo $((6*7))-answer\n")
            console.wait_for("42-answer", timeout=60)
        assert READY_MARKER in serial_log.read_text(errors="replace")
        assert dom.isPersistent() and dom.isActive()
        dom.destroy()
        assert dom.info()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    finally:
        _remove(system_conn, name)
        serial_log.unlink(missing_ok=True)


def _rfb_greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        return sock.recv(12)


def test_transient_guest_with_disk_vnc_and_spice(system_conn: libvirt.virConnect,
                                                 lab_images: LabImages) -> None:
    name = f"vstest-lab-disk-{os.getpid()}"
    disk = Path(f"/var/lib/libvirt/images/{name}.img")
    _remove(system_conn, name)
    try:
        with open(disk, "wb") as f:
            f.truncate(8 << 20)
        dom = system_conn.createXML(
            lab_domain_xml(name, lab_images, disks=[disk], graphics=("vnc", "spice")),
            libvirt.VIR_DOMAIN_START_PAUSED)
        assert not dom.isPersistent()
        with SerialConsole(dom) as console:
            dom.resume()
            console.wait_for(PROMPT, timeout=BOOT_TIMEOUT)
            console.send("cat /sys/block/vda/size\n")
            console.wait_for("16384", timeout=60)

        graphics = {g.get("type"): g for g in ET.fromstring(dom.XMLDesc(0)).iter("graphics")}
        assert set(graphics) == {"vnc", "spice"}
        for g in graphics.values():
            assert g.get("listen") == "127.0.0.1"
            assert int(g.get("port", "-1")) >= 5900
        assert _rfb_greeting(int(graphics["vnc"].get("port"))).startswith(b"RFB 003.")
        wait_for_prompt(dom, timeout=BOOT_TIMEOUT)
    finally:
        _remove(system_conn, name)
        disk.unlink(missing_ok=True)
    assert name not in {d.name() for d in system_conn.listAllDomains(0)}


FIXTURE = """<node>
  <domain type='test'><name>lab-a</name><memory>65536</memory>
    <os><type>hvm</type></os></domain>
  <domain type='test'><name>lab-b</name><memory>65536</memory>
    <os><type>hvm</type></os></domain>
</node>
"""


@pytest.fixture
def private_daemon(tmp_path: Path, system_libvirtd: str):
    fixture = tmp_path / "host.xml"
    fixture.write_text(FIXTURE)
    daemon = PrivateLibvirtd(fixture)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


def _names(conn: libvirt.virConnect) -> set[str]:
    return {d.name() for d in conn.listAllDomains(0)}


def test_private_daemon_dies_and_comes_back(private_daemon: PrivateLibvirtd) -> None:
    # Before the first open, or that connection never reports its close.
    ensure_event_loop()
    conn = libvirt.open(private_daemon.uri)
    assert conn.getType() == "TEST"
    assert _names(conn) == {"lab-a", "lab-b"}
    conn.lookupByName("lab-a").destroy()
    # No hypervisor driver is loaded in the private daemon.
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(f"qemu:///system?socket={private_daemon.socket}")

    closed = threading.Event()
    reasons: list[int] = []

    def on_close(_conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        reasons.append(reason)
        closed.set()

    conn.registerCloseCallback(on_close, None)
    old_pid = private_daemon.pid
    assert old_pid is not None
    private_daemon.kill()
    assert closed.wait(10), "the close callback did not fire after SIGKILL"
    assert reasons == [libvirt.VIR_CONNECT_CLOSE_REASON_EOF]
    assert private_daemon.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    with pytest.raises(libvirt.libvirtError):
        conn.listAllDomains(0)
    with contextlib.suppress(libvirt.libvirtError):
        conn.unregisterCloseCallback()
        conn.close()
    # The system daemon did not notice.
    libvirt.open(SYSTEM_URI).close()

    private_daemon.start()
    assert private_daemon.pid not in (None, old_pid)
    again = libvirt.open(private_daemon.uri)
    try:
        assert _names(again) == {"lab-a", "lab-b"}
        # A fresh daemon read the fixture again: the destroy before the crash is gone.
        assert again.lookupByName("lab-a").isActive()
    finally:
        again.close()


def test_private_daemon_default_host_is_shared_between_connections(
        private_daemon: PrivateLibvirtd) -> None:
    uri = private_daemon.uri_for(None)
    first, second = libvirt.open(uri), libvirt.open(uri)
    try:
        assert _names(first) == {"test"}
        first.lookupByName("test").destroy()
        assert not second.lookupByName("test").isActive()
    finally:
        first.close()
        second.close()
    private_daemon.stop()
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(uri)
