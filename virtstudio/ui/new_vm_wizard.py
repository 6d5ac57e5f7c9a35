"""New VM wizard: every page checks itself as the user types; creation is a job.

What the host can run is read on the host's worker (``machines.host_caps``);
pools, networks and existing names come from the connection's entities.  The
checks themselves are ``machines.new_vm.validate``: this module only fills
widgets, reads them into a VmSpec and shows each field's message.  An imported
or existing image's backing chain is read on the host's worker too, in the
format the user chose (``machines.import_image``); Next stays off until it is
shown and every backing file outside the pools has been named.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QLineEdit, QMainWindow, QWidget, QWizard

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import UserError, VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.core.units import format_bytes
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import HostFacts, discover
from virtstudio.machines.import_image import (
    chain_problem,
    import_site,
    review_import,
    suggested_format,
)
from virtstudio.machines.new_vm import (
    DiskChoice,
    Field,
    InstallSource,
    NetworkChoice,
    VmSpec,
    disk_summary,
    parse_disk_size,
    parse_memory_mib,
    suggest_name,
    validate,
)
from virtstudio.machines.os_variants import DEFAULT_VARIANT, OsVariant, available_variants
from virtstudio.storage.backing_chains import ChainReview
from virtstudio.ui.bridge import relay
from virtstudio.ui.host_model import HostRole
from virtstudio.ui.new_vm_pages import (
    DevicesPage,
    ImageRows,
    MachinePage,
    SourcePage,
    StoragePage,
)
from virtstudio.ui.plain_text import html

_DOMAIN_TYPE_LABELS = {
    "kvm": "KVM: hardware acceleration",
    "qemu": "QEMU: emulation (TCG), slower, runs any architecture",
    "test": "Test driver",
}
_SOURCE_PHRASES = {
    InstallSource.ISO: "installs from an ISO image",
    InstallSource.IMPORT: "runs an imported disk image",
    InstallSource.PXE: "boots from the network",
    InstallSource.KERNEL: "boots a kernel directly",
}
_PICK_VOLUME = "…or pick a volume in a pool"


class NewVmWizard(QWizard):
    """Emits ``created(host, name, job)`` once the creation job is queued."""

    created = Signal(object, str, object)

    def __init__(self, hosts: list[HostConnection], runner: JobRunner,
                 current: HostConnection | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("newVmWizard")
        self.setWindowTitle("New Virtual Machine")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Create")
        self.runner = runner
        self.hosts = hosts
        self.host: HostConnection | None = None
        self.facts: HostFacts | None = None
        self.problems: dict[Field, str] = {}
        self.job: Job | None = None
        self._filling = True
        self._name_typed = False
        self._watched: set[str] = set()
        self._facts_arrived = CoreSignal("host facts")
        relay(self._facts_arrived, self._on_facts, self)
        self.source_page = SourcePage(self._field_ok)
        self.machine_page = MachinePage(self._field_ok)
        self.storage_page = StoragePage(self._field_ok)
        # The image file that becomes the disk: what was read (host, rows, path, format),
        # the answer, and the rows it is shown in.
        self._image_key: tuple[str, str, str, str] | None = None
        self.image_review: ChainReview | str | None = None
        self._image_shown_in: ImageRows = self.source_page.import_image
        self._formats_picked: set[str] = set()  # the rows whose format the user picked
        self._image_read = CoreSignal("image chain read")
        relay(self._image_read, self._on_image_chain, self)
        self.devices_page = DevicesPage(self._field_ok)
        self.pages = (self.source_page, self.machine_page, self.storage_page, self.devices_page)
        for page in self.pages:
            self.addPage(page)
        self.resize(640, 600)

        self.variants = available_variants()
        for variant in self.variants:
            self.source_page.variant_combo.addItem(variant.label, variant.id)
        for kind, label in (("vnc", "VNC (VirtStudio's own console)"), ("spice", "SPICE")):
            self.devices_page.graphics_combo.addItem(label, kind)
        for host in hosts:
            self.source_page.host_combo.addItem(host.name, host.uri)
        self._connect_widgets()
        self._filling = False
        start = hosts.index(current) if current in hosts else 0
        self.source_page.host_combo.setCurrentIndex(start)
        self._load_host()

    # ---- wiring --------------------------------------------------------------------------

    def _connect_widgets(self) -> None:
        src, mach, disk, dev = self.pages
        src.host_combo.currentIndexChanged.connect(lambda _i: self._load_host())
        src.name_edit.textEdited.connect(self._name_edited)
        src.variant_combo.currentIndexChanged.connect(lambda _i: self._apply_variant())
        mach.arch_combo.currentIndexChanged.connect(lambda _i: self._fill_arch())
        for edit in (src.name_edit, src.iso_edit, src.import_edit, src.kernel_edit,
                     src.initrd_edit, src.cmdline_edit, mach.memory_edit, disk.size_edit,
                     disk.disk_edit):
            edit.textChanged.connect(self._revalidate)
        for combo in (mach.machine_combo, mach.domain_type_combo, mach.firmware_combo,
                      disk.pool_combo, dev.network_combo, dev.graphics_combo):
            combo.currentIndexChanged.connect(self._revalidate)
        dev.bridge_combo.currentTextChanged.connect(self._revalidate)
        mach.vcpus_spin.valueChanged.connect(self._revalidate)
        dev.customize_check.toggled.connect(self._revalidate)
        for rows, edit in ((src.import_image, src.import_edit),
                           (disk.existing_image, disk.disk_edit)):
            edit.textChanged.connect(lambda path, r=rows: self._suggest_format(r, path))
            rows.format_combo.activated.connect(
                lambda _i, r=rows: self._formats_picked.add(r.prefix))
            rows.format_combo.currentIndexChanged.connect(self._revalidate)
            rows.file_confirm.changed.connect(self._revalidate)
        for group in (src.source_group, disk.disk_group, dev.net_group):
            group.buttonToggled.connect(lambda _b, on: on and self._revalidate())
        for combo, edit in ((src.iso_volumes, src.iso_edit), (src.import_volumes, src.import_edit),
                            (disk.disk_volumes, disk.disk_edit)):
            combo.currentIndexChanged.connect(
                lambda _i, c=combo, e=edit: self._volume_picked(c, e))
        for button, edit, what in ((src.iso_browse, src.iso_edit, "ISO images (*.iso);;All (*)"),
                                   (src.import_browse, src.import_edit, "Disk images (*)"),
                                   (disk.disk_browse, disk.disk_edit, "Disk images (*)")):
            button.clicked.connect(lambda _=False, e=edit, f=what: self._browse(e, f))

    def _name_edited(self, _text: str) -> None:
        self._name_typed = True

    def _suggest_format(self, rows: ImageRows, path: str) -> None:
        """Preselect the format the file name suggests, until the user picks one."""
        if rows.prefix in self._formats_picked:
            return
        combo = rows.format_combo
        combo.setCurrentIndex(combo.findData(suggested_format(path.strip())) if path else -1)

    def _volume_picked(self, combo: QComboBox, edit: QLineEdit) -> None:
        path = combo.currentData()
        if path and not self._filling:
            edit.setText(path)

    def _browse(self, edit: QLineEdit, filters: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", edit.text() or "/", filters)
        if path:
            edit.setText(path)

    # ---- host --------------------------------------------------------------------------

    def _load_host(self) -> None:
        index = self.source_page.host_combo.currentIndex()
        if not 0 <= index < len(self.hosts):
            self.source_page.host_status.setText("Connect to a host first.")
            return
        host = self.hosts[index]
        self.host, self.facts = host, None
        self.source_page.host_status.setText(f"Reading what {host.name} can run…")
        self._filling = True
        self._fill_host_lists(host)
        self._filling = False
        self._apply_variant()
        if host.uri not in self._watched:
            # A machine, volume or network made elsewhere meanwhile changes what is valid.
            self._watched.add(host.uri)
            for signal in (host.domains_added, host.domains_removed, host.pools_added,
                           host.pools_changed, host.networks_added, host.networks_changed):
                relay(signal, self._host_changed, self)
        uri = host.uri
        future = host.call(discover)
        future.add_done_callback(lambda f: self._facts_arrived.emit(uri, f))

    def _on_facts(self, uri: str, future: Future[HostFacts]) -> None:
        if self.host is None or uri != self.host.uri:
            return  # the user picked another host meanwhile
        try:
            facts = future.result()
        except Exception as exc:
            self.source_page.host_status.setText(
                f"Could not read what {self.host.name} can run: {describe(exc).message}")
            return
        self.facts = facts
        self.source_page.host_status.setText(" ".join(facts.notes))
        self._filling = True
        arch_combo = self.machine_page.arch_combo
        arch_combo.clear()
        for arch in facts.arches:
            arch_combo.addItem(arch.arch, arch.arch)
        default = facts.default_arch
        if default is not None:
            arch_combo.setCurrentIndex(arch_combo.findData(default.arch))
        bridges = self.devices_page.bridge_combo
        bridges.clear()
        bridges.addItems(list(facts.bridges))
        self._filling = False
        self._fill_arch()

    def _fill_host_lists(self, host: HostConnection) -> None:
        """Offer the host's pools, volumes and networks, keeping what was chosen if it is left."""
        pools = sorted((p for p in list(host.pools.values()) if p.active),
                       key=lambda p: (p.name != "default", -p.available))
        _refill(self.storage_page.pool_combo,
                [(f"{p.name} ({format_bytes(p.available)} free)", p.name) for p in pools])
        volumes = [(p, v) for p in pools for v in p.volumes]
        for combo, want_iso in ((self.source_page.iso_volumes, True),
                                (self.source_page.import_volumes, False),
                                (self.storage_page.disk_volumes, False)):
            _refill(combo, [(_PICK_VOLUME, None)] + [
                (f"{p.name}/{v.name} ({format_bytes(v.capacity)})", v.path)
                for p, v in volumes if (v.format == "iso" or v.name.endswith(".iso")) == want_iso])
        networks = sorted(list(host.networks.values()),
                          key=lambda n: (n.name != "default", not n.active, n.name))
        _refill(self.devices_page.network_combo,
                [(n.name + ("" if n.active else " (not running)"), n.name) for n in networks])
        if not networks:
            self.devices_page.net_buttons[NetworkChoice.NONE].setChecked(True)
        local = not uri_mod.parse(host.uri).is_remote
        for button in (self.source_page.iso_browse, self.source_page.import_browse,
                       self.storage_page.disk_browse):
            button.setEnabled(local)

    def _host_changed(self, conn: HostConnection, *_: object) -> None:
        if conn is not self.host:
            return
        self._filling = True
        self._fill_host_lists(conn)
        self._filling = False
        self._revalidate()

    def _fill_arch(self) -> None:
        if self._filling or self.facts is None:
            return
        arch = self.facts.arch(self.machine_page.arch_combo.currentData() or "")
        if arch is None:
            return
        variant = self._variant()
        self._filling = True
        machines = self.machine_page.machine_combo
        machines.clear()
        machines.addItems(list(arch.machines))
        preferred = variant.machine if arch.arch in ("x86_64", "i686") else "virt"
        if preferred in arch.machines:
            machines.setCurrentText(preferred)
        kinds = self.machine_page.domain_type_combo
        kinds.clear()
        for kind in arch.domain_types:
            kinds.addItem(_DOMAIN_TYPE_LABELS.get(kind, kind), kind)
        firmware = self.machine_page.firmware_combo
        firmware.clear()
        firmware.addItem("BIOS", "bios")
        firmware.addItem("UEFI" if arch.uefi else "UEFI (not installed on this host)", "uefi")
        self._filling = False
        self._revalidate()

    def _variant(self) -> OsVariant:
        variant_id = self.source_page.variant_combo.currentData()
        return next((v for v in self.variants if v.id == variant_id), DEFAULT_VARIANT)

    def _apply_variant(self) -> None:
        """Offer the chosen operating system's defaults."""
        variant = self._variant()
        self._filling = True
        self.machine_page.memory_edit.setText(str(variant.memory_mib))
        self.machine_page.vcpus_spin.setValue(variant.vcpus)
        self.storage_page.size_edit.setText(str(variant.disk_gib))
        if not self._name_typed and self.host is not None:
            taken = {d.name for d in list(self.host.domains.values())}
            self.source_page.name_edit.setText(suggest_name(variant.id, taken))
        self._filling = False
        self._fill_arch()
        self._revalidate()

    # ---- reading and checking ------------------------------------------------------------

    def _checked(self, buttons: dict[Any, Any]) -> Any:
        return next(key for key, button in buttons.items() if button.isChecked())

    def spec(self) -> tuple[VmSpec, dict[Field, str]]:
        """The spec the widgets describe, and what could not even be read from them."""
        src, mach, disk, dev = self.pages
        unreadable: dict[Field, str] = {}
        try:
            memory = parse_memory_mib(mach.memory_edit.text())
        except VirtStudioError as exc:
            memory, unreadable[Field.MEMORY] = 0, exc.message
        try:
            size = parse_disk_size(disk.size_edit.text())
        except VirtStudioError as exc:
            size, unreadable[Field.DISK_SIZE] = 0, exc.message
        network = self._checked(dev.net_buttons)
        source = self._checked(src.source_buttons)
        spec = VmSpec(
            name=src.name_edit.text().strip(), source=source,
            iso=src.iso_edit.text().strip(), import_path=src.import_edit.text().strip(),
            import_format=src.import_format.currentData() or "",
            kernel=src.kernel_edit.text().strip(), initrd=src.initrd_edit.text().strip(),
            cmdline=src.cmdline_edit.text().strip(), os_variant=self._variant(),
            arch=mach.arch_combo.currentData() or "", machine=mach.machine_combo.currentText(),
            domain_type=mach.domain_type_combo.currentData() or "",
            firmware=mach.firmware_combo.currentData() or "bios",
            vcpus=mach.vcpus_spin.value(), memory_mib=memory,
            disk=self._checked(disk.disk_buttons), disk_pool=disk.pool_combo.currentData() or "",
            disk_size=size, disk_path=disk.disk_edit.text().strip(),
            disk_format=disk.existing_image.format_combo.currentData() or "",
            network=network,
            network_source=(dev.network_combo.currentData() or "" if network is
                            NetworkChoice.VIRTUAL else dev.bridge_combo.currentText().strip()),
            graphics=dev.graphics_combo.currentData() or "",
            customize=dev.customize_check.isChecked(),
        )
        if source is not InstallSource.IMPORT and spec.disk is not DiskChoice.NEW:
            unreadable.pop(Field.DISK_SIZE, None)
        return spec, unreadable

    def _field_ok(self, field: Field) -> bool:
        return self.facts is not None and field not in self.problems

    def _revalidate(self, *_: object) -> None:
        if self._filling or self.host is None:
            return
        spec, unreadable = self.spec()
        self._show_choices(spec)
        if self.facts is None:
            self.problems = {}
        else:
            self.problems = validate(spec, host_context(self.host, self.facts))
            self.problems.update(unreadable)
            self._check_image_chain(spec)
        for page in self.pages:
            for field, label in page.error_labels.items():
                text = self.problems.get(field, "")
                label.setText(text)
                label.setVisible(bool(text))
            page.completeChanged.emit()
        self.storage_page.volume_label.setText(spec.volume_name if spec.name else "")
        self.devices_page.summary.setText(self._summary(spec))

    # ---- an imported or existing image's backing chain -----------------------------------

    def _image_rows(self, spec: VmSpec) -> tuple[ImageRows, Field, Field, Field] | None:
        """The rows showing the image the disk will be, and their path, format, chain fields."""
        if spec.source is InstallSource.IMPORT:
            return (self.source_page.import_image, Field.IMPORT, Field.IMPORT_FORMAT,
                    Field.IMPORT_CHAIN)
        if spec.disk is DiskChoice.EXISTING:
            return (self.storage_page.existing_image, Field.DISK_PATH, Field.DISK_FORMAT,
                    Field.DISK_CHAIN)
        return None

    def _check_image_chain(self, spec: VmSpec) -> None:
        """Read the chain of the image as chosen (once per choice) and say what it still needs."""
        found = self._image_rows(spec)
        image = spec.existing_image
        if found is None or image is None or self.host is None:
            self._forget_image_chain()
            return
        rows, path_field, format_field, chain_field = found
        if path_field in self.problems or format_field in self.problems:
            self._forget_image_chain()  # nothing to read
            return
        key = (self.host.uri, rows.prefix, image[0], image[1])
        if key != self._image_key:
            self._read_image_chain(self.host, rows, key)
        problem = chain_problem(self.image_review, self.confirmed_image())
        if problem:
            self.problems[chain_field] = problem

    def _forget_image_chain(self) -> None:
        if self._image_key is None:
            return
        self._image_key = self.image_review = None
        for rows in (self.source_page.import_image, self.storage_page.existing_image):
            rows.chain_label.clear()
            rows.show_confirm_fields(())

    def _read_image_chain(self, host: HostConnection, rows: ImageRows,
                          key: tuple[str, str, str, str]) -> None:
        self._forget_image_chain()
        self._image_key, self._image_shown_in = key, rows
        self._show_image_chain()
        site = import_site(host.uri, list(host.pools.values()))
        future = host.call(review_import, key[2], key[3], site)
        future.add_done_callback(lambda f: self._image_read.emit(key, f))

    def _on_image_chain(self, key: tuple[str, str, str, str],
                        future: Future[ChainReview]) -> None:
        if key != self._image_key:
            return  # another image or format was chosen meanwhile
        try:
            self.image_review = future.result()
        except Exception as exc:
            self.image_review = describe(exc).message
        self._show_image_chain()
        self._revalidate()

    def _show_image_chain(self) -> None:
        rows, review = self._image_shown_in, self.image_review
        if isinstance(review, ChainReview):
            rows.chain_label.setText("\n".join(f"• {line}" for line in review.lines()))
        else:  # the field's message says it is being read, or why it could not be
            rows.chain_label.clear()
        outside = review.outside if isinstance(review, ChainReview) else ()
        rows.show_confirm_fields(outside)

    def confirmed_image(self) -> set[str]:
        """The backing files outside the pools whose names the user typed."""
        return self._image_shown_in.file_confirm.confirmed()

    def _show_choices(self, spec: VmSpec) -> None:
        src, disk = self.source_page, self.storage_page
        src.source_stack.setCurrentWidget(src.source_pages[spec.source])
        imported = spec.source is InstallSource.IMPORT
        disk.imported_note.setVisible(imported)
        for button in disk.disk_buttons.values():
            button.setVisible(not imported)
        disk.new_box.setVisible(not imported and spec.disk is DiskChoice.NEW)
        disk.existing_box.setVisible(not imported and spec.disk is DiskChoice.EXISTING)

    def _summary(self, spec: VmSpec) -> str:
        if self.facts is None or self.host is None:
            return ""
        net = ("no network" if spec.network is NetworkChoice.NONE
               else f"{spec.network.value} network {spec.network_source}")
        start = ("defined only, not started" if spec.customize else "started at once")
        disk = disk_summary(spec)
        # Host names, machine types and sources come from the host: escaped, all of it.
        rest = (f" on {self.host.name}: {_SOURCE_PHRASES[spec.source]}; "
                f"{spec.arch} {spec.machine} ({spec.domain_type}, {spec.firmware.upper()}), "
                f"{spec.vcpus} vCPU, {spec.memory_mib} MiB; {disk[0].lower()}{disk[1:]}; "
                f"{net}; {spec.graphics.upper()} display; {start}.")
        return f"<b>{html(spec.name)}</b>{html(rest)}"

    # ---- creating --------------------------------------------------------------------------

    def accept(self) -> None:
        self._revalidate()
        if self.host is None or self.facts is None or self.problems:
            return
        spec, _ = self.spec()
        review = self.image_review if isinstance(self.image_review, ChainReview) else None
        try:
            self.job = create_vm(self.runner, self.host, spec,
                                 host_context(self.host, self.facts),
                                 image_chain=review, confirmed=self.confirmed_image())
        except VirtStudioError as exc:
            self.source_page.host_status.setText(exc.message)
            return
        self.created.emit(self.host, spec.name, self.job)
        super().accept()


