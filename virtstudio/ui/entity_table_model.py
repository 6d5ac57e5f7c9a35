"""A table over one host's storage pools or networks, kept live by the host's signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from virtstudio.core.connection import HostConnection
from virtstudio.core.signal import Signal
from virtstudio.ui.bridge import Relay, relay

Index = QModelIndex | QPersistentModelIndex
ENTITY_ROLE = Qt.ItemDataRole.UserRole + 1


class EntityTableModel(QAbstractTableModel):
    """Rows are entities with a ``uuid``; ``columns`` maps a header to a cell function."""

    def __init__(self, columns: list[tuple[str, Callable[[Any], str]]],
                 signals: Callable[[HostConnection], tuple[Signal, Signal, Signal]],
                 store: Callable[[HostConnection], dict[str, Any]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._columns = columns
        self._signals = signals
        self._store = store
        self._host: HostConnection | None = None
        self._rows: list[Any] = []
        self._relays: list[Relay] = []

    @property
    def host(self) -> HostConnection | None:
        return self._host

    def set_host(self, host: HostConnection | None) -> None:
        if host is self._host:
            return
        for r in self._relays:
            r.detach()
        self._relays = []
        # Switching hosts is the user's choice, not an event: a reset fits here.
        self.beginResetModel()
        self._host = host
        entities = list(self._store(host).values()) if host is not None else []
        self._rows = sorted(entities, key=lambda e: e.name.casefold())
        self.endResetModel()
        if host is not None:
            added, removed, changed = self._signals(host)
            self._relays = [relay(added, self._on_added, self),
                            relay(removed, self._on_removed, self),
                            relay(changed, self._on_changed, self)]

    def entity_at(self, row: int) -> Any:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def _row(self, uuid: str) -> int:
        for row, entity in enumerate(self._rows):
            if entity.uuid == uuid:
                return row
        return -1

    def _on_added(self, host: HostConnection, entities: list[Any]) -> None:
        if host is not self._host:
            return
        for entity in entities:
            row = self._row(entity.uuid)
            if row >= 0:
                self._rows[row] = entity
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self._columns) - 1))
                continue
            row = len(self._rows)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.append(entity)
            self.endInsertRows()

    def _on_removed(self, host: HostConnection, entities: list[Any]) -> None:
        if host is not self._host:
            return
        for entity in entities:
            row = self._row(entity.uuid)
            if row >= 0:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()

    def _on_changed(self, host: HostConnection, entities: list[Any]) -> None:
        self._on_added(host, entities)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._columns[section][0]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entity = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._columns[index.column()][1](entity)
        if role == ENTITY_ROLE:
            return entity
        return None
