"""The Host devices list: disks and partitions of this computer, draggable onto Storage."""

from __future__ import annotations

import threading

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.errors import describe
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.core.units import format_bytes
from virtstudio.storage.host_devices import BlockDevice, list_devices
from virtstudio.ui.bridge import relay
from virtstudio.ui.plain_text import plain_label, plain_tooltip

DEVICE_MIME = "application/x-virtstudio-block-device"
DEVICE_ROLE = Qt.ItemDataRole.UserRole + 1
_HEADERS = ("Device", "Size", "Type", "File system", "Mounted on", "In use")


def device_mime_data(paths: list[str]) -> QMimeData:
    """What a dragged block device carries: its path, for Storage or for a machine."""
    data = QMimeData()
    data.setData(DEVICE_MIME, "\n".join(paths).encode())
    data.setText("\n".join(paths))
    return data


class DeviceTree(QTreeWidget):
    """A tree whose drags carry the device paths under DEVICE_MIME."""

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        return device_mime_data([item.data(0, DEVICE_ROLE).path for item in items
                                 if item.data(0, DEVICE_ROLE) is not None])

    def mimeTypes(self) -> list[str]:
        return [DEVICE_MIME, "text/plain"]


class HostDevicesPanel(QWidget):
    """Lists the devices (read off the GUI thread) and says which are free."""

    loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hostDevices")
        self.tree = DeviceTree(objectName="hostDeviceTree")
        self.tree.setHeaderLabels(list(_HEADERS))
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setRootIsDecorated(True)
        self.status = plain_label(objectName="hostDevicesStatus", wordWrap=True)
        self.refresh_button = QPushButton("Refresh", objectName="hostDevicesRefresh")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Host devices</b> — drag a free disk onto the pools above to "
                             "make an LVM thin pool or a disk pool"), 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tree)
        layout.addWidget(self.status)
        self.devices: list[BlockDevice] = []
        self._done = CoreSignal("host devices read")
        relay(self._done, self._show, self)

    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)

        def read() -> None:
            try:
                self._done.emit(list_devices(), "")
            except Exception as exc:
                self._done.emit([], describe(exc).message)

        threading.Thread(target=read, name="host devices", daemon=True).start()

    def _show(self, devices: list[BlockDevice], error: str) -> None:
        self.refresh_button.setEnabled(True)
        self.devices = devices
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for device in devices:
            item = QTreeWidgetItem([
                device.path, format_bytes(device.size), device.kind, device.fstype or "—",
                ", ".join(device.mountpoints) or "—", device.in_use or "Free"])
            item.setData(0, DEVICE_ROLE, device)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if device.in_use:
                item.setForeground(5, QColor("#8a5300"))
                item.setToolTip(0, plain_tooltip(f"{device.path} {device.in_use}"))
            parent = items.get(device.parent)
            if parent is not None:
                parent.addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            items[device.name] = item
        self.tree.expandAll()
        free = sum(1 for d in devices if d.free)
        self.status.setText(error or f"{len(devices)} devices, {free} free.")
        self.loaded.emit()

    def item_for(self, path: str) -> QTreeWidgetItem | None:
        for item in self._all_items():
            device = item.data(0, DEVICE_ROLE)
            if device is not None and device.path == path:
                return item
        return None

    def _all_items(self) -> list[QTreeWidgetItem]:
        found, stack = [], [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            found.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return found