def _refill(combo: QComboBox, items: list[tuple[str, object]]) -> None:
    """Replace ``combo``'s entries, keeping the chosen one where it is still offered."""
    chosen = combo.currentData()
    combo.clear()
    for label, data in items:
        combo.addItem(label, data)
    index = combo.findData(chosen) if chosen is not None else -1
    if index >= 0:
        combo.setCurrentIndex(index)


def follow_new_machine(window: Any, host: HostConnection, name: str, job: Job,
                       timeout: float = 60.0) -> QTimer:
    """Select the new machine in the window's list once it shows up there."""
    timer = QTimer(window)
    timer.setInterval(200)
    deadline = time.monotonic() + timeout

    def tick() -> None:
        waiting = (job.state not in (JobState.FAILED, JobState.CANCELLED)
                   and time.monotonic() < deadline)
        if waiting and (host.find_domain_by_name(name) is None
                        or not window.select_domain(name)):
            return
        timer.stop()
        timer.deleteLater()

    timer.timeout.connect(tick)
    timer.start()
    return timer


def open_new_vm_wizard(window: QMainWindow) -> NewVmWizard | None:
    """Open the wizard on the host selected in ``window`` (a MainWindow)."""
    hosts = [c for c in window.inventory.connections if c.state is ConnectionState.CONNECTED]
    if not hosts:
        window.show_error("No host to create a machine on",
                          UserError("Connect to a host first: New VM needs a connected host."))
        return None
    index = window.host_view.currentIndex()
    current = index.data(HostRole.HOST) if index.isValid() else None
    wizard = NewVmWizard(hosts, window.runner, current, window)
    wizard.created.connect(lambda host, name, job: follow_new_machine(window, host, name, job))
    wizard.finished.connect(wizard.deleteLater)  # its relays go with it
    wizard.open()
    return wizard
