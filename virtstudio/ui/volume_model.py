"""Volumes of one storage pool: size, real allocation, backing file and who uses them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import StoragePool, Volume
from virtstudio.core.units import format_bytes
from virtstudio.ui.plain_text import plain_tooltip

Index = QModelIndex | QPersistentModelIndex
# A dragged volume: which host, pool and volume (dropped onto a machine to attach it).
VOLUME_MIME = "application/x-virtstudio-volume"
_HEADERS = ("Volume", "Format", "Capacity", "Allocation", "Backing file", "Used by")


def users_of(host: HostConnection, volume: Volume, pool: StoragePool) -> list[str]:
    names = []
    for dom in list(host.domains.values()):
        for disk in dom.summary.disks:
            if disk.source in (volume.path, f"{pool.name}/{volume.name}"):
                names.append(dom.name)
                break
    return sorted(names)


class VolumeListModel(QAbstractTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host: HostConnection | None = None
        self.pool_uuid = ""
        self._pool: StoragePool | None = None
        self._rows: list[Volume] = []

    def set_pool(self, host: HostConnection | None, pool: StoragePool | None) -> None:
        """Show another pool (the user's choice, so a reset is what fits)."""
        self.beginResetModel()
        self.host, self._pool = host, pool
        self.pool_uuid = pool.uuid if pool is not None else ""
        self._rows = sorted(pool.volumes, key=lambda v: v.name) if pool is not None else []
        self.endResetModel()

    def update_pool(self, pool: StoragePool) -> None:
        """The shown pool was read again: apply the difference row by row."""
        if pool.uuid == self.pool_uuid:
            self._pool = pool
            self._apply(sorted(pool.volumes, key=lambda v: v.name))

    def _apply(self, fresh: list[Volume]) -> None:
        """Turn the new list into removals, inserts and changes, row by row."""
        names = {v.name for v in fresh}
        for row in reversed(range(len(self._rows))):
            if self._rows[row].name not in names:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        known = {v.name: i for i, v in enumerate(self._rows)}
        for volume in fresh:
            row = known.get(volume.name)
            if row is None:
                row = len(self._rows)
                self.beginInsertRows(QModelIndex(), row, row)
                self._rows.append(volume)
                self.endInsertRows()
            elif self._rows[row] != volume:
                self._rows[row] = volume
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(_HEADERS) - 1))

    def volume_at(self, row: int) -> Volume | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [VOLUME_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        data = QMimeData()
        rows = sorted({i.row() for i in indexes if i.isValid()})
        volume = self.volume_at(rows[0]) if rows else None
        if volume is not None and self.host is not None:
            data.setData(VOLUME_MIME, json.dumps({"host": self.host.uri, "pool": self.pool_uuid,
                                                  "volume": volume.name}).encode())
            data.setText(volume.path)
        return data

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        volume = self.volume_at(index.row()) if index.isValid() else None
        if volume is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tooltip(volume.path)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return volume.name
        if col == 1:
            return volume.format or "—"
        if col == 2:
            return format_bytes(volume.capacity)
        if col == 3:
            thin = volume.capacity and volume.allocation < volume.capacity
            share = f" ({volume.allocation * 100 // volume.capacity} %)" if thin else ""
            return format_bytes(volume.allocation) + share
        if col == 4:
            return volume.backing or "—"
        if self.host is None or self._pool is None:
            return ""
        return ", ".join(users_of(self.host, volume, self._pool)) or "—"
