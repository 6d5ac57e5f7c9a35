"""What an ordinary user sees when VirtStudio cannot manage the system's machines.

The first-run page says which daemon VirtStudio opened instead (the user's own
``qemu:///session``) and how to get system access: membership in the ``libvirt``
group (then a new login) or a polkit rule.  The root banner asks the user not
to run the whole application as root.  libvirt's message is shown as plain text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from virtstudio.core.local_probe import LIBVIRT_GROUP, LOCAL_SYSTEM_URI, LocalAccess

ROOT_BANNER = ("VirtStudio is running as root; run it as your own user (in the libvirt "
               "group) instead. Changes that need administrator rights ask for them "
               "one at a time.")


def root_banner() -> QLabel:
    banner = QLabel(ROOT_BANNER, objectName="rootBanner", wordWrap=True)
    banner.setTextFormat(Qt.TextFormat.PlainText)
    banner.setStyleSheet(
        "QLabel#rootBanner { background: #fde7e9; color: #6e0b14; padding: 6px 10px;"
        " border-bottom: 1px solid #e3a1a8; }")
    banner.hide()
    return banner


def first_run_text(access: LocalAccess) -> tuple[str, str]:
    """(heading, body) for ``access``; plain text."""
    if access.uri is None:
        heading = "No libvirt daemon on this computer answered"
    else:
        heading = f"VirtStudio opened your own machines ({access.uri})"
    steps = []
    if access.in_group_later and not access.in_group_now:
        steps.append(f"You are in the {LIBVIRT_GROUP} group, but this login started before "
                     "you were added: log out and in again.")
    elif not access.in_group_now:
        steps.append(f"Join the {LIBVIRT_GROUP} group: sudo adduser {access.user or '$USER'} "
                     f"{LIBVIRT_GROUP}, then log out and in again.")
    steps.append("Or have an administrator allow you through polkit (libvirt's action "
                 "org.libvirt.unix.manage).")
    body = (f"To manage this computer's machines, storage and networks ({LOCAL_SYSTEM_URI}), "
            "the system libvirt daemon has to let you in:\n\n"
            + "\n".join(f"•  {step}" for step in steps)
            + f"\n\nThe system daemon said: {access.system_refused or 'nothing'}")
    if access.uri is not None:
        body += ("\n\nUntil then, machines you create here are yours alone and run with "
                 "your rights; they are listed under the session host in the sidebar.")
    return heading, body


class FirstRunPage(QWidget):
    """Shown once at start when only the session daemon (or none) is available."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRunPage")
        self.heading = QLabel(objectName="firstRunHeading", wordWrap=True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        font = self.heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.heading.setFont(font)
        self.body = QLabel(objectName="firstRunBody", wordWrap=True)
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.continue_button = QPushButton("Continue", objectName="firstRunContinue")
        self.continue_button.clicked.connect(self.dismissed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.addWidget(self.heading)
        layout.addWidget(self.body)
        layout.addWidget(self.continue_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)

    def show_access(self, access: LocalAccess) -> None:
        heading, body = first_run_text(access)
        self.heading.setText(heading)
        self.body.setText(body)
