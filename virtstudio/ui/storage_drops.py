"""Drops onto the Storage page and onto machines, each turned into a confirmation.

Onto Storage: a host device (from the Host devices list, or a /dev path from
a file manager) becomes an LVM thin pool or a disk pool, a folder a dir pool,
an image file a volume of the selected pool.  Onto a machine in the list: a
volume dragged from the volume table is attached as a disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QMimeData, QObject, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import drop_plans
from virtstudio.storage.host_devices import find_device
from virtstudio.storage.sizes import parse_size
from virtstudio.ui.drop_confirm import DropChoice, DropConfirmDialog
from virtstudio.ui.host_devices_view import DEVICE_MIME
from virtstudio.ui.vm_model import VmRole
from virtstudio.ui.volume_model import VOLUME_MIME

if TYPE_CHECKING:
    from virtstudio.ui.main_window import MainWindow

_DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove)


def dropped_paths(mime: QMimeData) -> list[Path]:
    """Local paths in a drop: device paths from our list, or file URLs from a file manager."""
    if mime.hasFormat(DEVICE_MIME):
        text = bytes(mime.data(DEVICE_MIME).data()).decode()
        return [Path(line) for line in text.splitlines() if line.strip()]
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def file_mime(*paths: Path) -> QMimeData:
    """What a file manager puts in a drag (text/uri-list), e.g. for tests and scripting."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


