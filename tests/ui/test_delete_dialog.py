"""The delete confirmation names what is lost and protects shared disks."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from virtstudio.core.entities import Domain
from virtstudio.storage.delete_plans import DeletePlan, DiskChoice, Loss, Refusal

XML = "<domain type='test'><name>web</name><memory>1024</memory><os><type>hvm</type></os></domain>"


def make(qtbot, state=5):
    from virtstudio.ui.delete_dialog import DeleteVmDialog

    domain = Domain("test:///default", "u-1", XML, state, 0)
    choices = [
        DiskChoice("vda", "/img/web.qcow2", True, "", True),
        DiskChoice("vdb", "/img/shared.raw", False, "also used by db", False),
        DiskChoice("sda", "/iso/install.iso", True, "", False),
    ]
    plan = DeletePlan("Delete web?", "web is deleted.",
                      lost=(Loss("", "the definition of web"),),
                      refused=(Refusal("/img/shared.raw", ("db (disk vda)",)),),
                      choices=tuple(choices),
                      offers=(Loss("/img/web.qcow2", "disk vda"), Loss("/iso/install.iso", "sda")))
    dialog = DeleteVmDialog(domain, plan.pick(("/img/web.qcow2",)))
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_defaults_and_protected_disk(qtbot):
    dialog = make(qtbot)
    assert "web" in dialog.windowTitle()
    assert dialog.disks_to_remove() == ["/img/web.qcow2"]
    from PySide6.QtWidgets import QCheckBox

    shared = dialog.findChild(QCheckBox, "disk_vdb")
    assert shared is not None and not shared.isEnabled()
    assert "also used by db" in shared.text()
    from PySide6.QtWidgets import QLabel

    refused = dialog.findChild(QLabel, "deleteRefused")
    assert refused.isVisible() and "db (disk vda)" in refused.text()
    assert [loss.path for loss in dialog.confirmed_plan().lost] == ["", "/img/web.qcow2"]


def test_user_picks_disks_with_clicks(qtbot):
    from PySide6.QtWidgets import QCheckBox

    dialog = make(qtbot)
    for name in ("disk_vda", "disk_sda"):
        box = dialog.findChild(QCheckBox, name)
        # Click on the box itself, at the left, as a user does.
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))
    assert dialog.disks_to_remove() == ["/iso/install.iso"]
    assert dialog.confirmed_plan().chosen == ("/iso/install.iso",)


def test_running_machine_warns_and_cancel_is_default(qtbot):
    from PySide6.QtWidgets import QDialogButtonBox, QLabel

    dialog = make(qtbot, state=1)
    intro = dialog.findChild(QLabel, "deleteIntro")
    assert "forced off" in intro.text()
    box = dialog.findChild(QDialogButtonBox)
    assert box.button(QDialogButtonBox.StandardButton.Cancel).isDefault()
    assert not dialog.delete_button.isDefault()
    with qtbot.waitSignal(dialog.rejected, timeout=20000):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
