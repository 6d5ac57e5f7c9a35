"""The Edit tab: change the selected machine's hardware, checked as you type.

Plain fields (CPUs, memory, boot order, display) turn into changes when they
differ from the machine; disk and network-card actions are queued with their
buttons.  Apply runs them all as one task (``domain_edit.apply_changes``) and
says plainly what applied now and what waits for the next boot.

The display, video and disk bus lists are what the host's domain capabilities
say this machine takes, read once per host and machine type on the host's
worker (``device_choices``); the machine's current kind is always listed.

The editor remembers the saved XML it started from.  Apply reads it again
first; when someone else changed it meanwhile (virsh, another VirtStudio), the
user sees what changed and decides, and only the user's own changes are
written on top (``concurrent_edit``).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_xml import DomainSummary
from virtstudio.core.entities import Domain, StoragePool
from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.machines import domain_edit as de
from virtstudio.machines.concurrent_edit import review
from virtstudio.machines.device_choices import Choices, choices
from virtstudio.machines.host_caps import DeviceKinds, read_device_kinds
from virtstudio.machines.xml_edit import read_inactive_xml
from virtstudio.storage.sizes import parse_size
from virtstudio.storage.volumes import VolumeSpec
from virtstudio.ui.confirm import confirm_box
from virtstudio.ui.groups_editor import GroupsEditor
from virtstudio.ui.job_watch import when_done, when_finished
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.xml_editor import ERROR_STYLE

_BOOT_LABELS = {"hd": "Hard disk", "cdrom": "CD/DVD", "network": "Network (PXE)",
                "fd": "Floppy"}
_NO_SELECTION = "Select a row above first."


def _error_label(name: str) -> QLabel:
    label = plain_label(objectName=name, wordWrap=True)
    label.setStyleSheet(ERROR_STYLE)
    return label


def _combo(name: str, items: tuple[str, ...]) -> QComboBox:
    combo = QComboBox(objectName=name)
    combo.addItems(list(items))
    return combo


def _show_choice(combo: QComboBox, items: tuple[str, ...], value: str) -> None:
    """Show ``value`` selected, listing it beside ``items`` when it is not one of them.

    A kind the list does not offer (sdl, egl-headless, ramfb, an fdc bus, a
    ne2k_pci card) is shown as it is, so leaving the field alone changes nothing.
    """
    blocked = combo.blockSignals(True)
    combo.clear()
    combo.addItems(list(items) + ([value] if value and value not in items else []))
    combo.setCurrentText(value)
    combo.blockSignals(blocked)


def _keep_choice(combo: QComboBox, items: tuple[str, ...], value: str) -> None:
    """Like ``_show_choice``, but the user's pick stays selected where still offered."""
    picked = combo.currentText()
    _show_choice(combo, items, value)
    if picked != value and combo.findText(picked) >= 0:
        blocked = combo.blockSignals(True)
        combo.setCurrentText(picked)
        combo.blockSignals(blocked)


# What a machine's device kinds depend on: host, emulator, arch, machine type, virt type.
KindsKey = tuple[str, str, str, str, str]


def _table(name: str, headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers), objectName=name)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    table.horizontalHeader().setStretchLastSection(True)
    table.setMaximumHeight(130)
    return table


def _int(text: str, what: str) -> tuple[int, str]:
    try:
        return int(text.strip()), ""
    except ValueError:
        return 0, f"{what}: enter a whole number."


