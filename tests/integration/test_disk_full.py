"""A guest whose disk fills up: QEMU pauses it, and the app says why and what to do.

The data disk is a qcow2 image on a tiny tmpfs, so the guest's writes really
run out of room on the host; QEMU's default error policy then stops the guest.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import SerialConsole, lab_domain_xml, wait_for_prompt
from virtstudio.core.domain_actions import Action, run_action
from virtstudio.core.io_errors import faults, paused_on_io_error, state_label
from virtstudio.core.jobs import JobState
from virtstudio.ui.vm_model import VmColumn

IMAGES = Path("/var/lib/libvirt/images")
BOOT_S = 150
NAME = f"vstest-diskfull-{os.getpid()}"


def _pool_xml(name: str, folder: Path) -> str:
    return (f"<pool type='dir'><name>{name}</name>"
            f"<target><path>{folder}</path></target></pool>")


class FullDiskGuest:
    """The lab guest with a 64 MiB qcow2 on an 8 MiB tmpfs, listed as a dir pool."""

    def __init__(self, images) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=f"{NAME}-", dir=IMAGES))
        self.mounted = False
        self.conn = libvirt.open(SYSTEM_URI)
        try:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", NAME,
                            str(self.folder)], check=True, capture_output=True)
            self.mounted = True
            self.disk = self.folder / "data.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(self.disk), "64M"],
                           check=True)
            self.pool = self.conn.storagePoolCreateXML(_pool_xml(NAME, self.folder), 0)
            xml = lab_domain_xml(NAME, images, disks=[self.disk])
            self.dom = self.conn.createXML(xml, 0)
        except BaseException:
            self.remove()
            raise

    def fill_disk(self) -> None:
        """Have the guest write more than the host has room for; QEMU pauses it."""
        wait_for_prompt(self.dom, BOOT_S)
        with SerialConsole(self.dom, force=True) as console:
            console.send("\n")
            console.send("dd if=/dev/urandom of=/dev/vda bs=1M count=48 conv=fsync\n")
            wait_for(lambda: self.dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED,
                     timeout=BOOT_S, interval=0.2)

    def remove(self) -> None:
        # Transient: destroying it removes it.
        try:
            self.conn.lookupByName(NAME).destroy()
        except libvirt.libvirtError:
            pass
        try:
            self.conn.storagePoolLookupByName(NAME).destroy()
        except libvirt.libvirtError:
            pass
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)
        try:
            self.folder.rmdir()
        except OSError:
            pass


@pytest.fixture(scope="module")
def full_guest(lab_images):
    guest = off_gui_thread(FullDiskGuest, lab_images, timeout=120)
    try:
        off_gui_thread(guest.fill_disk, timeout=BOOT_S * 2 + 30)
        assert tuple(guest.dom.state()) == (libvirt.VIR_DOMAIN_PAUSED,
                                            libvirt.VIR_DOMAIN_PAUSED_IOERROR)
        yield guest
    finally:
        off_gui_thread(guest.remove)


def test_a_full_disk_pause_is_reported_and_resume_says_it_is_still_full(full_guest, host):
    conn, runner = host
    dom = wait_for(lambda: conn.find_domain_by_name(NAME), timeout=60)
    assert paused_on_io_error(dom)
    assert dom.disk_errors == {"vda": libvirt.VIR_DOMAIN_DISK_ERROR_NO_SPACE}
    assert state_label(dom) == "Paused (disk full)"
    (fault,) = faults(dom, list(conn.pools.values()))
    assert (fault.target, fault.source, fault.pool_name) == ("vda", str(full_guest.disk), NAME)

    job = run_action(runner, conn, dom, Action.RESUME)
    wait_for(lambda: job.state.finished, timeout=60, interval=0.1)
    assert job.state is JobState.FAILED, job.log_text()
    assert job.error is not None
    assert "vda" in job.error.message and NAME in job.error.message
    assert "Add space" in job.error.message
    assert tuple(full_guest.dom.state()) == (libvirt.VIR_DOMAIN_PAUSED,
                                             libvirt.VIR_DOMAIN_PAUSED_IOERROR)


def test_the_window_shows_the_disk_full_pause_with_disk_and_pool(full_guest, make_main_window,
                                                                 qtbot, system_libvirtd):
    from virtstudio.core.inventory import Inventory

    window = make_main_window(Inventory(stats_interval=0.5))
    window.inventory.add(system_libvirtd)
    model = window.vm_model

    def row():
        model.flush_pending()
        for r in range(model.rowCount()):
            d = model.domain_at(r)
            if d is not None and d.name == NAME:
                return r + 1
        return 0

    qtbot.waitUntil(lambda: row() > 0 and model.index(row() - 1, VmColumn.STATE).data()
                    == "Paused (disk full)", timeout=60000)
    assert window.select_domain(NAME)
    notice = window.findChild(object, "ioErrorNotice")
    qtbot.waitUntil(lambda: notice.isVisibleTo(window.details), timeout=10000)
    assert "vda" in notice.text() and NAME in notice.text() and "Add space" in notice.text()
    banner = window.findChild(object, "ioErrorBanner")
    qtbot.waitUntil(banner.isVisible, timeout=10000)
    assert f"disk vda ({full_guest.disk}) in storage pool {NAME}" in banner.text()

    # With nothing selected, the banner goes once no machine is paused on a disk error.
    window.vm_view.clearSelection()
    off_gui_thread(full_guest.dom.destroy)
    qtbot.waitUntil(banner.isHidden, timeout=60000)
