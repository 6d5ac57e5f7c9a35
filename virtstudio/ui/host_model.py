"""The sidebar: hosts, each with its Virtual machines, Storage and Networks."""

from __future__ import annotations

import enum
import time
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.inventory import Inventory
from virtstudio.ui.bridge import Relay, relay
from virtstudio.ui.icons import icon

Index = QModelIndex | QPersistentModelIndex


class HostRole(enum.IntEnum):
    HOST = Qt.ItemDataRole.UserRole + 1
    SECTION = enum.auto()


_SECTIONS = (("vms", "Virtual machines", "vm"), ("storage", "Storage", "storage"),
             ("networks", "Networks", "network"))
# internalId: 0 for a host, host row + 1 for one of its sections.
_NO_PARENT = 0


class HostTreeModel(QAbstractItemModel):
    def __init__(self, inventory: Inventory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._hosts: list[HostConnection] = []
        self._relays: dict[int, list[Relay]] = {}
        relay(inventory.connection_added, self._add_host, self)
        relay(inventory.connection_removed, self._remove_host, self)
        self._dirty_counts: set[HostConnection] = set()
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(100)
        self._counts_timer.timeout.connect(self._refresh_counts)
        # Refreshes "retrying in N s" while a host waits; idle otherwise.
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._tick)
        for conn in inventory.connections:
            self._add_host(conn)

    # ---- hosts -------------------------------------------------------------------------

    def host_row(self, conn: HostConnection) -> int:
        for row, host in enumerate(self._hosts):
            if host is conn:
                return row
        return -1

    def host_index(self, conn: HostConnection) -> QModelIndex:
        row = self.host_row(conn)
        return self.index(row, 0) if row >= 0 else QModelIndex()

    def _add_host(self, conn: HostConnection) -> None:
        if self.host_row(conn) >= 0:
            return
        row = len(self._hosts)
        self.beginInsertRows(QModelIndex(), row, row)
        self._hosts.append(conn)
        self.endInsertRows()

        def counts_changed(*_: Any, c: HostConnection = conn) -> None:
            # Counts change with every batch of a large host: repaint at most every 100 ms.
            self._dirty_counts.add(c)
            if not self._counts_timer.isActive():
                self._counts_timer.start()

        self._relays[id(conn)] = [
            relay(conn.state_changed, self._host_changed, self),
            *(relay(sig, counts_changed, self) for sig in (
                conn.domains_added, conn.domains_removed, conn.pools_added,
                conn.pools_removed, conn.networks_added, conn.networks_removed)),
        ]

    def _remove_host(self, conn: HostConnection) -> None:
        row = self.host_row(conn)
        for r in self._relays.pop(id(conn), []):
            r.detach()
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._hosts[row]
        self.endRemoveRows()

    def _host_changed(self, conn: HostConnection, *_: Any, children: bool = False) -> None:
        row = self.host_row(conn)
        if row < 0:
            return
        host_index = self.index(row, 0)
        self.dataChanged.emit(host_index, host_index)
        if children:
            self.dataChanged.emit(self.index(0, 0, host_index),
                                  self.index(len(_SECTIONS) - 1, 0, host_index))
        waiting = any(h.retry_at is not None for h in self._hosts)
        if waiting and not self._countdown.isActive():
            self._countdown.start()

    def _refresh_counts(self) -> None:
        dirty, self._dirty_counts = self._dirty_counts, set()
        for conn in dirty:
            self._host_changed(conn, children=True)

    def _tick(self) -> None:
        waiting = [h for h in self._hosts if h.retry_at is not None]
        if not waiting:
            self._countdown.stop()
        for conn in waiting:
            index = self.host_index(conn)
            self.dataChanged.emit(index, index)

    # ---- texts ---------------------------------------------------------------------------

    @staticmethod
    def host_text(conn: HostConnection) -> str:
        state = conn.state
        if state is ConnectionState.CONNECTED:
            return conn.name
        if state is ConnectionState.CONNECTING:
            return f"{conn.name} — Connecting…"
        if state is ConnectionState.LOST:
            if conn.retry_at is not None:
                seconds = max(0, round(conn.retry_at - time.time()))
                return f"{conn.name} — Connection lost, retrying in {seconds} s"
            return f"{conn.name} — Connection lost"
        if state is ConnectionState.FAILED:
            return f"{conn.name} — Failed"
        return f"{conn.name} — Disconnected"

    @staticmethod
    def host_tooltip(conn: HostConnection) -> str:
        lines = [f"<b>{conn.name}</b>", conn.uri, f"State: {conn.state.value}"]
        if conn.state is ConnectionState.CONNECTED and conn.hypervisor:
            lines.append(f"{conn.hypervisor} on {conn.hostname or 'unknown host'}, "
                         f"libvirt {conn.libvirt_version}")
        if conn.error is not None:
            lines.append(conn.error.message)
        return "<br>".join(lines)

    @staticmethod
    def _section_text(conn: HostConnection, key: str, label: str) -> str:
        if conn.state is not ConnectionState.CONNECTED:
            return label
        count = {"vms": len(conn.domains), "storage": len(conn.pools),
                 "networks": len(conn.networks)}[key]
        return f"{label} ({count})"

    # ---- Qt model API --------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column != 0 or row < 0:
            return QModelIndex()
        if not parent.isValid():
            if row >= len(self._hosts):
                return QModelIndex()
            return self.createIndex(row, 0, _NO_PARENT)
        if parent.internalId() == _NO_PARENT and row < len(_SECTIONS):
            return self.createIndex(row, 0, parent.row() + 1)
        return QModelIndex()

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not index.isValid() or index.internalId() == _NO_PARENT:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, _NO_PARENT)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._hosts)
        if parent.internalId() == _NO_PARENT:
            return len(_SECTIONS)
        return 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        is_host = index.internalId() == _NO_PARENT
        host_row = index.row() if is_host else index.internalId() - 1
        if not 0 <= host_row < len(self._hosts):
            return None
        conn = self._hosts[host_row]
        if role == HostRole.HOST:
            return conn
        if is_host:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.host_text(conn)
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.host_tooltip(conn)
            if role == Qt.ItemDataRole.DecorationRole:
                ok = conn.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING)
                return icon("host" if ok else "host-disconnected")
            if role == HostRole.SECTION:
                return "host"
            return None
        key, label, icon_name = _SECTIONS[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._section_text(conn, key, label)
        if role == Qt.ItemDataRole.DecorationRole:
            return icon(icon_name)
        if role == HostRole.SECTION:
            return key
        return None
