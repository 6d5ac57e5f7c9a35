"""The details of the selected virtual machine: overview, hardware and XML."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.io_errors import describe_faults, state_label
from virtstudio.core.jobs import JobRunner
from virtstudio.core.units import format_kib
from virtstudio.network.nic_vlan import nic_vlans
from virtstudio.ui.console_view import ConsolePane
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.serial_view import SerialPane
from virtstudio.ui.snapshot_panel import SnapshotPanel
from virtstudio.ui.vm_editor import VmEditor
from virtstudio.ui.xml_editor import XmlEditor


def _value_label() -> QLabel:
    label = plain_label()  # names, titles and descriptions come from the host
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _scrolling(page: QWidget) -> QScrollArea:
    """Let the pane shrink below its content's height; the list above matters more."""
    area = QScrollArea()
    area.setWidget(page)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(value))


class DetailsPane(QStackedWidget):
    """Shows one domain; call ``show_domain`` again whenever it changes."""

    def __init__(self, parent: QWidget | None = None, runner: JobRunner | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsPane")
        self.domain: Domain | None = None
        self.host: HostConnection | None = None

        self._empty = QLabel("Select a virtual machine to see its details.")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setEnabled(False)
        self.addWidget(self._empty)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("detailsTabs")
        self.addWidget(self.tabs)

        overview = QWidget()
        form = QFormLayout(overview)
        # Why a paused machine cannot go on (a full disk), and what to do about it.
        self.io_error = _value_label()
        self.io_error.setObjectName("ioErrorNotice")
        self.io_error.setStyleSheet(
            "QLabel#ioErrorNotice { background: #fde7e9; color: #7a1c24; padding: 6px; }")
        self.io_error.hide()
        form.addRow(self.io_error)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._fields: dict[str, QLabel] = {}
        for key, label in (
            ("name", "Name"), ("title", "Title"), ("state", "State"), ("host", "Host"),
            ("uuid", "UUID"), ("os", "Guest type"), ("persistent", "Defined"),
            ("autostart", "Start with host"), ("description", "Description"),
        ):
            self._fields[key] = _value_label()
            form.addRow(f"{label}:", self._fields[key])
        self.tabs.addTab(_scrolling(overview), "Overview")

        hardware = QWidget()
        hw_layout = QVBoxLayout(hardware)
        hw_form = QFormLayout()
        for key, label in (("vcpus", "vCPUs"), ("memory", "Memory"),
                           ("graphics", "Graphics"), ("video", "Video"), ("boot", "Boot")):
            self._fields[key] = _value_label()
            hw_form.addRow(f"{label}:", self._fields[key])
        hw_layout.addLayout(hw_form)
        hw_layout.addWidget(QLabel("<b>Disks</b>"))
        self.disks = _table(["Target", "Device", "Bus", "Format", "Source"])
        hw_layout.addWidget(self.disks)
        hw_layout.addWidget(QLabel("<b>Network interfaces</b>"))
        self.nics = _table(["Type", "Source", "Model", "MAC", "VLAN"])
        hw_layout.addWidget(self.nics)
        self.tabs.addTab(_scrolling(hardware), "Hardware")
        self.editor = VmEditor(runner)
        self.tabs.addTab(self.editor, "Edit")

        self.console = ConsolePane()
        self.tabs.addTab(self.console, "Console")
        self.serial = SerialPane()
        self.tabs.addTab(self.serial, "Serial")
        self.tabs.currentChanged.connect(self._update_serial)

        self.snapshots = SnapshotPanel()
        if runner is not None:
            self.snapshots.set_runner(runner)
        self.tabs.addTab(self.snapshots, "Snapshots")

        self.xml_editor = XmlEditor(runner)
        self.xml_view = self.xml_editor.text
        self.tabs.addTab(self.xml_editor, "XML")

    def clear(self) -> None:
        self.domain = None
        self.snapshots.show_domain(None, None)
        self.setCurrentWidget(self._empty)
        self._update_serial()

    def _update_serial(self, *_: object) -> None:
        visible = self.tabs.currentWidget() is self.serial and self.domain is not None
        self.serial.show_machine(self.host, self.domain, visible)

    def show_domain(self, domain: Domain, host_name: str,
                    host: HostConnection | None = None) -> None:
        self.domain = domain
        self.host = host
        s = domain.summary
        f = self._fields
        f["name"].setText(s.name)
        f["title"].setText(s.title or "—")
        f["state"].setText(state_label(domain))
        fault = describe_faults(domain, list(host.pools.values()) if host is not None else [])
        self.io_error.setText(fault)
        self.io_error.setVisible(bool(fault))
        f["host"].setText(host_name)
        f["uuid"].setText(domain.uuid)
        arch = " ".join(x for x in (s.os_type, s.arch, s.machine) if x)
        f["os"].setText(f"{s.domain_type.upper()} {arch}".strip() or "—")
        f["persistent"].setText("Yes" if domain.persistent else "No (transient: gone once stopped)")
        f["autostart"].setText("Yes" if domain.autostart else "No")
        f["description"].setText(s.description or "—")
        f["vcpus"].setText(str(s.vcpus))
        memory = format_kib(s.current_memory_kib)
        if s.memory_kib and s.memory_kib != s.current_memory_kib:
            memory += f" (up to {format_kib(s.memory_kib)})"
        f["memory"].setText(memory)
        graphics = ", ".join(
            f"{g.kind.upper()}" + (f" on {g.listen}:{g.port}" if g.port else "")
            for g in s.graphics)
        f["graphics"].setText(graphics or "None")
        f["video"].setText(s.video or "None")
        f["boot"].setText(", ".join(s.boot) or "—")
        _fill(self.disks, [(d.target, d.device, d.bus, d.fmt, d.source or "(empty)")
                           for d in s.disks])
        vlans = nic_vlans(domain.xml)  # recorded by VirtStudio, applied at each start
        _fill(self.nics, [(n.kind, n.source, n.model, n.mac,
                           str(vlans.get(n.mac.lower(), "—"))) for n in s.nics])
        self.xml_editor.show_domain(host, domain)
        self.editor.show_domain(host, domain)
        self.snapshots.show_domain(host, domain)
        self._update_serial()
        self.setCurrentWidget(self.tabs)
