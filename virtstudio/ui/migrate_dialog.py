"""Move a machine to another open connection, live while it runs."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.machines.migrate import MigrateOptions, address_problem, check_migration
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label


class MigrateDialog(QDialog):
    def __init__(self, source: HostConnection, domain: Domain,
                 connections: list[HostConnection], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.domain = domain
        self.setWindowTitle(f"Move {domain.name} to Another Host")
        self.setMinimumWidth(520)
        self.host_combo = QComboBox(objectName="migrateDestination")
        self.host_combo.addItem("Choose a host…", None)
        for conn in connections:
            if conn is not source:
                self.host_combo.addItem(f"{conn.name} ({conn.state.value})", conn)
        running = domain.state.is_active
        self.live_check = QCheckBox("Live: keep the guest running while its memory is copied",
                                    objectName="migrateLive", checked=running)
        self.live_check.setEnabled(running)
        self.move_check = QCheckBox(f"Remove the definition from {source.name} once it has "
                                    "moved", objectName="migrateUndefine", checked=True)
        self.storage_check = QCheckBox("Copy the disks too (the hosts share no storage)",
                                       objectName="migrateStorage")
        self.storage_check.setEnabled(running)
        self.address_edit = QLineEdit(objectName="migrateAddress",
                                      placeholderText="optional, e.g. tcp://10.0.0.2")
        self.address_edit.setToolTip("Where the destination listens for the machine's memory; "
                                     "by default its host name")
        form = QFormLayout()
        form.addRow("Destination:", self.host_combo)
        form.addRow("Migration address:", self.address_edit)
        self.error = plain_label(objectName="migrateError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        buttons, self.move_button = act_and_cancel(self, "Move")
        self.move_button.setObjectName("migrateButton")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        if not running:
            layout.addWidget(QLabel("The machine is shut off: only its definition moves "
                                    "(offline migration).", wordWrap=True))
        for check in (self.live_check, self.storage_check, self.move_check):
            layout.addWidget(check)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.host_combo.currentIndexChanged.connect(self._validate)
        self.address_edit.textChanged.connect(self._validate)
        self._validate()

    def destination(self) -> HostConnection | None:
        return self.host_combo.currentData()

    def options(self) -> MigrateOptions:
        return MigrateOptions(live=self.live_check.isChecked(),
                              undefine_source=self.move_check.isChecked(),
                              copy_storage=self.storage_check.isChecked(),
                              address=self.address_edit.text().strip())

    def problem(self) -> str:
        return (check_migration(self.source, self.domain, self.destination())
                or address_problem(self.address_edit.text().strip()))

    def _validate(self, *_: object) -> None:
        problem = self.problem()
        self.error.setText(problem)
        self.move_button.setEnabled(not problem)

    def accept(self) -> None:
        if not self.problem():
            super().accept()
