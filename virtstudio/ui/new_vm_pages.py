"""The New VM wizard's pages: widgets only; the wizard fills, reads and checks them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from virtstudio.machines.new_vm import DiskChoice, Field, InstallSource, NetworkChoice
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.typed_name_confirm import BackingFileConfirm

ERROR_STYLE = "color: #b3261e;"


class FieldPage(QWizardPage):
    """A page that is complete when none of its fields has a problem."""

    def __init__(self, title: str, subtitle: str, fields: Iterable[Field],
                 is_ready: Callable[[Field], bool]) -> None:
        super().__init__()
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self.fields = tuple(fields)
        self._is_ready = is_ready
        self.error_labels: dict[Field, QLabel] = {}

    def isComplete(self) -> bool:
        return all(self._is_ready(f) for f in self.fields)

    def error_label(self, field: Field) -> QLabel:
        label = plain_label(objectName=f"{field.value}Error", wordWrap=True)
        label.setStyleSheet(ERROR_STYLE)
        label.hide()
        self.error_labels[field] = label
        return label

    def add_row(self, form: QFormLayout, text: str, widget: QWidget | QHBoxLayout,
                field: Field | None = None) -> None:
        form.addRow(text, widget)
        if field is not None:
            form.addRow("", self.error_label(field))


def path_row(edit: QLineEdit, volumes: QComboBox, browse: QPushButton) -> QWidget:
    """A path to type, a pool volume to pick instead, and a Browse button."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    line = QHBoxLayout()
    line.addWidget(edit, 1)
    line.addWidget(browse)
    layout.addLayout(line)
    layout.addWidget(volumes)
    return box


def radio_group(parent: QWidget, choices: Iterable[tuple[object, str, str]]
                ) -> tuple[QButtonGroup, dict[object, QRadioButton]]:
    group = QButtonGroup(parent)
    buttons: dict[object, QRadioButton] = {}
    for key, label, name in choices:
        button = QRadioButton(label, objectName=name)
        group.addButton(button)
        buttons[key] = button
    return group, buttons