class VmEditor(QScrollArea):
    def __init__(self, runner: JobRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("vmEditor")
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.runner = runner
        self.host: HostConnection | None = None
        self.domain: Domain | None = None
        self.staged: list[de.Change] = []
        self._reload = False
        self._loaded_texts: tuple[str, ...] = ()
        # What the fields were filled from, and the saved XML read then: Apply
        # compares it with the saved XML of that moment.
        self._base: DomainSummary | None = None
        self._base_xml: str | None = None
        self._loads = 0
        # The lists offered now, and what each host said per machine type (None: nothing).
        self.choices = Choices()
        self._kinds: dict[KindsKey, DeviceKinds | None] = {}
        self._asking: set[KindsKey] = set()
        self.question: QMessageBox | None = None
        page = QWidget()
        self.setWidget(page)
        layout = QVBoxLayout(page)
        self.live_hint = plain_label(objectName="liveHint", wordWrap=True)
        layout.addWidget(self.live_hint)
        self.groups = GroupsEditor(runner)
        layout.addWidget(self.groups)
        layout.addWidget(self._build_cpu_memory())
        layout.addWidget(self._build_boot_display())
        layout.addWidget(self._build_disks())
        layout.addWidget(self._build_nics())
        layout.addWidget(QLabel("<b>Changes to apply</b>"))
        self.pending_list = QListWidget(objectName="pendingChanges")
        self.pending_list.setMaximumHeight(110)
        layout.addWidget(self.pending_list)
        self.status = plain_label(objectName="editorStatus", wordWrap=True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.revert_button = QPushButton("Revert", objectName="editorRevertButton")
        self.apply_button = QPushButton("Apply", objectName="editorApplyButton")
        self.revert_button.clicked.connect(self.revert)
        self.apply_button.clicked.connect(self.apply)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._validate()

    # ---- construction ---------------------------------------------------------------

    def _build_cpu_memory(self) -> QGroupBox:
        box = QGroupBox("Processor and memory")
        form = QFormLayout(box)
        self.vcpus_edit = QLineEdit(objectName="vcpusEdit")
        self.memory_edit = QLineEdit(objectName="memoryEdit")
        self.max_memory_edit = QLineEdit(objectName="maxMemoryEdit")
        self.cpu_memory_error = _error_label("cpuMemoryError")
        form.addRow("vCPUs:", self.vcpus_edit)
        form.addRow("Memory (MiB):", self.memory_edit)
        form.addRow("Maximum memory (MiB):", self.max_memory_edit)
        form.addRow(self.cpu_memory_error)
        for edit in (self.vcpus_edit, self.memory_edit, self.max_memory_edit):
            edit.textChanged.connect(self._validate)
        return box

    def _build_boot_display(self) -> QGroupBox:
        box = QGroupBox("Boot order and display")
        form = QFormLayout(box)
        self.boot_list = QListWidget(objectName="bootList")
        self.boot_list.setMaximumHeight(95)
        self.boot_list.itemChanged.connect(self._validate)
        up = QPushButton("Up", objectName="bootUpButton")
        down = QPushButton("Down", objectName="bootDownButton")
        up.clicked.connect(lambda: self._move_boot(-1))
        down.clicked.connect(lambda: self._move_boot(1))
        row = QHBoxLayout()
        row.addWidget(self.boot_list, 1)
        column = QVBoxLayout()
        column.addWidget(up)
        column.addWidget(down)
        column.addStretch(1)
        row.addLayout(column)
        form.addRow("Boot from:", row)
        self.graphics_combo = _combo("graphicsCombo", de.GRAPHICS)
        self.video_combo = _combo("videoCombo", de.VIDEO_MODELS)
        for combo in (self.graphics_combo, self.video_combo):
            combo.currentIndexChanged.connect(self._validate)
        form.addRow("Graphics:", self.graphics_combo)
        # libvirt never shows a stored password, so the field only ever sets a new one.
        self.display_password_edit = QLineEdit(objectName="displayPasswordEdit")
        self.display_password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.display_password_edit.setPlaceholderText("Unchanged")
        self.display_password_edit.setToolTip(
            "Asked of anyone who opens this display from another program; VirtStudio's "
            "own console on this host does not need it.")
        self.remove_password_check = QCheckBox("Remove the display password",
                                               objectName="removePasswordCheck")
        self.display_error = _error_label("displayError")
        self.display_password_edit.textChanged.connect(self._password_typed)
        self.remove_password_check.toggled.connect(self._remove_password_toggled)
        form.addRow("Display password:", self.display_password_edit)
        form.addRow("", self.remove_password_check)
        form.addRow("Video:", self.video_combo)
        form.addRow(self.display_error)
        return box

    def _display_kinds(self) -> list[str]:
        """The displays the machine will have: a new graphics kind replaces them all."""
        chosen = self.graphics_combo.currentText()
        shown = [g.kind for g in self.domain.summary.graphics] if self.domain else []
        return shown if shown[:1] == [chosen] else [chosen]

    def _password_typed(self, text: str) -> None:
        if text:
            self.remove_password_check.setChecked(False)
        self._validate()

    def _remove_password_toggled(self, on: bool) -> None:
        if on:
            self.display_password_edit.clear()
        self._validate()

    def _build_disks(self) -> QGroupBox:
        box = QGroupBox("Disks")
        form = QFormLayout(box)
        self.disk_table = _table("diskTable", ["Target", "Bus", "Cache", "Source"])
        form.addRow(self.disk_table)
        self.disk_bus_combo = _combo("diskBusCombo", de.DISK_BUSES)
        self.disk_cache_combo = _combo("diskCacheCombo", de.DISK_CACHES)
        change = QPushButton("Change Bus/Cache", objectName="changeDiskButton")
        change.clicked.connect(self._stage_disk_change)
        remove = QPushButton("Remove Disk", objectName="removeDiskButton")
        remove.clicked.connect(self._stage_disk_removal)
        row = QHBoxLayout()
        for widget in (QLabel("Bus:"), self.disk_bus_combo, QLabel("Cache:"),
                       self.disk_cache_combo, change, remove):
            row.addWidget(widget)
        form.addRow("Selected disk:", row)
        self.resize_edit = QLineEdit(objectName="resizeEdit", placeholderText="e.g. 20G")
        self.resize_button = QPushButton("Grow", objectName="resizeButton")
        self.resize_button.clicked.connect(self._stage_resize)
        self.resize_edit.textChanged.connect(self._validate)
        row = QHBoxLayout()
        row.addWidget(self.resize_edit, 1)
        row.addWidget(self.resize_button)
        form.addRow("Grow selected to:", row)
        self.disk_table.itemSelectionChanged.connect(self._disk_selected)

        self.disk_source_combo = QComboBox(objectName="diskSourceCombo")
        self.disk_size_edit = QLineEdit(objectName="diskSizeEdit", placeholderText="e.g. 10G")
        self.disk_name_edit = QLineEdit(objectName="diskNameEdit")
        self.disk_path_edit = QLineEdit(objectName="diskPathEdit",
                                        placeholderText="/var/lib/libvirt/images/disk.qcow2")
        self.new_disk_bus_combo = _combo("newDiskBusCombo", de.DISK_BUSES)
        self.disk_error = _error_label("diskError")
        self.add_disk_button = QPushButton("Add Disk", objectName="addDiskButton")
        self.add_disk_button.clicked.connect(self._stage_new_disk)
        form.addRow("New disk from:", self.disk_source_combo)
        form.addRow("Size:", self.disk_size_edit)
        form.addRow("Volume name:", self.disk_name_edit)
        form.addRow("Image file:", self.disk_path_edit)
        row = QHBoxLayout()
        row.addWidget(self.new_disk_bus_combo, 1)
        row.addWidget(self.add_disk_button)
        form.addRow("Bus:", row)
        form.addRow(self.disk_error)
        for edit in (self.disk_size_edit, self.disk_name_edit, self.disk_path_edit):
            edit.textChanged.connect(self._validate)
        self.disk_source_combo.currentIndexChanged.connect(self._disk_source_changed)
        self.new_disk_bus_combo.currentIndexChanged.connect(self._validate)
        return box

    def _build_nics(self) -> QGroupBox:
        box = QGroupBox("Network cards")
        form = QFormLayout(box)
        self.nic_table = _table("nicTable", ["Type", "Source", "Model", "MAC"])
        self.nic_table.itemSelectionChanged.connect(self._nic_selected)
        form.addRow(self.nic_table)
        self.nic_kind_combo = _combo("nicKindCombo", ("network", "bridge"))
        self.nic_source_combo = QComboBox(objectName="nicSourceCombo", editable=True)
        self.nic_model_combo = _combo("nicModelCombo", de.NIC_MODELS)
        self.nic_mac_edit = QLineEdit(objectName="nicMacEdit", placeholderText="automatic")
        self.nic_error = _error_label("nicError")
        form.addRow("Connect to:", self.nic_kind_combo)
        form.addRow("Network or bridge:", self.nic_source_combo)
        form.addRow("Model:", self.nic_model_combo)
        form.addRow("MAC address:", self.nic_mac_edit)
        form.addRow(self.nic_error)
        row = QHBoxLayout()
        for label, name, slot in (("Add Card", "addNicButton", self._stage_nic_add),
                                  ("Change Selected", "changeNicButton", self._stage_nic_change),
                                  ("Remove Selected", "removeNicButton", self._stage_nic_removal)):
            button = QPushButton(label, objectName=name)
            button.clicked.connect(slot)
            row.addWidget(button)
        form.addRow(row)
        self.nic_mac_edit.textChanged.connect(self._validate)
        self.nic_source_combo.editTextChanged.connect(self._validate)
        self.nic_kind_combo.currentIndexChanged.connect(self._fill_nic_sources)
        return box

    # ---- loading --------------------------------------------------------------------

    def show_domain(self, host: HostConnection | None, domain: Domain) -> None:
        same = self.domain is not None and self.domain.uuid == domain.uuid
        self.groups.show_domain(host, domain)
        self.host, self.domain = host, domain
        if same and self.dirty and not self._reload:
            self._validate()  # keep what the user is doing; state may have changed
            return
        self._reload = False
        self.staged = []
        self._load(domain)

    @property
    def dirty(self) -> bool:
        """Whether the user has typed or queued anything (even if not valid yet)."""
        return bool(self.changes()) or self._typed_texts() != self._loaded_texts

    def _typed_texts(self) -> tuple[str, ...]:
        return tuple(e.text() for e in (self.vcpus_edit, self.memory_edit,
                                        self.max_memory_edit, self.disk_size_edit,
                                        self.disk_path_edit, self.resize_edit,
                                        self.nic_mac_edit, self.display_password_edit))

    def _load(self, domain: Domain) -> None:
        self._drop_question()  # its answer was about fields no longer shown
        s = self._base = domain.summary
        self._read_base(domain)
        self.vcpus_edit.setText(str(s.vcpus))
        self.memory_edit.setText(str(s.current_memory_kib // 1024))
        self.max_memory_edit.setText(str(s.memory_kib // 1024))
        self.boot_list.blockSignals(True)
        self.boot_list.clear()
        order = list(s.boot) + [d for d in de.BOOT_DEVICES if d not in s.boot]
        for dev in order:
            item = QListWidgetItem(_BOOT_LABELS.get(dev, dev))
            item.setData(Qt.ItemDataRole.UserRole, dev)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if dev in s.boot
                               else Qt.CheckState.Unchecked)
            self.boot_list.addItem(item)
        self.boot_list.blockSignals(False)
        self.choices = self._choices_for(domain)
        self._fill_choices(keep=False)
        self._ask_kinds(domain)  # after filling: the answer may come at once
        self._fill_table(self.disk_table, [(d.target, d.bus, "", d.source or "(empty)")
                                           for d in s.disks])
        self._fill_table(self.nic_table, [(n.kind, n.source, n.model, n.mac) for n in s.nics])
        self.disk_source_combo.blockSignals(True)
        self.disk_source_combo.clear()
        pools = [p for p in (self.host.pools.values() if self.host else []) if p.active]
        for pool in sorted(pools, key=lambda p: (p.name != "default", p.name)):
            self.disk_source_combo.addItem(f"New thin volume in pool {pool.name}", pool)
        self.disk_source_combo.addItem("An existing image file", None)
        self.disk_source_combo.blockSignals(False)
        for edit in (self.disk_size_edit, self.disk_path_edit, self.resize_edit,
                     self.nic_mac_edit, self.display_password_edit):
            edit.clear()  # a password typed for one machine never reaches another
        self.remove_password_check.setChecked(False)
        self._fill_nic_sources()
        self._disk_source_changed()
        self._loaded_texts = self._typed_texts()
        self._validate()

    def _kinds_key(self, domain: Domain) -> KindsKey | None:
        if self.host is None:
            return None
        s = domain.summary
        return (self.host.uri, s.emulator, s.arch, s.machine, s.domain_type)

    def _choices_for(self, domain: Domain) -> Choices:
        """The lists for ``domain``: known ones, else the usual ones until the host says."""
        key = self._kinds_key(domain)
        return choices(self._kinds[key]) if key in self._kinds else Choices()

    def _ask_kinds(self, domain: Domain) -> None:
        """Ask the host what ``domain`` takes, unless known or asked already."""
        key = self._kinds_key(domain)
        if key is None or key in self._kinds or key in self._asking or self.host is None:
            return
        self._asking.add(key)
        future = self.host.call(read_device_kinds, *key[1:])
        # A future already done calls back right here, on the GUI thread.
        when_done(future, lambda done: self._kinds_read(key, done), self)

    def _kinds_read(self, key: KindsKey, future: Future[Any]) -> None:
        self._asking.discard(key)
        # An error (connection gone) is not remembered: the next load asks again.
        if future.exception() is not None:
            return
        self._kinds[key] = future.result()
        if self.domain is None or self._kinds_key(self.domain) != key:
            return
        found = choices(self._kinds[key])
        if found != self.choices:
            self.choices = found
            self._fill_choices(keep=True)
            self._validate()

    def _fill_choices(self, keep: bool) -> None:
        """Fill the kind lists from ``self.choices``, each with the machine's own kind.

        With ``keep`` (the host's lists arrived late) a kind the user already
        picked stays picked where the new list still offers it.
        """
        s = self._base or (self.domain.summary if self.domain else None)
        show = _keep_choice if keep else _show_choice
        c = self.choices
        graphics = s.graphics[0].kind if s and s.graphics else "none"
        show(self.graphics_combo, c.graphics, graphics)
        show(self.video_combo, c.video, (s.video if s else "") or "none")
        show(self.new_disk_bus_combo, c.buses_for("disk"), "")
        row = self._selected_row(self.disk_table)
        if s is not None and row is not None and row < len(s.disks):
            disk = s.disks[row]
            show(self.disk_bus_combo, c.buses_for(disk.device), disk.bus)
            show(self.disk_cache_combo, c.disk_caches, disk.cache or "default")
        elif not keep:
            _show_choice(self.disk_bus_combo, c.buses_for("disk"), "")
            _show_choice(self.disk_cache_combo, c.disk_caches, "")
        if not keep:  # a card kind shown for another machine is not this one's
            _show_choice(self.nic_model_combo, c.nic_models, "")

    def _read_base(self, domain: Domain) -> None:
        """Remember the saved XML the fields now stand for (read on the host's worker)."""
        self._loads += 1
        self._base_xml = None
        if self.host is None:
            return
        loads, uuid = self._loads, domain.uuid
        future = self.host.call(read_inactive_xml, uuid)

        def read(done: Future[Any]) -> None:
            if loads == self._loads and done.exception() is None:
                self._base_xml = done.result()

        when_done(future, read, self)

    @staticmethod
    def _fill_table(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(value))

    def _fill_nic_sources(self, *_: object) -> None:
        self.nic_source_combo.clear()
        if self.nic_kind_combo.currentText() == "network" and self.host is not None:
            self.nic_source_combo.addItems(sorted(n.name for n in self.host.networks.values()))

    def _disk_source_changed(self, *_: object) -> None:
        pool = self.disk_source_combo.currentData()
        for widget in (self.disk_size_edit, self.disk_name_edit):
            widget.setEnabled(pool is not None)
        self.disk_path_edit.setEnabled(pool is None)
        if pool is not None and self.domain is not None:
            self.disk_name_edit.setText(f"{self.domain.name}-{self._next_target()}.qcow2")
        self._validate()

    # ---- what the fields say ------------------------------------------------------

    def _used_targets(self) -> list[str]:
        used = [d.target for d in self.domain.summary.disks] if self.domain else []
        return used + [c.target for c in self.staged if isinstance(c, de.AddDisk)]

    def _next_target(self) -> str:
        return de.next_target(self._used_targets(), self.new_disk_bus_combo.currentText())

    def _boot_order(self) -> tuple[str, ...]:
        items = [self.boot_list.item(i) for i in range(self.boot_list.count())]
        return tuple(i.data(Qt.ItemDataRole.UserRole) for i in items
                     if i.checkState() == Qt.CheckState.Checked)

    def _field_changes(self) -> tuple[list[de.Change], str]:
        """Changes the plain fields ask for, and the first problem with them."""
        if self.domain is None:
            return [], ""
        # Against what the fields were filled from: a field the user left alone never
        # turns into a change, even when the machine changed elsewhere meanwhile.
        s = self._base or self.domain.summary
        vcpus, bad_cpus = _int(self.vcpus_edit.text(), "vCPUs")
        memory, bad_mem = _int(self.memory_edit.text(), "Memory")
        maximum, bad_max = _int(self.max_memory_edit.text(), "Maximum memory")
        problem = (bad_cpus or de.check_vcpus(vcpus) or bad_mem or bad_max
                   or de.check_memory(memory, maximum))
        changes: list[de.Change] = []
        if not problem:
            if vcpus != s.vcpus:
                changes.append(de.SetVcpus(vcpus))
            if (memory, maximum) != (s.current_memory_kib // 1024, s.memory_kib // 1024):
                changes.append(de.SetMemory(memory, maximum))
        boot = self._boot_order()
        if boot != s.boot and self.boot_list.count():
            changes.append(de.SetBootOrder(boot))
        graphics = self.graphics_combo.currentText()
        if graphics != (s.graphics[0].kind if s.graphics else "none"):
            changes.append(de.SetGraphics(graphics))
        password = self.display_password_edit.text()
        if password and not de.check_display_password(self._display_kinds(), password):
            changes.append(de.SetDisplayPassword(password))
        elif self.remove_password_check.isChecked() and s.graphics:
            changes.append(de.SetDisplayPassword(""))
        video = self.video_combo.currentText()
        if video != (s.video or "none"):
            changes.append(de.SetVideo(video))
        return changes, problem

    def _typed_disk(self) -> tuple[de.AddDisk | None, str]:
        """The disk the add-disk fields describe, or why they do not describe one."""
        pool: StoragePool | None = self.disk_source_combo.currentData()
        bus = self.new_disk_bus_combo.currentText()
        if pool is None:
            path = self.disk_path_edit.text().strip()
            if not path:
                return None, ""
            if not path.startswith("/"):
                return None, "Give the image file's full path, starting with /."
            fmt = "qcow2" if path.endswith(".qcow2") else "raw"
            return de.AddDisk(self._next_target(), bus, path=path, fmt=fmt), ""
        text = self.disk_size_edit.text().strip()
        if not text:
            return None, ""
        try:
            size = parse_size(text)
        except VirtStudioError as exc:
            return None, exc.message
        name = self.disk_name_edit.text().strip()
        problem = de.check_new_disk(size, pool, name)
        if problem:
            return None, problem
        return de.AddDisk(self._next_target(), bus, pool_uuid=pool.uuid,
                          new_volume=VolumeSpec(name, size)), ""

    def changes(self) -> list[de.Change]:
        fields, _ = self._field_changes()
        disk, _ = self._typed_disk()
        return fields + self.staged + ([disk] if disk is not None else [])

    def _validate(self, *_: object) -> None:
        fields, problem = self._field_changes()
        disk, disk_problem = self._typed_disk()
        resize_problem = self._resize_problem()
        mac_problem = de.check_mac(self.nic_mac_edit.text())
        display_problem = de.check_display_password(self._display_kinds(),
                                                    self.display_password_edit.text())
        self.display_error.setText(display_problem)
        self.cpu_memory_error.setText(problem)
        self.disk_error.setText(disk_problem or resize_problem)
        self.nic_error.setText(mac_problem)
        self.add_disk_button.setEnabled(disk is not None)
        self.resize_button.setEnabled(bool(self.resize_edit.text().strip())
                                      and not resize_problem)
        changes = fields + self.staged + ([disk] if disk is not None else [])
        self.pending_list.clear()
        self.pending_list.addItems([c.describe() for c in changes])
        blocked = problem or disk_problem or resize_problem or mac_problem or display_problem
        can_apply = (self.runner is not None and self.host is not None
                     and self.domain is not None and self.domain.persistent)
        self.apply_button.setEnabled(bool(changes) and not blocked and can_apply)
        self.revert_button.setEnabled(bool(changes)
                                      or self._typed_texts() != self._loaded_texts)
        running = self.domain is not None and self.domain.state.is_active
        self.live_hint.setVisible(running)
        self.live_hint.setText("The machine is running: disks and network cards are plugged "
                               "in live and memory changes live where the guest allows; "
                               "everything else is saved and applies at next boot.")
        if self.domain is not None and not self.domain.persistent:
            self.status.setText(f"{self.domain.name} is transient: it has no saved "
                                "configuration to change.")

    def _resize_problem(self) -> str:
        text = self.resize_edit.text().strip()
        if not text:
            return ""
        if self._selected_row(self.disk_table) is None:
            return _NO_SELECTION
        try:
            parse_size(text)
        except VirtStudioError as exc:
            return exc.message
        return ""

    # ---- staged actions -------------------------------------------------------------

    @staticmethod
    def _selected_row(table: QTableWidget) -> int | None:
        rows = table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _stage(self, change: de.Change) -> None:
        self.staged.append(change)
        self._validate()

    def _disk_selected(self) -> None:
        row = self._selected_row(self.disk_table)
        if row is not None and self.domain is not None:
            disk = self.domain.summary.disks[row]
            _show_choice(self.disk_bus_combo, self.choices.buses_for(disk.device), disk.bus)
            _show_choice(self.disk_cache_combo, self.choices.disk_caches,
                         disk.cache or "default")
        self._validate()

    def _selected_disk_target(self) -> str | None:
        row = self._selected_row(self.disk_table)
        if row is None or self.domain is None:
            self.disk_error.setText(_NO_SELECTION)
            return None
        return self.domain.summary.disks[row].target

    def _stage_disk_change(self) -> None:
        target = self._selected_disk_target()
        if target is None or self.domain is None:
            return
        disk = next(d for d in self.domain.summary.disks if d.target == target)
        # Only what the user changed: a bus change keeps the cache mode and back.
        bus = self.disk_bus_combo.currentText()
        cache = self.disk_cache_combo.currentText()
        change = de.ChangeDisk(target, bus if bus != disk.bus else None,
                               cache if cache != (disk.cache or "default") else None)
        if change.bus is None and change.cache is None:
            self.disk_error.setText(f"{target} already has that bus and cache mode.")
            return
        self._stage(change)

    def _stage_disk_removal(self) -> None:
        target = self._selected_disk_target()
        if target is not None:
            self._stage(de.RemoveDisk(target))

    def _stage_resize(self) -> None:
        target = self._selected_disk_target()
        if target is not None and not self._resize_problem():
            self._stage(de.ResizeDisk(target, parse_size(self.resize_edit.text())))
            self.resize_edit.clear()

    def _stage_new_disk(self) -> None:
        disk, _ = self._typed_disk()
        if disk is not None:
            self.staged.append(disk)
            self.disk_size_edit.clear()
            self.disk_path_edit.clear()
            self._disk_source_changed()

    def _nic_selected(self) -> None:
        row = self._selected_row(self.nic_table)
        if row is None or self.domain is None:
            return
        nic = self.domain.summary.nics[row]
        if nic.kind in ("network", "bridge"):
            self.nic_kind_combo.setCurrentText(nic.kind)
        self.nic_source_combo.setCurrentText(nic.source)
        _show_choice(self.nic_model_combo, self.choices.nic_models, nic.model or "virtio")
        self.nic_mac_edit.setText(nic.mac)

    def _typed_nic(self, old_mac: str = "") -> de.SetNic | None:
        source = self.nic_source_combo.currentText().strip()
        if not source:
            self.nic_error.setText("Choose a network or type a bridge name.")
            return None
        if de.check_mac(self.nic_mac_edit.text()):
            return None
        return de.SetNic(self.nic_kind_combo.currentText(), source,
                         self.nic_model_combo.currentText(),
                         self.nic_mac_edit.text().strip().lower(), old_mac)

    def _selected_mac(self) -> str | None:
        row = self._selected_row(self.nic_table)
        if row is None or self.domain is None:
            self.nic_error.setText(_NO_SELECTION)
            return None
        return self.domain.summary.nics[row].mac

    def _stage_nic_add(self) -> None:
        nic = self._typed_nic()
        if nic is not None:
            self._stage(nic)

    def _stage_nic_change(self) -> None:
        mac = self._selected_mac()
        nic = self._typed_nic(mac) if mac else None
        if nic is not None:
            self._stage(nic)

    def _stage_nic_removal(self) -> None:
        mac = self._selected_mac()
        if mac:
            self._stage(de.RemoveNic(mac))

    def _move_boot(self, step: int) -> None:
        row = self.boot_list.currentRow()
        if row < 0 or not 0 <= row + step < self.boot_list.count():
            return
        item = self.boot_list.takeItem(row)
        self.boot_list.insertItem(row + step, item)
        self.boot_list.setCurrentRow(row + step)
        self._validate()

    # ---- applying ---------------------------------------------------------------------

    def revert(self) -> None:
        self.staged = []
        if self.domain is not None:
            self._load(self.domain)
        self.status.clear()

    def apply(self) -> None:
        """Read the saved XML again, then apply (or ask first when it changed meanwhile)."""
        if not self.apply_button.isEnabled() or self.runner is None:
            return
        assert self.host is not None and self.domain is not None
        changes, uuid = self.changes(), self.domain.uuid
        self.apply_button.setEnabled(False)
        self.status.setText("Checking the saved configuration…")
        future = self.host.call(read_inactive_xml, uuid)
        when_done(future, lambda f: self._checked(uuid, changes, f), self)

    def _checked(self, uuid: str, changes: list[de.Change], future: Future[Any]) -> None:
        if self.domain is None or self.domain.uuid != uuid:
            return
        exc = future.exception()
        if exc is not None:
            self.status.setText("Not applied: the configuration could not be read: "
                                f"{describe(exc).message}")
            self._validate()
            return
        current = future.result()
        # Without a remembered base (it could not be read) there is nothing to compare.
        found = review(self._base_xml or current, current, changes)
        if not found.changed:
            self._submit(changes, current)
            return
        self._validate()
        self.status.setText("The saved configuration changed meanwhile: nothing applied yet.")
        mine = "\n".join(f"  • {c.describe()}" for c in changes)
        self._drop_question()
        self.question = confirm_box(
            self, f"{self.domain.name} changed meanwhile",
            f"{found.text(self.domain.name)}\n\nApplying writes only your changes on top "
            f"of the configuration as it is now; everything else stays as they left it:"
            f"\n{mine}",
            "Apply my changes on top", lambda: self._confirmed(uuid, changes, current),
            name="changedMeanwhileBox")

    def _confirmed(self, uuid: str, changes: list[de.Change], current: str) -> None:
        if self.domain is not None and self.domain.uuid == uuid:
            self._submit(changes, current)

    def _drop_question(self) -> None:
        """Close an older question: its answer would apply to a configuration now stale."""
        if self.question is not None:
            self.question.close()
            self.question.deleteLater()
            self.question = None

    def _submit(self, changes: list[de.Change], saved: str) -> None:
        """Apply ``changes``, provided the saved XML is still ``saved`` when the job runs."""
        if self.runner is None or self.host is None or self.domain is None:
            return
        outcomes: list[de.Outcome] = []
        try:
            job = de.apply_changes(self.runner, self.host, self.domain.uuid, self.domain.name,
                                   changes, outcomes.append, saved=saved)
        except VirtStudioError as exc:
            self.status.setText(exc.message)
            self._validate()
            return
        self.apply_button.setEnabled(False)
        self.status.setText("Applying…")
        when_finished(job, lambda j: self._applied(j, outcomes), self)

    def _applied(self, job: Job, outcomes: list[de.Outcome]) -> None:
        if job.state is not JobState.DONE or not outcomes:
            message = job.error.message if job.error is not None else job.state.value
            self.status.setText(f"Not applied: {message}")
            self._validate()
            return
        outcome = outcomes[0]
        now = [text for text, when in outcome.lines if when == de.NOW]
        later = outcome.next_boot
        parts = []
        if now:
            parts.append("Applied now: " + "; ".join(now) + ".")
        if later:
            parts.append("Applies at next boot (saved in the configuration): "
                         + "; ".join(later) + ".")
        if not now and not later:
            parts.append("Saved.")
        self.staged = []
        self._reload = True
        if self.domain is not None:
            self._load(self.domain)
        self.status.setText(" ".join(parts))
