"""Confirm connecting a machine to a bridge or network (what a topology drop asks)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.domain_xml import NicInfo
from virtstudio.core.errors import VirtStudioError
from virtstudio.network.host_actions import parse_vlan_id
from virtstudio.network.topology import Node
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label


class ConnectDialog(QDialog):
    def __init__(self, machine: Node, target: Node, nics: Sequence[NicInfo] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("connectDialog")
        self.machine, self.target = machine, target
        what = "bridge" if target.kind == "bridge" else "virtual network"
        self.setWindowTitle(f"Connect {machine.name}")
        moves = ("The chosen network card moves there; a running machine moves at once."
                 if nics else "It has no network card yet: one is added there.")
        self.question = plain_label(
            f"Connect {machine.name} to the {what} {target.name}? {moves}", wordWrap=True)
        # Which card: each by MAC and where it is now, or a new one beside them.
        self.nic_combo = QComboBox(objectName="connectNic")
        for nic in nics:
            where = f"on {nic.kind} {nic.source}" if nic.source else f"{nic.kind}, unplugged"
            self.nic_combo.addItem(f"{nic.mac}  ({where}, {nic.model or 'default'})", nic.mac)
        self.nic_combo.addItem("A new network card", None)
        self.vlan_edit = QLineEdit(objectName="connectVlan",
                                   placeholderText="none, or 1-4094")
        self.error = plain_label(objectName="connectError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")
        form = QFormLayout()
        if nics:
            form.addRow("Network card:", self.nic_combo)
        if target.kind == "bridge":
            form.addRow("VLAN (untagged):", self.vlan_edit)
        self.buttons, self.ok_button = act_and_cancel(self, "Connect")
        self.vlan_edit.textChanged.connect(self._validate)
        layout = QVBoxLayout(self)
        layout.addWidget(self.question)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def chosen_mac(self) -> str | None:
        """The MAC of the card to move, or None for a new card."""
        return self.nic_combo.currentData()

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