class StorageDrops(QObject):
    """Event filter for the Storage page and the machine list's viewport."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        window.storage_page.setAcceptDrops(True)
        window.storage_page.installEventFilter(self)
        self.vm_viewport = window.vm_view.viewport()
        self.vm_viewport.setAcceptDrops(True)
        self.vm_viewport.installEventFilter(self)

    def _host(self) -> HostConnection | None:
        host = self.window.pool_model.host
        return host if host is not None and host.state is ConnectionState.CONNECTED else None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (*_DRAG_EVENTS, QEvent.Type.Drop):
            return False
        if watched is self.vm_viewport:
            return self._vm_event(event)
        if watched is self.window.storage_page:
            assert isinstance(event, QDragEnterEvent | QDragMoveEvent | QDropEvent)
            if not dropped_paths(event.mimeData()) or self._host() is None:
                return False
            if kind in _DRAG_EVENTS:
                event.acceptProposedAction()
            else:
                event.acceptProposedAction()
                self.drop_on_storage(event.mimeData())
            return True
        return False

    # ---- onto Storage -------------------------------------------------------------

    def drop_on_storage(self, mime: QMimeData) -> DropConfirmDialog | None:
        """Open the confirmation for each item ``mime`` holds, one after the other: each
        says what it writes, and cancelling one leaves the others to decide."""
        host = self._host()
        paths = dropped_paths(mime)
        if host is None or not paths:
            return None
        devices = mime.hasFormat(DEVICE_MIME)
        queue = [(path, "device" if devices else drop_plans.classify_path(path))
                 for path in paths]
        return self._confirm_next(host, queue, 0)

    def _confirm_next(self, host: HostConnection, queue: list[tuple[Path, str]],
                      position: int) -> DropConfirmDialog | None:
        if position >= len(queue) or host.state is not ConnectionState.CONNECTED:
            return None
        path, kind = queue[position]
        dialog = self._item_dialog(host, path, kind)
        if len(queue) > 1:
            dialog.setWindowTitle(f"{dialog.windowTitle()} ({position + 1} of {len(queue)})")
        # The next one opens once this one is answered, whichever way.
        dialog.finished.connect(lambda _result: self._confirm_next(host, queue, position + 1))
        return self._open(dialog)

    def _item_dialog(self, host: HostConnection, path: Path, kind: str) -> DropConfirmDialog:
        taken = {p.name for p in list(host.pools.values())}
        if kind == "device":
            dialog = self._device_dialog(host, path, taken)
        elif kind == "folder":
            dialog = DropConfirmDialog(
                f"Make a pool of {path}", [DropChoice("dir", "A folder pool (dir)")],
                lambda _k, name, _s: drop_plans.plan_dir_pool(host, path, name),
                self.window.runner, drop_plans.pool_name_for(path, taken), self.window)
        elif kind == "image":
            dialog = self._import_dialog(host, path)
        else:
            dialog = DropConfirmDialog(
                f"Drop {path.name}", [DropChoice("none", "Nothing", wants_name=False)],
                lambda *_: _refuse(f"{path} is not a folder, a disk image or a block "
                                   "device, so nothing can be made of it."),
                self.window.runner, parent=self.window)
        return dialog

    def _device_dialog(self, host: HostConnection, path: Path, taken: set[str]
                       ) -> DropConfirmDialog:
        def plan(kind: str, name: str, size: str) -> drop_plans.DropPlan:
            device = find_device(str(path))
            if kind == "disk":
                return drop_plans.plan_disk_pool(host, device, name)
            return drop_plans.plan_lvm_thin_pool(host, device, name,
                                                 parse_size(size) if size else None)

        default = drop_plans.pool_name_for(Path(f"vg_{path.name}"), taken)
        size_hint = ""
        try:
            device = find_device(str(path))
            size_hint = (f"default {drop_plans.default_thin_pool_size(device.size) >> 20} MiB, "
                         f"at most {drop_plans.max_thin_pool_size(device.size) >> 20} MiB")
        except VirtStudioError:
            pass
        choices = [DropChoice("lvm-thin", "An LVM thin pool (volume group + thin pool)",
                              wants_size=True, size_hint=size_hint),
                   DropChoice("disk", "A disk pool (partitions as volumes)")]
        return DropConfirmDialog(f"Make a pool of {path}", choices, plan, self.window.runner,
                                 default, self.window)

    def _import_dialog(self, host: HostConnection, path: Path) -> DropConfirmDialog:
        pool = self.window.current_pool()

        def plan(source_format: str, _name: str, _size: str) -> drop_plans.DropPlan:
            if pool is None:
                raise VirtStudioError("Select the pool to import the image into first.")
            return drop_plans.plan_import(host, pool, path, source_format=source_format)

        # The file's own bytes never choose its format: raw unless the user says qcow2.
        choices = [DropChoice("raw", "A new volume; read the file as raw (byte for byte)",
                              wants_name=False),
                   DropChoice("qcow2", "A new volume; read the file as a qcow2 image",
                              wants_name=False)]
        return DropConfirmDialog(f"Import {path.name}", choices, plan, self.window.runner,
                                 parent=self.window)

    def _open(self, dialog: DropConfirmDialog) -> DropConfirmDialog:
        dialog.open()
        self.window.confirm_requested.emit(dialog)
        return dialog

    # ---- onto a machine -------------------------------------------------------------

    def _vm_event(self, event: QEvent) -> bool:
        assert isinstance(event, QDragEnterEvent | QDragMoveEvent | QDropEvent)
        mime = event.mimeData()
        if not (mime.hasFormat(VOLUME_MIME) or mime.hasFormat(DEVICE_MIME)):
            return False
        index = self.window.vm_view.indexAt(event.position().toPoint())
        if event.type() in _DRAG_EVENTS:
            event.acceptProposedAction()
            return True
        event.acceptProposedAction()
        if index.isValid():
            host, domain = index.data(VmRole.HOST), index.data(VmRole.DOMAIN)
            if mime.hasFormat(DEVICE_MIME):
                self.drop_device_on(host, domain, mime)
            else:
                self.drop_volume_on(host, domain, mime)
        return True

    def drop_device_on(self, host: HostConnection | None, domain: Domain | None,
                       mime: QMimeData) -> DropConfirmDialog | None:
        paths = dropped_paths(mime)
        if not paths:
            return None
        path = str(paths[0])

        def plan(*_: str) -> drop_plans.DropPlan:
            if host is None or domain is None:
                raise VirtStudioError("Drop the device on a machine.")
            return drop_plans.plan_attach_block(host, domain, path)

        name = domain.name if domain is not None else "the machine"
        dialog = DropConfirmDialog(f"Attach {path} to {name}",
                                   [DropChoice("attach", "A new disk", wants_name=False)],
                                   plan, self.window.runner, parent=self.window)
        return self._open(dialog)

    def drop_volume_on(self, host: HostConnection | None, domain: Domain | None,
                       mime: QMimeData) -> DropConfirmDialog:
        payload = json.loads(bytes(mime.data(VOLUME_MIME).data()).decode())

        def plan(*_: str) -> drop_plans.DropPlan:
            if host is None or domain is None or host.uri != payload["host"]:
                raise VirtStudioError("A volume can only be attached to a machine on its own "
                                      "host.")
            pool = host.pools.get(payload["pool"])
            volume = next((v for v in pool.volumes if v.name == payload["volume"]), None) \
                if pool is not None else None
            if pool is None or volume is None:
                raise VirtStudioError(f"The volume {payload['volume']} is gone.")
            return drop_plans.plan_attach(host, domain, pool, volume)

        name = domain.name if domain is not None else "the machine"
        dialog = DropConfirmDialog(f"Attach {payload['volume']} to {name}",
                                   [DropChoice("attach", "A new disk", wants_name=False)],
                                   plan, self.window.runner, parent=self.window)
        return self._open(dialog)


def _refuse(message: str) -> drop_plans.DropPlan:
    raise VirtStudioError(message)
