"""This computer's interfaces, live, with bridge, VLAN, veth and dummy actions.

Every change is checked by ``virtstudio.network.host_actions`` before a job asks
the privileged helper for it; bad input opens a message and changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import UserError, VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.network import host_actions as actions
from virtstudio.network.host_links import HostNetwork, Link
from virtstudio.network.nm_persist import (
    PermanentLink,
    make_permanent,
    networkmanager_running,
)
from virtstudio.ui.bridge import relay
from virtstudio.ui.confirm import confirm_box
from virtstudio.ui.error_dialog import error_box
from virtstudio.ui.host_link_model import HostLinkModel
from virtstudio.ui.plain_text import html


def _edit(name: str, placeholder: str, width: int = 150) -> QLineEdit:
    edit = QLineEdit(objectName=name, placeholderText=placeholder)
    edit.setMaximumWidth(width)
    return edit


class HostInterfacesTab(QWidget):
    dialog_opened = Signal(object)

    def __init__(self, network: HostNetwork, runner: JobRunner, inventory: Inventory,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.network = network
        self.runner = runner
        self.inventory = inventory
        self.model = HostLinkModel(network, self)
        from virtstudio.ui.networks_page import table_view

        self.view = table_view("hostLinks", self.model)
        self.view.selectionModel().currentRowChanged.connect(lambda *_: self._on_selected())

        runtime = QLabel(f"<b>Runtime only.</b> {actions.RUNTIME_ONLY}",
                         objectName="runtimeOnlyNote", wordWrap=True)
        self.nm_label = QLabel("Checking for NetworkManager…", objectName="nmStatus",
                               wordWrap=True)
        self.permanent_button = QPushButton("Make Permanent…", objectName="makePermanentButton")
        self.permanent_button.setToolTip("Ask NetworkManager to recreate the selected bridge "
                                         "or VLAN at every boot")
        self.permanent_button.clicked.connect(self._make_permanent)

        # New interfaces.
        self.bridge_name_edit = _edit("bridgeName", "bridge name, e.g. br-lab")
        self.vlan_aware_check = QCheckBox("VLAN-aware", objectName="bridgeVlanAware")
        self.new_bridge_button = QPushButton("Create Bridge", objectName="newBridgeButton")
        self.vlan_parent_combo = QComboBox(objectName="vlanParent")
        self.vlan_id_edit = _edit("vlanId", "VLAN id 1-4094", 110)
        self.vlan_name_edit = _edit("vlanName", "name (optional)")
        self.new_vlan_button = QPushButton("Create VLAN", objectName="newVlanButton")
        self.veth_name_edit = _edit("vethName", "veth name")
        self.veth_peer_edit = _edit("vethPeer", "peer name")
        self.new_veth_button = QPushButton("Create veth Pair", objectName="newVethButton")
        self.dummy_name_edit = _edit("dummyName", "dummy name")
        self.new_dummy_button = QPushButton("Create Dummy", objectName="newDummyButton")
        create = QGroupBox("New interface")
        grid = QGridLayout(create)
        rows: list[list[QWidget]] = [
            [QLabel("Bridge:"), self.bridge_name_edit, self.vlan_aware_check,
             self.new_bridge_button],
            [QLabel("VLAN on:"), self.vlan_parent_combo, self.vlan_id_edit, self.vlan_name_edit,
             self.new_vlan_button],
            [QLabel("veth pair:"), self.veth_name_edit, self.veth_peer_edit,
             self.new_veth_button],
            [QLabel("Dummy:"), self.dummy_name_edit, self.new_dummy_button],
        ]
        for r, row in enumerate(rows):
            for c, widget in enumerate(row):
                grid.addWidget(widget, r, c)
        self.new_bridge_button.clicked.connect(self._create_bridge)
        self.bridge_name_edit.returnPressed.connect(self._create_bridge)
        self.new_vlan_button.clicked.connect(self._create_vlan)
        self.new_veth_button.clicked.connect(self._create_veth)
        self.new_dummy_button.clicked.connect(self._create_dummy)

        # The selected interface.
        self.selected_label = QLabel("Select an interface above.", objectName="selectedLink")
        self.port_bridge_combo = QComboBox(objectName="portBridge")
        self.add_port_button = QPushButton("Add to Bridge", objectName="addPortButton")
        self.remove_port_button = QPushButton("Remove from Bridge",
                                              objectName="removePortButton")
        self.pvid_edit = _edit("portPvid", "PVID (untagged)", 120)
        self.tagged_edit = _edit("portTagged", "tagged, e.g. 20,30")
        self.set_vlans_button = QPushButton("Set Port VLANs", objectName="setPortVlansButton")
        self.delete_button = QPushButton("Delete Interface…", objectName="deleteLinkButton")
        selected = QGroupBox("Selected interface")
        sel = QGridLayout(selected)
        sel.addWidget(self.selected_label, 0, 0, 1, 4)
        for c, widget in enumerate((QLabel("Port of:"), self.port_bridge_combo,
                                    self.add_port_button, self.remove_port_button)):
            sel.addWidget(widget, 1, c)
        for c, widget in enumerate((QLabel("VLANs:"), self.pvid_edit, self.tagged_edit,
                                    self.set_vlans_button)):
            sel.addWidget(widget, 2, c)
        sel.addWidget(self.delete_button, 3, 0)
        sel.addWidget(self.permanent_button, 3, 1)
        self.add_port_button.clicked.connect(self._add_port)
        self.remove_port_button.clicked.connect(self._remove_port)
        self.set_vlans_button.clicked.connect(self._set_vlans)
        self.delete_button.clicked.connect(self._delete)

        forms = QHBoxLayout()
        forms.addWidget(create)
        forms.addWidget(selected)
        layout = QVBoxLayout(self)
        layout.addWidget(runtime)
        layout.addWidget(self.nm_label)
        layout.addWidget(self.view, 1)
        layout.addLayout(forms)

        for sig in (self.model.rowsInserted, self.model.rowsRemoved, self.model.dataChanged):
            sig.connect(lambda *_: self._refresh_choices())
        self._refresh_choices()
        self._on_selected()
        self._nm_known = CoreSignal("NetworkManager checked")
        relay(self._nm_known, self._show_nm, self)
        threading.Thread(target=lambda: self._nm_known.emit(networkmanager_running()),
                         name="nm-check", daemon=True).start()

    # ---- presentation ------------------------------------------------------------------

    def _show_nm(self, running: bool) -> None:
        self.nm_running = running
        self.nm_label.setText(
            "NetworkManager runs here: “Make Permanent…” keeps a bridge or VLAN across reboots."
            if running else "NetworkManager is not running here, so changes cannot be made "
            "permanent from VirtStudio.")

    def _links(self) -> list[Link]:
        return sorted(list(self.network.links.values()), key=lambda link: link.name)

    def _refresh_choices(self) -> None:
        for combo, links in (
                (self.vlan_parent_combo, [x for x in self._links() if x.kind != "loopback"]),
                (self.port_bridge_combo, [x for x in self._links() if x.kind == "bridge"])):
            names = [link.name for link in links]
            if [combo.itemText(i) for i in range(combo.count())] != names:
                keep = combo.currentText()
                combo.clear()
                combo.addItems(names)
                if keep in names:
                    combo.setCurrentText(keep)
        self._on_selected()

    def selected(self) -> Link | None:
        index = self.view.currentIndex()
        link = self.model.link_at(index.row()) if index.isValid() else None
        return self.network.links.get(link.index, link) if link is not None else None

    def select(self, name: str) -> bool:
        for row in range(self.model.rowCount()):
            if self.model.link_at(row).name == name:
                self.view.setCurrentIndex(self.model.index(row, 0))
                return True
        return False

    def _on_selected(self) -> None:
        link = self.selected()
        for widget in (self.add_port_button, self.delete_button, self.set_vlans_button):
            widget.setEnabled(link is not None)
        self.remove_port_button.setEnabled(link is not None and bool(link.master))
        self.permanent_button.setEnabled(link is not None and link.kind in ("bridge", "vlan"))
        if link is None:
            self.selected_label.setText("Select an interface above.")
            return
        master = self.network.links.get(link.master) if link.master else None
        text = f"<b>{html(link.name)}</b> ({html(link.kind)}, {html(link.state)})"
        if master is not None:
            text += f", port of {html(master.name)}"
        self.selected_label.setText(text)

    # ---- actions ----------------------------------------------------------------------

    def _error(self, title: str, message: str) -> QMessageBox:
        box = error_box(self, title, UserError(message))
        box.open()
        self.dialog_opened.emit(box)
        return box

    def _try(self, title: str, action: Callable[[], Job], *clear: QLineEdit) -> Job | None:
        try:
            job = action()
        except VirtStudioError as exc:
            self._error(title, exc.message)
            return None
        for edit in clear:
            edit.clear()
        return job

    def _create_bridge(self) -> None:
        name = self.bridge_name_edit.text().strip()
        self._try("The bridge was not created", lambda: actions.create_bridge(
            self.runner, self.network, name, vlan_filtering=self.vlan_aware_check.isChecked()),
            self.bridge_name_edit)

    def _create_vlan(self) -> None:
        parent = self.vlan_parent_combo.currentText()
        self._try("The VLAN was not created", lambda: actions.create_vlan(
            self.runner, self.network, parent, self.vlan_id_edit.text(),
            self.vlan_name_edit.text().strip()), self.vlan_id_edit, self.vlan_name_edit)

    def _create_veth(self) -> None:
        name, peer = self.veth_name_edit.text().strip(), self.veth_peer_edit.text().strip()
        self._try("The veth pair was not created",
                  lambda: actions.create_veth(self.runner, self.network, name, peer),
                  self.veth_name_edit, self.veth_peer_edit)

    def _create_dummy(self) -> None:
        name = self.dummy_name_edit.text().strip()
        self._try("The dummy interface was not created",
                  lambda: actions.create_dummy(self.runner, self.network, name),
                  self.dummy_name_edit)

    def _guarded(self, name: str, title: str, act: Callable[[bool], Job]) -> None:
        """Run ``act``; on the default route's interface only after an explicit yes."""
        if actions.on_default_route(self.network, name):
            box = confirm_box(
                self, f"Change {name}?",
                f"{name} carries this computer's default route. Changing it can cut this "
                "computer off the network.", "Change Anyway",
                lambda: self._try(title, lambda: act(True)))
            self.dialog_opened.emit(box)
            return
        self._try(title, lambda: act(False))

    def _add_port(self) -> None:
        link, bridge = self.selected(), self.port_bridge_combo.currentText()
        if link is None:
            return
        self._guarded(link.name, "The port was not added", lambda ok: actions.add_port(
            self.runner, self.network, bridge, link.name, confirmed=ok))

    def _remove_port(self) -> None:
        link = self.selected()
        if link is not None:
            self._try("The port was not removed", lambda: actions.remove_port(
                self.runner, self.network, link.name, self.inventory.connections))

    def _set_vlans(self) -> None:
        link = self.selected()
        if link is not None:
            self._try("The port VLANs were not set", lambda: actions.set_port_vlans(
                self.runner, self.network, link.name, self.pvid_edit.text(),
                self.tagged_edit.text()))

    def _delete(self) -> None:
        link = self.selected()
        if link is None:
            return
        users = actions.link_users(self.network, self.inventory.connections, link.name)
        if users:
            self._error(f"{link.name} was not deleted",
                        f"{link.name} is in use by {', '.join(users)}; nothing was changed.")
            return

        def delete() -> None:
            self._guarded(link.name, f"{link.name} was not deleted",
                          lambda ok: actions.delete_link(self.runner, self.network, link.name,
                                                         self.inventory.connections,
                                                         confirmed=ok))

        box = confirm_box(self, f"Delete {link.name}?",
                          f"The {link.kind} interface {link.name} is removed from this "
                          "computer.", "Delete", delete)
        self.dialog_opened.emit(box)

    def _make_permanent(self) -> None:
        link = self.selected()
        if link is None:
            return
        parent = self.network.links.get(link.parent)
        spec = PermanentLink(link.name, link.kind, vlan_filtering=link.vlan_filtering,
                             parent=parent.name if parent else "", vlan_id=link.vlan_id)

        def work(job: Job) -> None:
            job.report(None, f"Asking NetworkManager to keep {link.name}")
            path = make_permanent(spec)
            job.log(f"NetworkManager stored it as {path}")

        self.runner.submit(f"Make {link.name} permanent", work, host=actions.HOST_LABEL,
                           target=link.name)
