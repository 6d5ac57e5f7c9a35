"""The Snapshots tab: a machine's snapshots as a tree, the current one marked.

Reading snapshots and working out what a revert or delete does to each file
run on the host's worker; the panel shows the answer, asks, and starts jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.machines import snapshots as snap_core
from virtstudio.machines.snapshots import SnapshotInfo, SnapshotPlan
from virtstudio.ui.bridge import relay
from virtstudio.ui.plain_text import make_plain, plain_label
from virtstudio.ui.snapshot_dialog import SnapshotDialog

CURRENT_MARK = "  (current)"
_MATCH_TREE = Qt.MatchFlag.MatchStartsWith | Qt.MatchFlag.MatchRecursive


class SnapshotPanel(QWidget):
    """Emits ``confirm_requested`` with every dialog or question it opens (for tests)."""

    confirm_requested = Signal(object)
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("snapshotPanel")
        self.host: HostConnection | None = None
        self.domain: Domain | None = None
        self.runner: JobRunner | None = None
        self.snapshots: list[SnapshotInfo] = []
        self._requests: dict[str, int] = {}
        self._my_jobs: set[int] = set()
        self._answers = CoreSignal("snapshot answers")
        relay(self._answers, self._on_answer, self)

        self.tree = QTreeWidget(objectName="snapshotTree")
        self.tree.setHeaderLabels(["Name", "Taken", "Kind", "Note"])
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.take_button = QPushButton("Take Snapshot…", objectName="takeSnapshotButton")
        self.revert_button = QPushButton("Revert…", objectName="revertSnapshotButton")
        self.delete_button = QPushButton("Delete…", objectName="deleteSnapshotButton")
        # libvirt sends no event for internal snapshots made by other tools.
        self.refresh_button = QPushButton("Refresh", objectName="refreshSnapshotsButton")
        self.refresh_button.clicked.connect(self.reload)
        self.take_button.clicked.connect(self.show_take)
        self.revert_button.clicked.connect(lambda: self._ask(snap_core.plan_revert))
        self.delete_button.clicked.connect(lambda: self._ask(snap_core.plan_delete))
        self.status = plain_label(objectName="snapshotStatus", wordWrap=True)
        buttons = QHBoxLayout()
        for button in (self.take_button, self.revert_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.status)
        self._update_buttons()

    def set_runner(self, runner: JobRunner) -> None:
        self.runner = runner
        relay(runner.job_changed, self._on_job_changed, self)

    def show_domain(self, host: HostConnection | None, domain: Domain | None) -> None:
        """Show ``domain``'s snapshots; a repeat call for the same machine reloads them."""
        changed = (domain is None or self.domain is None or domain.uuid != self.domain.uuid
                   or domain.xml != self.domain.xml)
        self.host, self.domain = host, domain
        if domain is None or host is None:
            self.snapshots = []
            self.tree.clear()
        elif changed:
            self.reload()
        self._update_buttons()

    # ---- reading -------------------------------------------------------------------------

    def reload(self) -> None:
        host, domain = self.host, self.domain
        if host is None or domain is None or host.state is not ConnectionState.CONNECTED:
            return
        self._call("list", lambda: host.call(snap_core.read_snapshots, domain.uuid))

    def _call(self, purpose: str, start: Callable[[], Future[Any]]) -> None:
        # Lists and questions are counted apart: a reload must not swallow a question.
        key = "list" if purpose == "list" else "ask"
        self._requests[key] = request = self._requests.get(key, 0) + 1
        uuid = self.domain.uuid if self.domain is not None else ""
        future = start()
        future.add_done_callback(lambda f: self._answers.emit((key, request, uuid), purpose, f))

    def _on_answer(self, token: tuple[str, int, str], purpose: str, future: Future[Any]) -> None:
        key, request, uuid = token
        if request != self._requests.get(key) or self.domain is None or self.domain.uuid != uuid:
            return  # the user moved on to another machine or question
        try:
            result = future.result()
        except Exception as exc:
            self.status.setText(describe(exc).message)
            self.loaded.emit()
            return
        if purpose == "list":
            self._fill(result)
            self.loaded.emit()
        else:
            self._confirm(purpose, result)

    def _fill(self, found: list[SnapshotInfo]) -> None:
        previous = self.selected()
        self.snapshots = found
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for snap in found:
            parent = items.get(snap.parent)
            taken = time.strftime("%Y-%m-%d %H:%M", time.localtime(snap.created))
            row = [snap.name + (CURRENT_MARK if snap.current else ""), taken,
                   snap.kind_label, snap.description]
            item = QTreeWidgetItem(row) if parent is None else QTreeWidgetItem(parent, row)
            if parent is None:
                self.tree.addTopLevelItem(item)
            if snap.current:
                font = QFont(item.font(0))
                font.setBold(True)
                item.setFont(0, font)
                item.setToolTip(0, "The machine's present state started from this snapshot.")
            items[snap.name] = item
            if previous is not None and previous.name == snap.name:
                self.tree.setCurrentItem(item)
        self.tree.expandAll()
        self.status.setText("" if found else "No snapshots yet.")
        self._update_buttons()

    def selected(self) -> SnapshotInfo | None:
        item = self.tree.currentItem()
        if item is None or not item.isSelected():
            return None
        name = item.text(0).removesuffix(CURRENT_MARK)
        return next((s for s in self.snapshots if s.name == name), None)

    def select(self, name: str) -> bool:
        for item in self.tree.findItems(name, _MATCH_TREE):
            if item.text(0).removesuffix(CURRENT_MARK) == name:
                self.tree.setCurrentItem(item)
                return True
        return False

    def _update_buttons(self) -> None:
        usable = (self.domain is not None and self.host is not None
                  and self.host.state is ConnectionState.CONNECTED and self.runner is not None)
        self.take_button.setEnabled(usable)
        self.refresh_button.setEnabled(usable)
        chosen = usable and self.selected() is not None
        self.revert_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)

    # ---- acting ----------------------------------------------------------------------------

    def show_take(self) -> SnapshotDialog | None:
        host, domain, runner = self.host, self.domain, self.runner
        if host is None or domain is None or runner is None:
            return None
        dialog = SnapshotDialog(domain, [s.name for s in self.snapshots], self)

        def take() -> None:
            kind = dialog.kind()
            if kind is None:
                return
            try:
                job = snap_core.create_snapshot(runner, host, domain, dialog.name(),
                                                dialog.description(), kind,
                                                [s.name for s in self.snapshots])
            except VirtStudioError as exc:
                self.status.setText(exc.message)
                return
            self._my_jobs.add(job.id)

        dialog.accepted.connect(take)
        dialog.open()
        self.confirm_requested.emit(dialog)
        return dialog

    def _ask(self, planner: Callable[..., SnapshotPlan]) -> None:
        host, domain, snap = self.host, self.domain, self.selected()
        if host is None or domain is None or snap is None:
            return
        purpose = "revert" if planner is snap_core.plan_revert else "delete"
        self.status.setText(f"Working out what {purpose} does to each file…")
        self._call(purpose, lambda: host.call(planner, domain.uuid, snap.name))

    def _confirm(self, purpose: str, plan: SnapshotPlan) -> None:
        host, domain, runner = self.host, self.domain, self.runner
        if host is None or domain is None or runner is None:
            return
        self.status.clear()
        name = plan.snapshot.name
        if purpose == "revert":
            title, verb, start = f"Revert {domain.name} to {name}?", "Revert", \
                snap_core.revert_snapshot
        else:
            title, verb, start = f"Delete the snapshot {name}?", "Delete Snapshot", \
                snap_core.delete_snapshot
        box = QMessageBox(QMessageBox.Icon.Warning, title, plan.describe(),
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName(f"{purpose}SnapshotBox")
        make_plain(box)
        go = box.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)

        def clicked(button: object) -> None:
            if button is go:
                self._my_jobs.add(start(runner, host, domain, plan).id)

        box.buttonClicked.connect(clicked)
        box.open()
        self.confirm_requested.emit(box)

    def _on_job_changed(self, job: Job) -> None:
        if job.id in self._my_jobs and job.state.finished:
            self._my_jobs.discard(job.id)
            self.reload()  # a failure is shown by the window, like every failed task
