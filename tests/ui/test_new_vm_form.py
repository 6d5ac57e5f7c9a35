"""The New VM wizard on the demo host (libvirt's test driver): bad input is named and blocks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from tests.qt_input import choose, click, retype
from virtstudio.core.demo import DEMO_NAME, demo_uri
from virtstudio.core.entities import DomainState
from virtstudio.core.jobs import JobState
from virtstudio.machines.new_vm import DiskChoice, InstallSource, NetworkChoice
from virtstudio.ui.new_vm_wizard import NewVmWizard

ISO = "/srv/iso/debian-12.8.0-amd64-netinst.iso"  # a volume of the demo's iso-library pool


@pytest.fixture
def demo(make_main_window, qtbot):
    window = make_main_window()
    host = window.inventory.add(demo_uri(), name=DEMO_NAME, is_demo=True)
    qtbot.waitUntil(lambda: len(host.pools) == 5 and len(host.domains) > 20, timeout=20000)
    return window, host


@pytest.fixture
def wizard(demo, qtbot):
    window, _host = demo
    button = window.toolbar.widgetForAction(window.new_vm_action)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    wizard = window.findChildren(NewVmWizard)[-1]
    qtbot.waitUntil(lambda: wizard.facts is not None, timeout=20000)
    return wizard


def next_button(wizard):
    return wizard.button(QWizard.WizardButton.NextButton)


def pick_iso_volume(qtbot, wizard):
    """Choose the ISO from its pool with the keyboard, as a user would."""
    assert choose(qtbot, wizard.source_page.iso_volumes, "iso-library/debian") == ISO
    assert wizard.source_page.iso_edit.text() == ISO


def advance_to(qtbot, wizard, page):
    """Accept the defaults with an ISO from a pool, clicking Next up to ``page``."""
    pick_iso_volume(qtbot, wizard)
    while wizard.currentPage() is not page:
        assert next_button(wizard).isEnabled(), wizard.problems
        click(qtbot, next_button(wizard))


def assert_nothing_created(window, host, before):
    assert window.runner.jobs == []
    assert len(host.domains) == before


def test_defaults_are_valid_once_an_iso_is_chosen(wizard, qtbot):
    page = wizard.source_page
    assert page.name_edit.text() == "linux"  # a free name from the OS variant
    assert wizard.currentPage() is page and not next_button(wizard).isEnabled()
    assert "Choose an ISO image" in page.error_labels["iso"].text()
    advance_to(qtbot, wizard, wizard.devices_page)
    assert wizard.storage_page.volume_label.text() == "linux.qcow2"
    summary = wizard.devices_page.summary.text()
    assert "new thin qcow2 volume linux.qcow2, 20.0 GiB, in pool default" in summary
    assert "VNC display" in summary
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert finish.isEnabled() and finish.text() == "Create"


def test_customize_before_install_defines_and_selects_without_starting(demo, wizard, qtbot):
    window, host = demo
    retype(qtbot, wizard.source_page.name_edit, "custom-box")
    advance_to(qtbot, wizard, wizard.devices_page)
    click(qtbot, wizard.devices_page.customize_check)
    assert "defined only, not started" in wizard.devices_page.summary.text()
    click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    qtbot.waitUntil(lambda: wizard.job is not None and wizard.job.state.finished, timeout=20000)
    assert wizard.job.state is JobState.DONE, wizard.job.log_text()
    qtbot.waitUntil(lambda: (s := window.selected_domain()) is not None
                    and s[1].name == "custom-box", timeout=20000)
    domain = window.selected_domain()[1]
    assert domain.state is DomainState.SHUTOFF
    assert any(d.source == ISO for d in domain.summary.disks)
    volumes = {v.name for p in host.pools.values() for v in p.volumes}
    assert "custom-box.qcow2" in volumes


@pytest.mark.parametrize(("name", "message"), [
    ("my vm", "cannot contain spaces"),
    ("web/01", "cannot contain slashes"),
    ("web-frontend-01", "already has a machine called web-frontend-01"),
    ("", "Enter a name"),
])
def test_bad_names_are_named_and_block_next(demo, wizard, qtbot, name, message):
    window, host = demo
    before = len(host.domains)
    pick_iso_volume(qtbot, wizard)
    assert next_button(wizard).isEnabled()
    retype(qtbot, wizard.source_page.name_edit, name)
    label = wizard.source_page.error_labels["name"]
    assert message in label.text() and label.isVisible()
    assert not next_button(wizard).isEnabled()
    click(qtbot, next_button(wizard))
    assert wizard.currentPage() is wizard.source_page
    assert_nothing_created(window, host, before)


def test_missing_iso_file_is_named(demo, wizard, qtbot, tmp_path):
    window, host = demo
    before = len(host.domains)
    edit = wizard.source_page.iso_edit
    qtbot.keyClicks(edit, str(tmp_path / "gone.iso"))
    assert "There is no ISO image at" in wizard.source_page.error_labels["iso"].text()
    assert not next_button(wizard).isEnabled()
    (tmp_path / "here.iso").write_bytes(b"\0" * 2048)
    retype(qtbot, edit, str(tmp_path / "here.iso"))
    assert not wizard.source_page.error_labels["iso"].isVisible()
    assert next_button(wizard).isEnabled()
    assert_nothing_created(window, host, before)


def test_missing_kernel_file_is_named(demo, wizard, qtbot, tmp_path):
    window, host = demo
    before = len(host.domains)
    page = wizard.source_page
    click(qtbot, page.source_buttons[InstallSource.KERNEL])
    assert page.source_stack.currentWidget() is page.source_pages[InstallSource.KERNEL]
    assert "Enter the path of the kernel" in page.error_labels["kernel"].text()
    qtbot.keyClicks(page.kernel_edit, str(tmp_path / "vmlinuz"))
    assert "There is no kernel at" in page.error_labels["kernel"].text()
    assert not next_button(wizard).isEnabled()
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    qtbot.keyClicks(page.initrd_edit, str(tmp_path / "initrd.gz"))
    assert "There is no initrd at" in page.error_labels["initrd"].text()
    assert not next_button(wizard).isEnabled()
    retype(qtbot, page.initrd_edit, "")
    assert next_button(wizard).isEnabled()
    assert_nothing_created(window, host, before)


@pytest.mark.parametrize(("page_name", "edit_name", "field", "typed", "message", "good"), [
    ("machine_page", "memory_edit", "memory", "0", "Give the machine memory", "1G"),
    ("machine_page", "memory_edit", "memory", "32", "needs at least 64 MiB", "1G"),
    ("machine_page", "memory_edit", "memory", "lots", "is not a size", "1G"),
    ("machine_page", "memory_edit", "memory", "64G", "has only 3072 MiB", "1G"),
    ("storage_page", "size_edit", "disk_size", "900",
     "A 900.0 GiB disk does not fit: default has 32.1 GiB free", "512M"),
    ("storage_page", "size_edit", "disk_size", "0", "above zero", "512M"),
])
def test_bad_sizes_are_named_and_block_next(demo, wizard, qtbot, page_name, edit_name, field,
                                            typed, message, good):
    window, host = demo
    before = len(host.domains)
    page = getattr(wizard, page_name)
    advance_to(qtbot, wizard, page)
    edit = getattr(page, edit_name)
    retype(qtbot, edit, typed)
    assert message in page.error_labels[field].text()
    assert page.error_labels[field].isVisible()
    assert not next_button(wizard).isEnabled()
    click(qtbot, next_button(wizard))
    assert wizard.currentPage() is page
    retype(qtbot, edit, good)
    assert next_button(wizard).isEnabled()
    assert_nothing_created(window, host, before)


def test_pxe_boot_needs_a_network(demo, wizard, qtbot):
    window, host = demo
    before = len(host.domains)
    page = wizard.source_page
    click(qtbot, page.source_buttons[InstallSource.PXE])
    devices = wizard.devices_page
    while wizard.currentPage() is not devices:
        assert next_button(wizard).isEnabled(), wizard.problems
        click(qtbot, next_button(wizard))
    click(qtbot, devices.net_buttons[NetworkChoice.NONE])
    assert "Network boot needs a network" in devices.error_labels["network"].text()
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert not finish.isEnabled()
    click(qtbot, devices.net_buttons[NetworkChoice.BRIDGE])
    choose(qtbot, devices.bridge_combo, "br0")
    assert "has no bridge called br0" in devices.error_labels["network"].text()
    assert not finish.isEnabled()
    assert_nothing_created(window, host, before)


def test_a_name_taken_meanwhile_blocks_next(demo, wizard, qtbot):
    window, host = demo
    pick_iso_volume(qtbot, wizard)
    retype(qtbot, wizard.source_page.name_edit, "late-comer")
    assert next_button(wizard).isEnabled()
    # Someone else defines a machine of that name while the wizard is open.
    xml = ("<domain type='test'><name>late-comer</name><memory unit='MiB'>64</memory>"
           "<os><type>hvm</type></os></domain>")
    host.call(lambda conn: conn.defineXML(xml)).result(60)
    label = wizard.source_page.error_labels["name"]
    qtbot.waitUntil(lambda: "already has a machine called late-comer" in label.text(),
                    timeout=20000)
    assert not next_button(wizard).isEnabled()
    assert window.runner.jobs == []


def test_a_pool_made_meanwhile_is_offered_and_the_choice_stays(demo, wizard, qtbot):
    _window, host = demo
    combo = wizard.storage_page.pool_combo
    assert combo.currentData() == "default" and combo.findData("fresh-pool") == -1
    xml = "<pool type='dir'><name>fresh-pool</name><target><path>/fresh</path></target></pool>"
    host.call(lambda conn: conn.storagePoolCreateXML(xml, 0)).result(60)
    qtbot.waitUntil(lambda: combo.findData("fresh-pool") >= 0, timeout=20000)
    assert combo.currentData() == "default"


def test_import_uses_the_image_as_the_disk(demo, wizard, qtbot):
    _window, host = demo
    page = wizard.source_page
    retype(qtbot, page.name_edit, "imported-box")
    click(qtbot, page.source_buttons[InstallSource.IMPORT])
    assert "Choose the disk image to import" in page.error_labels["import"].text()
    image = "/var/lib/libvirt/images/debian-12-template.qcow2"
    assert choose(qtbot, page.import_volumes, "default/debian-12-template") == image
    assert page.import_edit.text() == image
    # The name preselects qcow2, in sight; the pool's record says nothing lies below it.
    assert page.import_format.isVisible() and page.import_format.currentData() == "qcow2"
    qtbot.waitUntil(lambda: next_button(wizard).isEnabled(), timeout=20000)
    assert f"{image}: read as qcow2" in page.import_chain.text()
    assert page.import_confirm_edits == {}
    click(qtbot, next_button(wizard))
    click(qtbot, next_button(wizard))
    storage = wizard.storage_page
    assert wizard.currentPage() is storage
    assert storage.imported_note.isVisible() and not storage.new_box.isVisible()
    click(qtbot, next_button(wizard))
    click(qtbot, wizard.devices_page.customize_check)
    click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    qtbot.waitUntil(lambda: wizard.job is not None and wizard.job.state.finished, timeout=20000)
    assert wizard.job.state is JobState.DONE, wizard.job.log_text()
    qtbot.waitUntil(lambda: host.find_domain_by_name("imported-box") is not None, timeout=20000)
    domain = host.find_domain_by_name("imported-box")
    assert [(d.source, d.fmt) for d in domain.summary.disks] == [(image, "qcow2")]
    volumes = {v.name for p in host.pools.values() for v in p.volumes}
    assert "imported-box.qcow2" not in volumes  # nothing new was made


def pick_format(qtbot, page, fmt: str) -> str:
    """Pick raw (the first entry) or qcow2 (the last) with the keyboard."""
    page.import_format.setFocus()
    qtbot.keyClick(page.import_format, Qt.Key.Key_Home if fmt == "raw" else Qt.Key.Key_End)
    return page.import_format.currentData()


def test_an_import_format_the_user_picks_stays_and_a_bad_one_blocks(demo, wizard, qtbot,
                                                                     tmp_path):
    window, host = demo
    before = len(host.domains)
    page = wizard.source_page
    click(qtbot, page.source_buttons[InstallSource.IMPORT])
    assert page.import_format.currentIndex() == -1  # nothing chosen, nothing guessed yet
    image = tmp_path / "download.qcow2"
    image.write_bytes(b"\0" * 4096)
    qtbot.keyClicks(page.import_edit, str(image))
    assert page.import_format.currentData() == "qcow2"
    assert pick_format(qtbot, page, "raw") == "raw"
    retype(qtbot, page.import_edit, str(tmp_path / "other.qcow2"))
    assert page.import_format.currentData() == "raw"  # the user's pick outlives the name
    assert "There is no disk image at" in page.error_labels["import"].text()
    assert not next_button(wizard).isEnabled()
    retype(qtbot, page.import_edit, str(image))
    # On the demo host a file outside the pools cannot be checked as qcow2: said, and blocked.
    assert pick_format(qtbot, page, "qcow2") == "qcow2"
    label = page.error_labels["import_chain"]
    qtbot.waitUntil(lambda: "not a volume of a pool" in label.text(), timeout=20000)
    assert label.isVisible() and not next_button(wizard).isEnabled()
    assert pick_format(qtbot, page, "raw") == "raw"
    qtbot.waitUntil(lambda: next_button(wizard).isEnabled(), timeout=20000)
    assert not label.isVisible()
    assert_nothing_created(window, host, before)


def test_an_existing_disk_image_shows_its_format_and_chain(demo, wizard, qtbot):
    _window, host = demo
    retype(qtbot, wizard.source_page.name_edit, "reuses-a-disk")
    storage = wizard.storage_page
    advance_to(qtbot, wizard, storage)
    click(qtbot, storage.disk_buttons[DiskChoice.EXISTING])
    rows = storage.existing_image
    assert "Choose an existing disk image" in storage.error_labels["disk_path"].text()
    assert rows.format_combo.currentIndex() == -1
    image = "/var/lib/libvirt/images/shared-data.raw"
    assert choose(qtbot, storage.disk_volumes, "default/shared-data") == image
    assert rows.format_combo.isVisible() and rows.format_combo.currentData() == "raw"
    qtbot.waitUntil(lambda: next_button(wizard).isEnabled(), timeout=20000)
    assert f"{image}: read as raw" in rows.chain_label.text()
    click(qtbot, next_button(wizard))
    assert "existing image " + image + ", read as raw" in wizard.devices_page.summary.text()
    click(qtbot, wizard.devices_page.customize_check)
    click(qtbot, wizard.button(QWizard.WizardButton.FinishButton))
    qtbot.waitUntil(lambda: wizard.job is not None and wizard.job.state.finished, timeout=20000)
    assert wizard.job.state is JobState.DONE, wizard.job.log_text()
    qtbot.waitUntil(lambda: host.find_domain_by_name("reuses-a-disk") is not None, timeout=20000)
    disks = host.find_domain_by_name("reuses-a-disk").summary.disks
    assert (disks[0].source, disks[0].fmt) == (image, "raw")
