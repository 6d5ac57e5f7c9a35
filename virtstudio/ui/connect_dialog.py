"""Confirm connecting a machine to a bridge or network (what a topology drop asks)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import VirtStudioError
from virtstudio.network.host_actions import parse_vlan_id
from virtstudio.network.topology import Node
from virtstudio.ui.dialog_buttons import act_and_cancel


class ConnectDialog(QDialog):
    def __init__(self, machine: Node, target: Node, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectDialog")
        self.machine, self.target = machine, target
        what = "bridge" if target.kind == "bridge" else "virtual network"
        self.setWindowTitle(f"Connect {machine.name}")
        self.question = QLabel(
            f"Connect {machine.name} to the {what} {target.name}? Its first network "
            "interface moves there (one is added if it has none); a running machine "
            "moves at once.", wordWrap=True)
        self.vlan_edit = QLineEdit(objectName="connectVlan",
                                   placeholderText="none, or 1-4094")
        self.error = QLabel(objectName="connectError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        form = QFormLayout()
        if target.kind == "bridge":
            form.addRow("VLAN (untagged):", self.vlan_edit)
        self.buttons, self.ok_button = act_and_cancel(self, "Connect")
        self.vlan_edit.textChanged.connect(self._validate)
        layout = QVBoxLayout(self)
        layout.addWidget(self.question)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def vlan(self) -> int | None:
        text = self.vlan_edit.text().strip()
        return parse_vlan_id(text) if text else None

    def _validate(self, *_: object) -> None:
        try:
            self.vlan()
            problem = ""
        except VirtStudioError as exc:
            problem = exc.message
        self.error.setText(problem)
        self.ok_button.setEnabled(not problem)
