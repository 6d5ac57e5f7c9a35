"""The Networks page: a host's virtual networks with their leases, this computer's
interfaces, and the topology of both.

Widgets only present and forward: checks and changes live in
``virtstudio.network`` and run as jobs; libvirt is read on the host's worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Network
from virtstudio.core.errors import UserError, VirtStudioError, describe
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.network import virtual_networks as vnet
from virtstudio.network.host_links import HostNetwork
from virtstudio.network.topology import Node, connect_problem
from virtstudio.network.vm_nics import connect_domain
from virtstudio.ui.bridge import relay
from virtstudio.ui.confirm import confirm_box
from virtstudio.ui.connect_dialog import ConnectDialog
from virtstudio.ui.error_dialog import error_box
from virtstudio.ui.network_dialog import NetworkDialog
from virtstudio.ui.network_model import NetworkListModel
from virtstudio.ui.plain_text import html
from virtstudio.ui.topology_view import TopologyView


def table_view(name: str, model: object) -> QTableView:
    view = QTableView(objectName=name)
    view.setModel(model)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.verticalHeader().setVisible(False)
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


class VirtualNetworksTab(QWidget):
    """The selected host's libvirt networks: create, edit, start, stop, delete, autostart."""

    dialog_opened = Signal(object)  # each dialog or confirmation it opens (for tests)

    def __init__(self, model: NetworkListModel, runner: JobRunner,
                 host_bridges: Callable[[], set[str] | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.runner = runner
        self.host_bridges = host_bridges
        self.view = table_view("networkList", model)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)
        model.dataChanged.connect(self._on_data_changed)
        model.modelReset.connect(self._on_current)
        model.rowsRemoved.connect(lambda *_: self._on_current())

        bar = QHBoxLayout()
        self.new_button = QPushButton("New Network…", objectName="newNetworkButton")
        self.edit_button = QPushButton("Edit…", objectName="editNetworkButton")
        self.start_button = QPushButton("Start", objectName="startNetworkButton")
        self.stop_button = QPushButton("Stop", objectName="stopNetworkButton")
        self.delete_button = QPushButton("Delete…", objectName="deleteNetworkButton")
        self.autostart_check = QCheckBox("Start with host", objectName="networkAutostart")
        self.new_button.clicked.connect(self.show_new)
        self.edit_button.clicked.connect(self.show_edit)
        self.start_button.clicked.connect(lambda: self._act(vnet.start_network))
        self.stop_button.clicked.connect(lambda: self._act(vnet.stop_network))
        self.delete_button.clicked.connect(self._ask_delete)
        self.autostart_check.clicked.connect(self._set_autostart)
        for widget in (self.new_button, self.edit_button, self.start_button, self.stop_button,
                       self.delete_button, self.autostart_check):
            bar.addWidget(widget)
        bar.addStretch(1)

        self.leases_label = QLabel("<b>DHCP leases</b>", objectName="leasesLabel")
        self.refresh_leases_button = QPushButton("Refresh", objectName="refreshLeases")
        self.refresh_leases_button.clicked.connect(self.refresh_leases)
        self.leases = QTableWidget(0, 4, objectName="leasesTable")
        self.leases.setHorizontalHeaderLabels(["MAC", "Address", "Host name", "Expires"])
        self.leases.verticalHeader().setVisible(False)
        self.leases.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.leases.horizontalHeader().setStretchLastSection(True)
        self._leases_read = CoreSignal("leases read")
        relay(self._leases_read, self._show_leases, self)

        lease_bar = QHBoxLayout()
        lease_bar.addWidget(self.leases_label)
        lease_bar.addStretch(1)
        lease_bar.addWidget(self.refresh_leases_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.view)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addLayout(lease_bar)
        lower_layout.addWidget(self.leases)
        split.addWidget(lower)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._update_buttons()

    # ---- selection ----------------------------------------------------------------

    def current(self) -> Network | None:
        index = self.view.currentIndex()
        return self.model.network_at(index.row()) if index.isValid() else None

    def select(self, name: str) -> bool:
        for row in range(self.model.rowCount()):
            if self.model.network_at(row).name == name:
                self.view.setCurrentIndex(self.model.index(row, 0))
                return True
        return False

    def _on_current(self, *_: object) -> None:
        self._update_buttons()
        self.refresh_leases()

    def _on_data_changed(self, top: QModelIndex, bottom: QModelIndex, *_: object) -> None:
        row = self.view.currentIndex().row()
        if top.row() <= row <= bottom.row():
            self._on_current()  # started or stopped: the leases change too

    def _update_buttons(self) -> None:
        net, host = self.current(), self.model.host
        self.new_button.setEnabled(host is not None)
        for button in (self.edit_button, self.delete_button):
            button.setEnabled(net is not None)
        self.start_button.setEnabled(net is not None and not net.active)
        self.stop_button.setEnabled(net is not None and net.active)
        self.autostart_check.setEnabled(net is not None)
        self.autostart_check.setChecked(bool(net is not None and net.autostart))

    # ---- actions -----------------------------------------------------------------------

    def _error(self, title: str, exc: Exception) -> QMessageBox:
        box = error_box(self, title, describe(exc) if not isinstance(exc, UserError) else exc)
        box.open()
        self.dialog_opened.emit(box)
        return box

    def _act(self, action: Callable[[JobRunner, HostConnection, str], object]) -> None:
        net, host = self.current(), self.model.host
        if net is None or host is None:
            return
        try:
            action(self.runner, host, net.name)
        except VirtStudioError as exc:
            self._error(f"{net.name} was not changed", exc)

    def _set_autostart(self, on: bool) -> None:
        net, host = self.current(), self.model.host
        if net is not None and host is not None:
            vnet.set_autostart(self.runner, host, net.name, on)

    def _ask_delete(self) -> None:
        net, host = self.current(), self.model.host
        if net is None or host is None:
            return
        users = vnet.network_users(host, net.name, net.bridge)
        if users:
            self._error(f"{net.name} was not deleted", VirtStudioError(
                f"{net.name} is in use by {', '.join(users)}; nothing was changed."))
            return
        box = confirm_box(self, f"Delete {net.name}?",
                          f"The network {net.name} is stopped and its definition removed.",
                          "Delete", lambda: self._act(vnet.delete_network))
        self.dialog_opened.emit(box)

    def _open_dialog(self, editing: vnet.NetworkSpec | None) -> NetworkDialog | None:
        host = self.model.host
        if host is None:
            return None
        bridges = self.host_bridges()
        dialog = NetworkDialog(host, self, editing=editing, host_bridges=bridges)

        def submit() -> None:
            spec = dialog.spec()
            if spec is None:
                return
            make = vnet.edit_network if editing is not None else vnet.create_network
            try:
                make(self.runner, host, spec, host_bridges=bridges)
            except VirtStudioError as exc:
                self._error("The network was not saved", exc)
                return
            running = vnet.find_network(host, spec.name)
            if editing is not None and running is not None and running.active:
                self._offer_restart(host, spec.name)

        dialog.accepted.connect(submit)
        dialog.open()
        self.dialog_opened.emit(dialog)
        return dialog

    def _offer_restart(self, host: HostConnection, name: str) -> None:
        def restart() -> None:
            try:
                vnet.restart_network(self.runner, host, name)
            except VirtStudioError as exc:
                self._error(f"{name} was not restarted", exc)

        box = confirm_box(self, f"Restart {name} now?",
                          f"{name} is running: its new settings apply once it restarts. "
                          "Machines on it lose their connection meanwhile.",
                          "Restart Now", restart)
        self.dialog_opened.emit(box)

    def show_new(self) -> NetworkDialog | None:
        return self._open_dialog(None)

    def show_edit(self) -> NetworkDialog | None:
        net = self.current()
        if net is None:
            return None
        return self._open_dialog(vnet.spec_from_xml(net.xml, net.autostart))

    # ---- leases ---------------------------------------------------------------------------

    def refresh_leases(self) -> None:
        net, host = self.current(), self.model.host
        self.leases.setRowCount(0)
        if net is None or host is None:
            self.leases_label.setText("<b>DHCP leases</b>")
            return
        if not net.active:
            self.leases_label.setText(f"<b>DHCP leases</b> — {html(net.name)} is not running")
            return
        name, done = net.name, self._leases_read

        def read(_conn: object) -> None:
            try:
                done.emit(name, vnet.dhcp_leases(host, name), "")
            except Exception as exc:  # shown in the label, never raised on the worker
                done.emit(name, [], describe(exc).message)

        host.call(read)

    def _show_leases(self, name: str, leases: list[vnet.Lease], problem: str) -> None:
        net = self.current()
        if net is None or net.name != name:
            return  # the user moved on
        if problem:
            self.leases_label.setText(f"<b>DHCP leases</b> — {html(problem)}")
        else:
            self.leases_label.setText(f"<b>DHCP leases of {html(name)}</b> — {len(leases)}")
        self.leases.setRowCount(len(leases))
        for row, lease in enumerate(leases):
            expires = time.strftime("%H:%M:%S", time.localtime(lease.expires)) \
                if lease.expires else "never"
            for col, text in enumerate((lease.mac, lease.address, lease.hostname or "—",
                                        expires)):
                self.leases.setItem(row, col, QTableWidgetItem(text))


class NetworksPage(QTabWidget):
    """The tabs of the Networks page; ``dialog_opened`` relays every box any tab opens."""

    dialog_opened = Signal(object)

    def __init__(self, model: NetworkListModel, runner: JobRunner, inventory: Inventory,
                 host_network: HostNetwork | None, parent: QWidget | None = None, *,
                 sandboxes: object | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("networksPage")
        self.inventory = inventory
        self.runner = runner
        self.host_network = host_network
        self.virtual = VirtualNetworksTab(model, runner, self._host_bridges)
        self.virtual.dialog_opened.connect(self.dialog_opened)
        self.addTab(self.virtual, "Virtual networks")
        self.link_model = None
        self.interfaces = None
        if host_network is not None:
            from virtstudio.ui.host_net_panel import HostInterfacesTab

            self.interfaces = HostInterfacesTab(host_network, runner, inventory)
            self.interfaces.dialog_opened.connect(self.dialog_opened)
            self.link_model = self.interfaces.model
            self.addTab(self.interfaces, "This computer's interfaces")
        self.topology = TopologyView(inventory, host_network, sandboxes)
        self.topology.connect_requested.connect(self.ask_connect)
        self.addTab(self.topology, "Topology")

    def ask_connect(self, machine: Node, target: Node) -> ConnectDialog | None:
        """A machine was dropped on a bridge or network: confirm, then connect as a job."""
        problem = connect_problem(machine, target)
        host = self.inventory.find(machine.host_uri)
        domain = host.domains.get(machine.uuid) if host is not None else None
        if not problem and domain is None:
            problem = f"{machine.name} is no longer there."
        if problem:
            box = error_box(self, "Nothing was connected", UserError(problem))
            box.open()
            self.dialog_opened.emit(box)
            return None
        dialog = ConnectDialog(machine, target, domain.summary.nics, self)

        def connect() -> None:
            mac = dialog.chosen_mac()
            try:
                connect_domain(self.runner, host, domain, target.kind, target.name,
                               vlan=dialog.vlan(), mac=mac, add=mac is None)
            except VirtStudioError as exc:
                box = error_box(self, "Nothing was connected", UserError(exc.message))
                box.open()
                self.dialog_opened.emit(box)

        dialog.accepted.connect(connect)
        dialog.open()
        self.dialog_opened.emit(dialog)
        return dialog

    def _host_bridges(self) -> set[str] | None:
        """Bridges for "bridge" mode: known only when the host is this computer."""
        host = self.virtual.model.host
        if self.host_network is None or host is None or not _is_local(host):
            return None
        return {link.name for link in list(self.host_network.links.values())
                if link.kind == "bridge"}


def _is_local(host: HostConnection) -> bool:
    parsed = uri_mod.parse(host.uri)
    return not parsed.is_remote and not parsed.is_test
