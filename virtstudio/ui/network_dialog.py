"""Create or edit a libvirt virtual network; every field is checked as the user types."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.network.virtual_networks import (
    MODE_LABELS,
    MODES,
    NetworkSpec,
    StaticHost,
    check_spec,
    default_dhcp_range,
)
from virtstudio.ui.dialog_buttons import act_and_cancel
from virtstudio.ui.plain_text import plain_label


class NetworkDialog(QDialog):
    """``spec()`` is the checked spec once the dialog is accepted, else None."""

    def __init__(self, host: HostConnection, parent: QWidget | None = None, *,
                 editing: NetworkSpec | None = None,
                 host_bridges: set[str] | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.editing = editing
        self.host_bridges = host_bridges
        self.setObjectName("networkDialog")
        self.setWindowTitle(f"Edit Network {editing.name}" if editing else "New Virtual Network")
        self.setMinimumWidth(520)

        self.name_edit = QLineEdit(objectName="netName", placeholderText="lab-net")
        self.mode_combo = QComboBox(objectName="netMode")
        for mode in MODES:
            self.mode_combo.addItem(MODE_LABELS[mode], mode)
        self.bridge_edit = QComboBox(objectName="netBridge", editable=True)
        self.bridge_edit.addItems(sorted(host_bridges or ()))
        self.bridge_edit.setCurrentText("")
        self.bridge_edit.lineEdit().setPlaceholderText("virbr-lab (optional)")
        self.ipv4_edit = QLineEdit(objectName="netIpv4", placeholderText="192.168.150.1/24")
        self.dhcp_check = QCheckBox("Hand out addresses (DHCP)", objectName="netDhcp",
                                    checked=True)
        self.dhcp_start = QLineEdit(objectName="netDhcpStart")
        self.dhcp_end = QLineEdit(objectName="netDhcpEnd")
        dhcp_row = QHBoxLayout()
        dhcp_row.addWidget(self.dhcp_start)
        dhcp_row.addWidget(QLabel("to"))
        dhcp_row.addWidget(self.dhcp_end)
        self.ipv6_edit = QLineEdit(objectName="netIpv6",
                                   placeholderText="fd00:150::1/64 (optional)")
        self.dhcp6_check = QCheckBox("DHCPv6", objectName="netDhcp6")
        self.hosts_table = QTableWidget(0, 3, objectName="netHosts")
        self.hosts_table.setHorizontalHeaderLabels(["MAC", "IPv4 address", "Host name"])
        self.hosts_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.hosts_table.verticalHeader().setVisible(False)
        self.hosts_table.setMaximumHeight(120)
        self.add_host_button = QPushButton("Add Static Host", objectName="netAddHost")
        self.remove_host_button = QPushButton("Remove", objectName="netRemoveHost")
        self.add_host_button.clicked.connect(self._add_host_row)
        self.remove_host_button.clicked.connect(self._remove_host_row)
        hosts_buttons = QHBoxLayout()
        hosts_buttons.addWidget(self.add_host_button)
        hosts_buttons.addWidget(self.remove_host_button)
        hosts_buttons.addStretch(1)
        self.autostart_check = QCheckBox("Start with the host", objectName="netAutostart",
                                         checked=True)
        self.mode_hint = plain_label(objectName="netModeHint", wordWrap=True)
        self.error = plain_label(objectName="netError", wordWrap=True)
        self.error.setStyleSheet("color: #b3261e;")

        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Mode:", self.mode_combo)
        form.addRow("", self.mode_hint)
        form.addRow("Bridge:", self.bridge_edit)
        form.addRow("IPv4 address:", self.ipv4_edit)
        form.addRow("", self.dhcp_check)
        form.addRow("DHCP range:", dhcp_row)
        form.addRow("IPv6 address:", self.ipv6_edit)
        form.addRow("", self.dhcp6_check)
        form.addRow("Static hosts:", self.hosts_table)
        form.addRow("", hosts_buttons)
        form.addRow("", self.autostart_check)
        self.buttons, self.ok_button = act_and_cancel(self, "Save" if editing else "Create")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        if editing is not None:
            self._load(editing)
        for edit in (self.name_edit, self.ipv4_edit, self.dhcp_start, self.dhcp_end,
                     self.ipv6_edit):
            edit.textChanged.connect(self._validate)
        self.bridge_edit.currentTextChanged.connect(self._validate)
        self.mode_combo.currentIndexChanged.connect(self._validate)
        for box in (self.dhcp_check, self.dhcp6_check, self.autostart_check):
            box.toggled.connect(self._validate)
        self.hosts_table.itemChanged.connect(self._validate)
        self._spec: NetworkSpec | None = None
        self._validate()

    def _load(self, spec: NetworkSpec) -> None:
        self.name_edit.setText(spec.name)
        self.name_edit.setReadOnly(True)  # libvirt cannot rename a network
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(spec.mode)))
        self.bridge_edit.setCurrentText(spec.bridge)
        self.ipv4_edit.setText(spec.ipv4)
        self.dhcp_check.setChecked(spec.dhcp)
        self.dhcp_start.setText(spec.dhcp_start)
        self.dhcp_end.setText(spec.dhcp_end)
        self.ipv6_edit.setText(spec.ipv6)
        self.dhcp6_check.setChecked(spec.dhcp6)
        self.autostart_check.setChecked(spec.autostart)
        for h in spec.hosts:
            self._add_host_row(h)

    def _add_host_row(self, host: StaticHost | None = None) -> None:
        row = self.hosts_table.rowCount()
        self.hosts_table.insertRow(row)
        values = (host.mac, host.ip, host.hostname) if isinstance(host, StaticHost) else ("",) * 3
        for col, value in enumerate(values):
            self.hosts_table.setItem(row, col, QTableWidgetItem(value))
        self._validate()

    def _remove_host_row(self) -> None:
        row = self.hosts_table.currentRow()
        if row >= 0:
            self.hosts_table.removeRow(row)
            self._validate()

    def _cell(self, row: int, col: int) -> str:
        item = self.hosts_table.item(row, col)
        return item.text().strip() if item is not None else ""

    def _static_hosts(self) -> tuple[StaticHost, ...]:
        rows = (tuple(self._cell(r, c) for c in range(3))
                for r in range(self.hosts_table.rowCount()))
        return tuple(StaticHost(*row) for row in rows if any(row))

    def _current_spec(self) -> NetworkSpec:
        mode = self.mode_combo.currentData()
        dhcp = self.dhcp_check.isChecked()
        return NetworkSpec(
            name=self.name_edit.text().strip(), mode=mode,
            ipv4=self.ipv4_edit.text().strip() if mode != "bridge" else "",
            dhcp=dhcp, bridge=self.bridge_edit.currentText().strip(),
            autostart=self.autostart_check.isChecked(),
            dhcp_start=self.dhcp_start.text().strip() if dhcp else "",
            dhcp_end=self.dhcp_end.text().strip() if dhcp else "",
            ipv6=self.ipv6_edit.text().strip() if mode != "bridge" else "",
            dhcp6=self.dhcp6_check.isChecked(),
            hosts=self._static_hosts() if mode != "bridge" else (),
            uuid=self.editing.uuid if self.editing is not None else "")

    def _validate(self, *_: object) -> None:
        mode = self.mode_combo.currentData()
        routed = mode != "bridge"
        for widget in (self.ipv4_edit, self.dhcp_check, self.dhcp_start, self.dhcp_end,
                       self.ipv6_edit, self.dhcp6_check, self.hosts_table,
                       self.add_host_button, self.remove_host_button):
            widget.setEnabled(routed)
        for edit in (self.dhcp_start, self.dhcp_end):
            edit.setEnabled(routed and self.dhcp_check.isChecked())
        self._suggest_range()
        self.mode_hint.setText({
            "nat": "Guests reach outside through this host's address (NAT).",
            "route": "Guests' traffic is routed to the host's network without NAT.",
            "isolated": "Guests reach each other and this host only.",
            "open": "libvirt adds no firewall rules; you route and filter yourself.",
            "bridge": "Guests join an existing host bridge, as if on the physical LAN.",
        }[mode])
        spec = self._current_spec()
        problem = check_spec(spec, self.host, host_bridges=self.host_bridges)
        if not spec.name:
            problem = "Enter a name for the network."
        self.error.setText(problem)
        self.ok_button.setEnabled(not problem)
        self._spec = None if problem else spec

    def _suggest_range(self) -> None:
        """Show the range libvirt would get when the user leaves it empty."""
        try:
            start, end = default_dhcp_range(self.ipv4_edit.text().strip())
        except (ValueError, IndexError):
            start, end = "", ""
        self.dhcp_start.setPlaceholderText(start)
        self.dhcp_end.setPlaceholderText(end)

    def spec(self) -> NetworkSpec | None:
        return self._spec

    def accept(self) -> None:
        if self._spec is not None:
            super().accept()
