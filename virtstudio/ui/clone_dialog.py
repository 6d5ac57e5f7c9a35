"""Clone a machine: a new name and, per disk, a full copy or a linked clone.

Each copied disk's backing chain is read off the GUI thread and listed; a
backing file outside every storage pool needs its name typed before Clone.
"""

from __future__ import annotations

from concurrent.futures import Future
from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import describe
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.machines.clone import (
    DiskMode,
    check_clone,
    clone_chains,
    clone_disks,
    new_disk_path,
)
from virtstudio.storage.backing_chains import (
    ChainReview,
    PoolPlaces,
    pool_places,
)
from virtstudio.ui.bridge import relay
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label, plain_tooltip
from virtstudio.ui.typed_name_confirm import BackingFileConfirm


def _read_chains(_conn: object, domain: Domain,
                 places: PoolPlaces) -> dict[str, ChainReview | str]:
    return clone_chains(domain, places)


class CloneDialog(QDialog):
    def __init__(self, host: HostConnection, domain: Domain,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.domain = domain
        self.setWindowTitle(f"Clone {domain.name}")
        self.setMinimumWidth(560)
        self.name_edit = QLineEdit(f"{domain.name}-clone", objectName="cloneName")
        form = QFormLayout()
        form.addRow("New name:", self.name_edit)
        self.mode_combos: dict[str, QComboBox] = {}
        for disk in clone_disks(domain):
            combo = QComboBox(objectName=f"mode_{disk.target}")
            for mode in disk.modes:
                combo.addItem(mode.value, mode)
            combo.setEnabled(len(disk.modes) > 1)
            combo.setToolTip(plain_tooltip(disk.source))
            combo.currentIndexChanged.connect(self._validate)
            form.addRow(plain_label(f"{disk.target} ({disk.source}):"), combo)
            self.mode_combos[disk.target] = combo
        self.plan = QLabel(objectName="clonePlan", wordWrap=True)
        self.chains = QLabel(objectName="cloneChains", wordWrap=True)
        self.chains.setTextFormat(Qt.TextFormat.PlainText)
        self.file_confirm = BackingFileConfirm("clone", "clone")
        self.file_confirm.changed.connect(self._validate)
        self.chain_reviews: dict[str, ChainReview | str] | None = None
        self.error = plain_label(objectName="cloneError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        buttons, self.clone_button = act_and_cancel(self, "Clone")
        self.clone_button.setObjectName("cloneButton")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The clone gets a new UUID and new MAC addresses.",
                                wordWrap=True))
        layout.addLayout(form)
        layout.addWidget(self.plan)
        layout.addWidget(self.chains)
        layout.addWidget(self.file_confirm)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(self._validate)
        self._chains_read = CoreSignal("clone chains read")
        relay(self._chains_read, self._show_chains, self)
        self._read_chains()
        self._validate()

    def _read_chains(self) -> None:
        parsed = uri_mod.parse(self.host.uri)
        if parsed.is_remote or parsed.is_test:
            self.chain_reviews = {}  # nothing on this computer to read (and no clone of it)
            return
        self.chains.setText("Reading the disks' backing chains…")
        places = pool_places(list(self.host.pools.values()))
        future = self.host.call(_read_chains, self.domain, places)
        future.add_done_callback(self._chains_read.emit)

    def _show_chains(self, future: Future[dict[str, ChainReview | str]]) -> None:
        try:
            reviews = future.result()
        except Exception as exc:
            self.chain_reviews = {}
            self.chains.setText(f"The backing chains were not read: {describe(exc).message}")
            self._validate()
            return
        self.chain_reviews = reviews
        lines = []
        for target, review in reviews.items():
            if isinstance(review, str):
                lines.append(f"{target}: not read: {review}")
                continue
            lines.append(f"{target} reads:")
            lines += [f"  • {line}" for line in review.lines()]
        self.chains.setText("\n".join(lines))
        outside = [path for review in reviews.values() if isinstance(review, ChainReview)
                   for path in review.outside]
        self.file_confirm.show_paths(outside)
        self._validate()

    @property
    def confirm_edits(self) -> dict[str, QLineEdit]:
        return self.file_confirm.edits

    def confirmed(self) -> set[str]:
        """The backing files outside the pools whose names the user typed."""
        return self.file_confirm.confirmed()

    def name(self) -> str:
        return self.name_edit.text().strip()

    def modes(self) -> dict[str, DiskMode]:
        return {target: combo.currentData() for target, combo in self.mode_combos.items()}

    def problem(self) -> str:
        # Leading or trailing spaces are a typing slip, but still not part of a valid name.
        if self.name_edit.text() != self.name():
            return "A machine name cannot contain spaces or slashes."
        problem = check_clone(self.host, self.domain, self.name(), self.modes())
        if problem:
            return problem
        if self.chain_reviews is None:
            return "Reading the disks' backing chains…"
        missing = [path for path in self.confirm_edits if path not in self.confirmed()]
        if missing:
            return (f"Type the name of {', '.join(missing)} to let the clone read it, or "
                    "cancel.")
        return ""

    def _validate(self, *_: object) -> None:
        problem = self.problem()
        self.error.setText(problem)
        self.clone_button.setEnabled(not problem)
        lines = []
        if not problem:
            modes = self.modes()
            for disk in clone_disks(self.domain):
                mode = modes.get(disk.target, disk.default)
                if mode is DiskMode.SHARE:
                    lines.append(f"{escape(disk.target)}: shares {escape(disk.source)}")
                    continue
                path = escape(new_disk_path(disk, self.name(), mode))
                if mode is DiskMode.LINKED:
                    lines.append(
                        f"{escape(disk.target)}: new overlay {path} on {escape(disk.source)}, "
                        "which "
                        f"becomes a read-only base; {escape(self.domain.name)} moves onto a "
                        "new overlay of its own so the base never changes")
                else:
                    lines.append(f"{escape(disk.target)}: full copy to {path}")
        self.plan.setText("<br>".join(lines))

    def accept(self) -> None:
        if not self.problem():
            super().accept()
