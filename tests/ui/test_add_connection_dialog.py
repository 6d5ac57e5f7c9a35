"""Add Connection, driven with the keyboard and mouse."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from virtstudio.ui.add_connection_dialog import AddConnectionDialog


@pytest.fixture
def dialog(qtbot):
    dlg = AddConnectionDialog(existing_uris=["qemu:///system"])
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def choose(dialog, label):
    index = dialog.preset_combo.findText(label)
    assert index >= 0, label
    dialog.preset_combo.setCurrentIndex(index)


def test_existing_system_connection_is_refused(dialog):
    assert dialog.preset_combo.currentText() == "QEMU/KVM (system)"
    assert not dialog.ok_button.isEnabled()
    assert "Already connected" in dialog.error_label.text()


@pytest.mark.parametrize(("label", "uri"), [
    ("QEMU/KVM (user session)", "qemu:///session"),
    ("LXC containers", "lxc:///system"),
    ("Xen", "xen:///system"),
])
def test_local_presets(dialog, label, uri):
    choose(dialog, label)
    assert dialog.ok_button.isEnabled()
    assert dialog.uri() == uri
    assert dialog.preview.text() == uri


def test_ssh_preset_builds_the_uri_as_you_type(dialog, qtbot):
    choose(dialog, "Remote QEMU/KVM over SSH")
    assert dialog.host_edit.isVisible() and dialog.user_edit.isVisible()
    assert not dialog.ok_button.isEnabled()
    assert "Enter the host" in dialog.error_label.text()
    qtbot.keyClicks(dialog.user_edit, "admin")
    qtbot.keyClicks(dialog.host_edit, "kvm1.example.com")
    assert dialog.ok_button.isEnabled()
    assert dialog.uri() == "qemu+ssh://admin@kvm1.example.com/system"
    qtbot.keyClicks(dialog.host_edit, "!")
    assert not dialog.ok_button.isEnabled()
    assert "not a valid host" in dialog.error_label.text()


@pytest.mark.parametrize(("text", "fragment"), [
    ("foo", "not a connection URI"),
    ("qemu:///nonsense", "/system or /session"),
    ("qemu:// /system", "spaces"),
    ("bogus:///system", "Unknown hypervisor"),
])
def test_custom_uri_is_checked(dialog, qtbot, text, fragment):
    choose(dialog, "Custom URI")
    assert dialog.uri_edit.isVisible()
    qtbot.keyClicks(dialog.uri_edit, text)
    assert not dialog.ok_button.isEnabled()
    assert fragment in dialog.error_label.text()


def test_custom_uri_accepted_with_enter(dialog, qtbot):
    choose(dialog, "Custom URI")
    qtbot.keyClicks(dialog.uri_edit, "qemu+tcp://127.0.0.1:16509/system")
    dialog.autoconnect_check.setChecked(False)
    with qtbot.waitSignal(dialog.accepted, timeout=20000):
        qtbot.keyClick(dialog.uri_edit, Qt.Key.Key_Return)
    assert dialog.uri() == "qemu+tcp://127.0.0.1:16509/system"
    assert dialog.autoconnect() is False