class ImageRows:
    """An image file's format, its backing chain as read, and the names that must be typed.

    The format is the user's word: the file name only preselects a choice they
    see.  Widgets are named ``<prefix>Format``, ``<prefix>Chain`` and
    ``<prefix>ConfirmName<i>``.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.format_combo = QComboBox(objectName=f"{prefix}Format")
        self.format_combo.addItem("raw: the file's bytes are the disk, as they are", "raw")
        self.format_combo.addItem("qcow2: a qcow2 image, which may read backing files",
                                  "qcow2")
        self.format_combo.setCurrentIndex(-1)
        self.chain_label = QLabel(objectName=f"{prefix}Chain", wordWrap=True)
        self.chain_label.setTextFormat(Qt.TextFormat.PlainText)  # file names from the image
        self.file_confirm = BackingFileConfirm(prefix, "new machine")

    def add_to(self, page: FieldPage, form: QFormLayout, format_field: Field,
               chain_field: Field) -> None:
        page.add_row(form, "Format:", self.format_combo, format_field)
        page.add_row(form, "Reads:", self.chain_label, chain_field)
        form.addRow(self.file_confirm)

    def show_confirm_fields(self, paths: tuple[str, ...]) -> None:
        """One field per backing file outside the pools, in which its name must be typed
        (``file_confirm.changed`` tells of typing)."""
        self.file_confirm.show_paths(paths)

    @property
    def confirm_edits(self) -> dict[str, QLineEdit]:
        return self.file_confirm.edits


class SourcePage(FieldPage):
    def __init__(self, is_ready: Callable[[Field], bool]) -> None:
        super().__init__("Name and installation",
                         "Name the machine and say where its operating system comes from.",
                         (Field.NAME, Field.ISO, Field.IMPORT, Field.IMPORT_FORMAT,
                          Field.IMPORT_CHAIN, Field.KERNEL, Field.INITRD), is_ready)
        self.host_combo = QComboBox(objectName="hostCombo")
        self.host_status = plain_label(objectName="hostStatus", wordWrap=True)
        self.name_edit = QLineEdit(objectName="nameEdit")
        self.variant_combo = QComboBox(objectName="osVariant")
        self.source_group, self.source_buttons = radio_group(self, [
            (InstallSource.ISO, "Install from an ISO image (a file or a pool volume)",
             "sourceIso"),
            (InstallSource.IMPORT, "Import an existing disk image", "sourceImport"),
            (InstallSource.PXE, "Network boot (PXE)", "sourcePxe"),
            (InstallSource.KERNEL, "Direct kernel boot (kernel, initrd, command line)",
             "sourceKernel"),
        ])
        self.iso_edit = QLineEdit(objectName="isoPath", placeholderText="/path/to/installer.iso")
        self.iso_volumes = QComboBox(objectName="isoVolume")
        self.iso_browse = QPushButton("Browse…", objectName="isoBrowse")
        self.import_edit = QLineEdit(objectName="importPath",
                                     placeholderText="/var/lib/libvirt/images/disk.qcow2")
        self.import_volumes = QComboBox(objectName="importVolume")
        self.import_browse = QPushButton("Browse…", objectName="importBrowse")
        self.import_image = ImageRows("import")
        self.import_format = self.import_image.format_combo
        self.import_chain = self.import_image.chain_label
        self.kernel_edit = QLineEdit(objectName="kernelPath", placeholderText="/path/to/vmlinuz")
        self.initrd_edit = QLineEdit(objectName="initrdPath",
                                     placeholderText="optional: /path/to/initrd.img")
        self.cmdline_edit = QLineEdit(objectName="cmdlineEdit",
                                      placeholderText="optional: console=ttyS0 root=/dev/vda1")

        form = QFormLayout(self)
        form.addRow("Host:", self.host_combo)
        form.addRow("", self.host_status)
        self.add_row(form, "Name:", self.name_edit, Field.NAME)
        form.addRow("Operating system:", self.variant_combo)
        for button in self.source_buttons.values():
            form.addRow("" if button is not self.source_buttons[InstallSource.ISO]
                        else "Install from:", button)
        self.source_stack = QStackedWidget(objectName="sourceStack")
        form.addRow(self.source_stack)

        iso = QWidget()
        iso_form = QFormLayout(iso)
        self.add_row(iso_form, "ISO image:",
                     path_row(self.iso_edit, self.iso_volumes, self.iso_browse), Field.ISO)
        imported = QWidget()
        import_form = QFormLayout(imported)
        self.add_row(import_form, "Disk image:",
                     path_row(self.import_edit, self.import_volumes, self.import_browse),
                     Field.IMPORT)
        self.import_image.add_to(self, import_form, Field.IMPORT_FORMAT, Field.IMPORT_CHAIN)
        pxe = QLabel("The machine boots from the network: give it a network with a PXE "
                     "server on the last page.", wordWrap=True)
        kernel = QWidget()
        kernel_form = QFormLayout(kernel)
        self.add_row(kernel_form, "Kernel:", self.kernel_edit, Field.KERNEL)
        self.add_row(kernel_form, "Initrd:", self.initrd_edit, Field.INITRD)
        kernel_form.addRow("Command line:", self.cmdline_edit)
        self.source_pages = {InstallSource.ISO: iso, InstallSource.IMPORT: imported,
                             InstallSource.PXE: pxe, InstallSource.KERNEL: kernel}
        for widget in self.source_pages.values():
            self.source_stack.addWidget(widget)
        self.source_buttons[InstallSource.ISO].setChecked(True)

    @property
    def import_confirm_edits(self) -> dict[str, QLineEdit]:
        return self.import_image.confirm_edits


class MachinePage(FieldPage):
    def __init__(self, is_ready: Callable[[Field], bool]) -> None:
        super().__init__("Processor, memory and firmware",
                         "The defaults suit the operating system you chose.",
                         (Field.ARCH, Field.MACHINE, Field.DOMAIN_TYPE, Field.FIRMWARE,
                          Field.VCPUS, Field.MEMORY), is_ready)
        self.arch_combo = QComboBox(objectName="archCombo")
        self.machine_combo = QComboBox(objectName="machineCombo")
        self.domain_type_combo = QComboBox(objectName="domainTypeCombo")
        self.firmware_combo = QComboBox(objectName="firmwareCombo")
        self.vcpus_spin = QSpinBox(objectName="vcpusSpin", minimum=0, maximum=4096)
        self.memory_edit = QLineEdit(objectName="memoryEdit")
        memory = QHBoxLayout()
        memory.addWidget(self.memory_edit, 1)
        memory.addWidget(QLabel("MiB (or with a unit: 2G)"))
        form = QFormLayout(self)
        self.add_row(form, "Architecture:", self.arch_combo, Field.ARCH)
        self.add_row(form, "Machine type:", self.machine_combo, Field.MACHINE)
        self.add_row(form, "Virtualization:", self.domain_type_combo, Field.DOMAIN_TYPE)
        self.add_row(form, "Firmware:", self.firmware_combo, Field.FIRMWARE)
        self.add_row(form, "vCPUs:", self.vcpus_spin, Field.VCPUS)
        self.add_row(form, "Memory:", memory, Field.MEMORY)


class StoragePage(FieldPage):
    def __init__(self, is_ready: Callable[[Field], bool]) -> None:
        super().__init__("Storage", "A new thin disk grows as the guest writes to it.",
                         (Field.DISK_POOL, Field.DISK_SIZE, Field.DISK_PATH, Field.DISK_FORMAT,
                          Field.DISK_CHAIN), is_ready)
        self.disk_group, self.disk_buttons = radio_group(self, [
            (DiskChoice.NEW, "Create a new disk (thin qcow2 volume)", "diskNew"),
            (DiskChoice.EXISTING, "Use an existing disk image", "diskExisting"),
            (DiskChoice.NONE, "No disk", "diskNone"),
        ])
        self.imported_note = QLabel("The imported image is the machine's disk.",
                                    objectName="importedNote", wordWrap=True)
        self.pool_combo = QComboBox(objectName="poolCombo")
        self.size_edit = QLineEdit(objectName="diskSizeEdit")
        self.volume_label = plain_label(objectName="volumeName")
        self.disk_edit = QLineEdit(objectName="diskPath",
                                   placeholderText="/var/lib/libvirt/images/disk.qcow2")
        self.disk_volumes = QComboBox(objectName="diskVolume")
        self.disk_browse = QPushButton("Browse…", objectName="diskBrowse")
        self.existing_image = ImageRows("disk")
        size = QHBoxLayout()
        size.addWidget(self.size_edit, 1)
        size.addWidget(QLabel("GiB (or with a unit: 512M)"))
        form = QFormLayout(self)
        form.addRow(self.imported_note)
        for button in self.disk_buttons.values():
            form.addRow(button)
        self.new_box = QWidget()
        new_form = QFormLayout(self.new_box)
        self.add_row(new_form, "Pool:", self.pool_combo, Field.DISK_POOL)
        self.add_row(new_form, "Size:", size, Field.DISK_SIZE)
        new_form.addRow("Volume:", self.volume_label)
        self.existing_box = QWidget()
        existing_form = QFormLayout(self.existing_box)
        self.add_row(existing_form, "Image:",
                     path_row(self.disk_edit, self.disk_volumes, self.disk_browse),
                     Field.DISK_PATH)
        self.existing_image.add_to(self, existing_form, Field.DISK_FORMAT, Field.DISK_CHAIN)
        form.addRow(self.new_box)
        form.addRow(self.existing_box)
        self.disk_buttons[DiskChoice.NEW].setChecked(True)


class DevicesPage(FieldPage):
    def __init__(self, is_ready: Callable[[Field], bool]) -> None:
        super().__init__("Network and display", "Check the summary, then create the machine.",
                         (Field.NETWORK, Field.GRAPHICS), is_ready)
        self.net_group, self.net_buttons = radio_group(self, [
            (NetworkChoice.VIRTUAL, "Virtual network", "netVirtual"),
            (NetworkChoice.BRIDGE, "Host bridge", "netBridge"),
            (NetworkChoice.NONE, "No network", "netNone"),
        ])
        self.network_combo = QComboBox(objectName="networkCombo")
        self.bridge_combo = QComboBox(objectName="bridgeCombo", editable=True)
        self.graphics_combo = QComboBox(objectName="graphicsCombo")
        self.customize_check = QCheckBox(
            "Customize before install: define the machine without starting it, and select it "
            "so you can change it first", objectName="customizeCheck")
        self.summary = QLabel(objectName="summary", wordWrap=True)
        form = QFormLayout(self)
        form.addRow(self.net_buttons[NetworkChoice.VIRTUAL], self.network_combo)
        form.addRow(self.net_buttons[NetworkChoice.BRIDGE], self.bridge_combo)
        form.addRow(self.net_buttons[NetworkChoice.NONE])
        form.addRow("", self.error_label(Field.NETWORK))
        self.add_row(form, "Display:", self.graphics_combo, Field.GRAPHICS)
        form.addRow(self.customize_check)
        form.addRow(self.summary)
        self.net_buttons[NetworkChoice.VIRTUAL].setChecked(True)
