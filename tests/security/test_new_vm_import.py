"""A disk image imported by the New VM wizard never decides how the new machine reads it.

The attack: a downloaded file called ``*.qcow2`` whose qcow2 header names a host
file (here a canary holding a secret, outside every storage pool) as its
backing file.  Defined as the machine's qcow2 disk, the guest would read that
host file through libvirt.  The image is read in the format the user chose, its
backing chain is shown, a backing file outside the pools is used only once its
name is typed, and a raw choice never opens the canary.  Everything runs on
the real libvirtd with `vstest-newvm-*` names, removed even on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from tests.helpers import off_gui_thread, wait_for
from tests.lab.daemon import SYSTEM_URI, require_libvirtd
from tests.qt_input import click, retype
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import discover
from virtstudio.machines.import_image import import_site, review_import
from virtstudio.machines.new_vm import DiskChoice, InstallSource, NetworkChoice, VmSpec
from virtstudio.ui.new_vm_wizard import NewVmWizard

MiB = 1024 * 1024
IMAGES = Path("/var/lib/libvirt/images")

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def secret() -> bytes:
    return b"VSTEST-CANARY-" + os.urandom(8).hex().encode()


class Lab:
    """A folder under the images folder holding the download; the canary lies elsewhere."""

    def __init__(self, tmp_path: Path, secret: bytes) -> None:
        self.name = f"vstest-newvm-{os.getpid()}"
        self.folder = IMAGES / self.name
        self.folder.mkdir()
        self.canary = tmp_path / "canary-secret.txt"
        line = secret + b"\n"
        self.canary.write_bytes((line * (MiB // len(line) + 1))[:MiB])
        self.image = self.folder / "download.qcow2"
        # A genuine qcow2 image whose header names the canary, read as raw, as backing file.
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.canary),
                        "-F", "raw", str(self.image), "4M"], check=True, timeout=60)
        self.domains: list[str] = []

    def machine(self, suffix: str) -> str:
        name = f"{self.name}-{suffix}"
        self.domains.append(name)
        return name

    def remove(self) -> None:
        conn = libvirt.open(SYSTEM_URI)
        try:
            for name in self.domains:
                try:
                    dom = conn.lookupByName(name)
                except libvirt.libvirtError:
                    continue
                if dom.isActive():
                    dom.destroy()
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        finally:
            conn.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def lab(tmp_path, secret):
    off_gui_thread(require_libvirtd)
    made = Lab(tmp_path, secret)
    yield made
    off_gui_thread(made.remove)


@pytest.fixture
def host():
    conn = HostConnection(SYSTEM_URI, stats_interval=0)
    conn.open().result(timeout=60)
    assert conn.state is ConnectionState.CONNECTED
    runner = JobRunner()
    yield conn, runner
    runner.shutdown(wait=True)
    conn.shutdown()


def _spec(name: str, image: Path, fmt: str, machines: tuple[str, ...],
          customize: bool = True) -> VmSpec:
    return VmSpec(name=name, source=InstallSource.IMPORT, import_path=str(image),
                  import_format=fmt, arch="x86_64",
                  machine="q35" if "q35" in machines else machines[0], domain_type="qemu",
                  vcpus=1, memory_mib=256, network=NetworkChoice.NONE, graphics="vnc",
                  customize=customize)


def _finish(job, timeout: float = 120.0):
    wait_for(lambda: job.state.finished, timeout=timeout, interval=0.05)
    return job


def _defined(name: str) -> ET.Element | None:
    conn = libvirt.open(SYSTEM_URI)
    try:
        return ET.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def _backing_files(disk: ET.Element) -> list[tuple[str, str]]:
    found, node = [], disk.find("backingStore")
    while node is not None and node.find("source") is not None:
        found.append((node.find("source").get("file"), node.find("format").get("type")))
        node = node.find("backingStore")
    return found


def _files_qemu_opened(name: str) -> set[str]:
    pid = int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())
    opened = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            opened.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return opened


def test_create_refuses_a_qcow2_naming_an_outside_file_until_it_is_named(lab, host):
    conn, runner = host
    facts = conn.call(discover).result(timeout=30)
    ctx = host_context(conn, facts)
    site = import_site(conn.uri, list(conn.pools.values()))
    review = conn.call(review_import, str(lab.image), "qcow2", site).result(timeout=60)
    assert [(x.path, x.format) for x in review.layers] == [(str(lab.image), "qcow2"),
                                                           (str(lab.canary), "raw")]
    assert review.outside == (str(lab.canary),)

    name = lab.machine("q")
    spec = _spec(name, lab.image, "qcow2", facts.arch("x86_64").machines)
    with pytest.raises(VirtStudioError, match="Type the name of"):
        create_vm(runner, conn, spec, ctx, image_chain=review)
    with pytest.raises(VirtStudioError, match="was not read"):
        create_vm(runner, conn, spec, ctx)  # no chain shown at all
    assert runner.jobs == [] and _defined(name) is None

    # Named by the user, the same file may be read, and the definition says exactly how.
    job = _finish(create_vm(runner, conn, spec, ctx, image_chain=review,
                            confirmed={str(lab.canary)}))
    assert job.state is JobState.DONE, (job.error, job.log_text())
    disk = _defined(name).find("devices/disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert _backing_files(disk) == [(str(lab.canary), "raw")]


def test_an_existing_disk_image_is_held_to_the_same_rule(lab, host):
    conn, runner = host
    facts = conn.call(discover).result(timeout=30)
    ctx = host_context(conn, facts)
    site = import_site(conn.uri, list(conn.pools.values()))
    review = conn.call(review_import, str(lab.image), "qcow2", site).result(timeout=60)
    name = lab.machine("existing")
    spec = _spec(name, lab.image, "qcow2", facts.arch("x86_64").machines)
    spec.source, spec.iso, spec.import_path = InstallSource.ISO, str(lab.image), ""
    spec.disk, spec.disk_path, spec.disk_format = DiskChoice.EXISTING, str(lab.image), "qcow2"
    with pytest.raises(VirtStudioError, match="Type the name of"):
        create_vm(runner, conn, spec, ctx, image_chain=review)
    assert runner.jobs == [] and _defined(name) is None
    job = _finish(create_vm(runner, conn, spec, ctx, image_chain=review,
                            confirmed={str(lab.canary)}))
    assert job.state is JobState.DONE, (job.error, job.log_text())
    disk = _defined(name).find("devices/disk")
    assert _backing_files(disk) == [(str(lab.canary), "raw")]


def test_the_job_refuses_a_chain_that_changed_after_it_was_shown(lab, host, tmp_path):
    conn, runner = host
    facts = conn.call(discover).result(timeout=30)
    site = import_site(conn.uri, list(conn.pools.values()))
    plain = lab.folder / "plain.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(plain), "4M"], check=True,
                   timeout=60)
    review = conn.call(review_import, str(plain), "qcow2", site).result(timeout=60)
    assert review.outside == ()
    # After the user saw "no backing file", the header is rewritten to name the canary.
    subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(lab.canary), "-F", "raw",
                    str(plain)], check=True, timeout=60)
    name = lab.machine("changed")
    job = _finish(create_vm(runner, conn, _spec(name, plain, "qcow2",
                                                facts.arch("x86_64").machines),
                            host_context(conn, facts), image_chain=review))
    assert job.state is JobState.FAILED
    assert "changed since you were asked" in job.error.message
    assert _defined(name) is None


def test_a_raw_choice_never_opens_the_named_file(lab, host, secret):
    conn, runner = host
    facts = conn.call(discover).result(timeout=30)
    site = import_site(conn.uri, list(conn.pools.values()))
    review = conn.call(review_import, str(lab.image), "raw", site).result(timeout=60)
    assert [x.path for x in review.layers] == [str(lab.image)]
    assert review.outside == () and str(lab.canary) not in repr(review)
    name = lab.machine("raw")
    job = _finish(create_vm(runner, conn, _spec(name, lab.image, "raw",
                                                facts.arch("x86_64").machines, customize=False),
                            host_context(conn, facts), image_chain=review))
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert secret not in job.log_text().encode()
    disk = _defined(name).find("devices/disk")
    assert disk.find("driver").get("type") == "raw" and _backing_files(disk) == []
    # The machine runs: QEMU has the image open, and never the canary.
    opened = wait_for(lambda: _files_qemu_opened(name) or None, timeout=30)
    assert str(lab.image) in opened
    assert str(lab.canary) not in opened
    live = libvirt.open(SYSTEM_URI)
    try:
        assert str(lab.canary) not in live.lookupByName(name).XMLDesc(0)
    finally:
        live.close()


# ---- the wizard, driven as a user does ------------------------------------------------------


@pytest.fixture
def wizard(make_main_window, qtbot, lab):
    window = make_main_window(Inventory(stats_interval=0))
    host = window.inventory.add(SYSTEM_URI)
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=20000)
    wizard = NewVmWizard([host], window.runner, host, window)
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitUntil(lambda: wizard.facts is not None, timeout=30000)
    return wizard


def test_the_wizard_blocks_next_until_the_outside_backing_file_is_named(wizard, lab, qtbot):
    page = wizard.source_page
    next_button = wizard.button(QWizard.WizardButton.NextButton)
    retype(qtbot, page.name_edit, lab.machine("wizard"))
    click(qtbot, page.source_buttons[InstallSource.IMPORT])
    qtbot.keyClicks(page.import_edit, str(lab.image))
    # The name preselects qcow2, and the user sees it.
    assert page.import_format.isVisible() and page.import_format.currentData() == "qcow2"
    qtbot.waitUntil(lambda: len(page.import_confirm_edits) == 1, timeout=30000)
    chain = page.import_chain.text()
    assert f"backing file {lab.canary}: read as raw, OUTSIDE every storage pool" in chain
    assert "Type the name of" in page.error_labels["import_chain"].text()
    assert not next_button.isEnabled()

    confirm = page.findChild(type(page.import_edit), "importConfirmName0")
    assert confirm is page.import_confirm_edits[str(lab.canary)]
    qtbot.keyClicks(confirm, "canary")  # not the whole name
    assert not next_button.isEnabled()
    click(qtbot, next_button)
    assert wizard.currentPage() is page
    retype(qtbot, confirm, lab.canary.name)
    assert next_button.isEnabled()

    # Read as raw, the file has no backing chain: nothing to name, nothing else read.
    page.import_format.setFocus()
    qtbot.keyClick(page.import_format, Qt.Key.Key_Home)
    assert page.import_format.currentData() == "raw"
    qtbot.waitUntil(lambda: page.import_confirm_edits == {} and next_button.isEnabled(),
                    timeout=30000)
    assert str(lab.canary) not in page.import_chain.text()
    assert f"{lab.image}: read as raw" in page.import_chain.text()
    while wizard.currentPage() is not wizard.devices_page:
        assert next_button.isEnabled(), wizard.problems
        click(qtbot, next_button)
    click(qtbot, wizard.devices_page.net_buttons[NetworkChoice.NONE])
    click(qtbot, wizard.devices_page.customize_check)
    click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    qtbot.waitUntil(lambda: wizard.job is not None and wizard.job.state.finished, timeout=60000)
    assert wizard.job.state is JobState.DONE, wizard.job.log_text()
    disk = off_gui_thread(_defined, lab.domains[-1]).find("devices/disk")
    assert disk.find("driver").get("type") == "raw" and _backing_files(disk) == []
