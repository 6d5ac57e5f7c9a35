"""Delete confirmations: say exactly what goes and who keeps what stays.

Every delete is worked out first on the host's worker (a DeletePlan from
storage/delete_plans.py); ``PlanRequests`` brings the plan back to the GUI
thread, and the dialogs here show it.  Names and paths come from libvirt and
guests, so they are shown as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.entities import Domain
from virtstudio.core.errors import UserError, describe
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.storage.delete_plans import DeletePlan, DiskChoice
from virtstudio.ui.bridge import relay
from virtstudio.ui.plain_text import plain_label, plain_tooltip


def _plain(text: str, name: str) -> QLabel:
    label = plain_label(text, objectName=name, wordWrap=True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def lost_text(plan: DeletePlan) -> str:
    return "Deleted for good:\n" + "\n".join(f"• {loss.what}" for loss in plan.lost) \
        if plan.lost else ""


def refused_text(plan: DeletePlan) -> str:
    return "In use, so kept:\n" + "\n".join(f"• {r.describe()}" for r in plan.refused) \
        if plan.refused else ""


class PlanRequests(QObject):
    """Works a delete plan out off the GUI thread and hands it to a slot on it.

    Only the latest request answers: asking again (another volume, another
    machine) drops the earlier one's answer.
    """

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._answers = CoreSignal("delete plans")
        relay(self._answers, self._deliver, self)
        self._latest = 0
        self._pending: dict[int, tuple[Callable[[Any], object],
                                       Callable[[UserError], object]]] = {}

    def ask(self, start: Callable[[], Future[Any]], then: Callable[[Any], object],
            failed: Callable[[UserError], object]) -> None:
        self._latest += 1
        request = self._latest
        self._pending = {request: (then, failed)}
        future = start()
        future.add_done_callback(lambda f: self._answers.emit(request, f))

    def _deliver(self, request: int, future: Future[Any]) -> None:
        callbacks = self._pending.pop(request, None)
        if callbacks is None:
            return  # the user asked something else meanwhile
        then, failed = callbacks
        try:
            result = future.result()
        except Exception as exc:
            failed(describe(exc))
            return
        then(result)


class DeletePlanDialog(QDialog):
    """Confirms a volume delete: what is lost, or who uses it (then nothing can go)."""

    def __init__(self, plan: DeletePlan, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setObjectName("deletePlanDialog")
        self.setWindowTitle(plan.title)
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        layout.addWidget(_plain(plan.summary, "deleteSummary"))
        self.lost = _plain(lost_text(plan), "deleteLost")
        self.refused = _plain(refused_text(plan), "deleteRefused")
        self.blocked = _plain(plan.blocked, "deleteBlocked")
        for label in (self.lost, self.refused, self.blocked):
            label.setVisible(bool(label.text()))
            layout.addWidget(label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = buttons.addButton("Delete",
                                               QDialogButtonBox.ButtonRole.DestructiveRole)
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.setAutoDefault(False)
        self.delete_button.setEnabled(not plan.blocked)
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setDefault(True)
        self.delete_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
class DeleteVmDialog(QDialog):
    """Delete a machine: the disks that may go are offered, the others say who keeps them."""

    def __init__(self, domain: Domain, plan: DeletePlan,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setWindowTitle(f"Delete {domain.name}?")
        self.setMinimumWidth(520)
        self._checks: list[tuple[QCheckBox, DiskChoice]] = []
        layout = QVBoxLayout(self)

        lead = (f"Delete the virtual machine {domain.name}?\n"
                "Its definition, its snapshot metadata and any saved state are removed. "
                "This cannot be undone.")
        if domain.state.is_active:
            lead += "\nIt is running and will be forced off first."
        layout.addWidget(_plain(lead, "deleteIntro"))

        choices = plan.choices
        if choices:
            layout.addWidget(QLabel("Also delete these disks (their data is lost):"))
        for choice in choices:
            text = f"{choice.target}: {choice.source}"
            if not choice.removable:
                text += f"  — kept: {choice.why_not}"
            check = QCheckBox(text)
            check.setObjectName(f"disk_{choice.target}")
            check.setChecked(choice.removable and choice.source in plan.chosen)
            check.setEnabled(choice.removable)
            if not choice.removable:
                check.setToolTip(
                    plain_tooltip(f"This disk is kept: {choice.why_not}."))
            layout.addWidget(check)
            self._checks.append((check, choice))
        self.refused = _plain(refused_text(plan), "deleteRefused")
        self.refused.setVisible(bool(plan.refused))
        layout.addWidget(self.refused)
        self.blocked = _plain(plan.blocked, "deleteBlocked")
        self.blocked.setVisible(bool(plan.blocked))
        layout.addWidget(self.blocked)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = buttons.addButton("Delete",
                                               QDialogButtonBox.ButtonRole.DestructiveRole)
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.setAutoDefault(False)
        self.delete_button.setEnabled(not plan.blocked)
        cancel = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        self.delete_button.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def disks_to_remove(self) -> list[str]:
        return [c.source for check, c in self._checks if check.isChecked() and c.removable]

    def confirmed_plan(self) -> DeletePlan:
        """The plan with exactly the disks ticked now: what the job must still find true."""
        return self.plan.pick(tuple(self.disks_to_remove()))
