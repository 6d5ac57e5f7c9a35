"""The sidebar: hosts, each with its Virtual machines (and the folders they are filed
in, as a tree), Storage and Networks.

Folders follow the machines' metadata: a change inserts or removes just the
folder rows that came or went, so the tree keeps its selection and expansion.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.inventory import Inventory
from virtstudio.machines.groups import FolderTree, folder_tree
from virtstudio.ui.bridge import Relay, relay
from virtstudio.ui.icons import icon
from virtstudio.ui.plain_text import html, plain_tooltip, rich_tooltip
from virtstudio.ui.vm_model import MACHINES_MIME, machines_in

Index = QModelIndex | QPersistentModelIndex


class HostRole(enum.IntEnum):
    HOST = Qt.ItemDataRole.UserRole + 1
    SECTION = enum.auto()  # "host", "vms", "storage", "networks" or "folder"
    FOLDER = enum.auto()  # a folder's path, such as "prod/web"


_SECTIONS = (("vms", "Virtual machines", "vm"), ("storage", "Storage", "storage"),
             ("networks", "Networks", "network"))
# internalId: 0 for a host, host row + 1 for one of its sections, and from
# _FOLDER_BASE on a folder (an index into the model's list of folder keys).
_NO_PARENT = 0
_FOLDER_BASE = 1 << 32
_VMS_ROW = 0


class HostTreeModel(QAbstractItemModel):
    """``machines_dropped(host, folder, uuids)``: machines dragged onto a folder, or onto
    Virtual machines (folder "") to take them out of their folder."""

    machines_dropped = Signal(object, str, list)

    def __init__(self, inventory: Inventory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._hosts: list[HostConnection] = []
        self._relays: dict[int, list[Relay]] = {}
        # Per host: the folder rows shown (parent path -> child paths) and their counts.
        self._folders: dict[int, dict[str, list[str]]] = {}
        self._folder_counts: dict[int, dict[str, int]] = {}
        self._folder_keys: list[tuple[HostConnection, str]] = []
        self._folder_ids: dict[tuple[int, str], int] = {}
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
            relay(conn.state_changed, counts_changed, self),  # a lost host shows no folders
            *(relay(sig, counts_changed, self) for sig in (
                conn.domains_added, conn.domains_removed, conn.domains_changed,
                conn.pools_added, conn.pools_removed, conn.networks_added,
                conn.networks_removed)),
        ]
        self._folders[id(conn)] = {"": []}
        self._folder_counts[id(conn)] = {}
        counts_changed()  # a host may have loaded its machines before this model saw it

    def _remove_host(self, conn: HostConnection) -> None:
        row = self.host_row(conn)
        for r in self._relays.pop(id(conn), []):
            r.detach()
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._hosts[row]
        self._folders.pop(id(conn), None)
        self._folder_counts.pop(id(conn), None)
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
            self._sync_folders(conn)

    def _tick(self) -> None:
        waiting = [h for h in self._hosts if h.retry_at is not None]
        if not waiting:
            self._countdown.stop()
        for conn in waiting:
            index = self.host_index(conn)
            self.dataChanged.emit(index, index)

    # ---- folders -------------------------------------------------------------------------

    def _folder_id(self, conn: HostConnection, path: str) -> int:
        key = (id(conn), path)
        found = self._folder_ids.get(key)
        if found is None:
            found = self._folder_ids[key] = len(self._folder_keys)
            self._folder_keys.append((conn, path))
        return _FOLDER_BASE + found

    def folder_index(self, conn: HostConnection, path: str) -> QModelIndex:
        shown = self._folders.get(id(conn), {})
        siblings = shown.get(FolderTree.parent(path), [])
        if path not in siblings:
            return QModelIndex()
        return self.createIndex(siblings.index(path), 0, self._folder_id(conn, path))

    def _sync_folders(self, conn: HostConnection) -> None:
        """Bring the shown folders in line with the machines' metadata, row by row."""
        shown = self._folders.get(id(conn))
        host = self.host_index(conn)
        if shown is None or not host.isValid():
            return
        connected = conn.state is ConnectionState.CONNECTED
        tree = folder_tree(list(conn.domains.values()) if connected else [])
        old_counts = self._folder_counts[id(conn)]
        self._folder_counts[id(conn)] = tree.counts
        self._sync_children(conn, shown, tree, "", self.index(_VMS_ROW, 0, host))
        changed = [path for path, count in tree.counts.items()
                   if old_counts.get(path, count) != count]
        for path in changed:
            index = self.folder_index(conn, path)
            self.dataChanged.emit(index, index)

    def _sync_children(self, conn: HostConnection, shown: dict[str, list[str]],
                       tree: FolderTree, path: str, parent: QModelIndex) -> None:
        rows, wanted = shown[path], tree.children.get(path, [])
        for row in reversed(range(len(rows))):
            if rows[row] not in wanted:
                self.beginRemoveRows(parent, row, row)
                gone = rows.pop(row)
                for shown_path in [p for p in shown if p == gone or p.startswith(gone + "/")]:
                    del shown[shown_path]
                self.endRemoveRows()
        # What is left is in ``wanted``'s order, so each newcomer goes in at its own row.
        for row, child in enumerate(wanted):
            if row >= len(rows) or rows[row] != child:
                self.beginInsertRows(parent, row, row)
                rows.insert(row, child)
                shown[child] = []
                self.endInsertRows()
        for row, child in enumerate(rows):
            self._sync_children(conn, shown, tree, child,
                                self.createIndex(row, 0, self._folder_id(conn, child)))

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
        lines = [f"<b>{html(conn.name)}</b>", html(conn.uri), f"State: {conn.state.value}"]
        if conn.state is ConnectionState.CONNECTED and conn.hypervisor:
            lines.append(html(f"{conn.hypervisor} on {conn.hostname or 'unknown host'}, "
                              f"libvirt {conn.libvirt_version}"))
        if conn.error is not None:
            lines.append(html(conn.error.message))
        return rich_tooltip(*lines)

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
        if parent.internalId() == _NO_PARENT:
            return self.createIndex(row, 0, parent.row() + 1) if row < len(_SECTIONS) else \
                QModelIndex()
        folder = self._folder_of(parent)
        if folder is None:
            return QModelIndex()
        conn, path = folder
        children = self._folders.get(id(conn), {}).get(path, [])
        if row >= len(children):
            return QModelIndex()
        return self.createIndex(row, 0, self._folder_id(conn, children[row]))

    def _folder_of(self, index: Index) -> tuple[HostConnection, str] | None:
        """(host, path) for a folder row, or the "" root for a host's Virtual machines row."""
        node = index.internalId()
        if node >= _FOLDER_BASE:
            conn, path = self._folder_keys[node - _FOLDER_BASE]
            return (conn, path) if self.host_row(conn) >= 0 else None
        if node != _NO_PARENT and index.row() == _VMS_ROW and node - 1 < len(self._hosts):
            return self._hosts[node - 1], ""
        return None

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not index.isValid() or index.internalId() == _NO_PARENT:
            return QModelIndex()
        if index.internalId() < _FOLDER_BASE:
            return self.createIndex(index.internalId() - 1, 0, _NO_PARENT)
        conn, path = self._folder_keys[index.internalId() - _FOLDER_BASE]
        above = FolderTree.parent(path)
        if above:
            return self.folder_index(conn, above)
        row = self.host_row(conn)
        return self.createIndex(_VMS_ROW, 0, row + 1) if row >= 0 else QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._hosts)
        if parent.internalId() == _NO_PARENT:
            return len(_SECTIONS)
        folder = self._folder_of(parent)
        if folder is None:
            return 0
        conn, path = folder
        return len(self._folders.get(id(conn), {}).get(path, []))

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() >= _FOLDER_BASE:
            return self._folder_data(index, role)
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

    # ---- dropping machines on folders ----------------------------------------------------

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsDropEnabled if self._folder_of(index) else flags

    def mimeTypes(self) -> list[str]:
        return [MACHINES_MIME]

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def _drop_target(self, data: QMimeData, parent: Index) -> tuple[HostConnection, str,
                                                                      list[str]] | None:
        target = self._folder_of(parent) if parent.isValid() else None
        machines = machines_in(data)
        if target is None or not machines:
            return None
        conn, path = target
        # Folders belong to one host's machines: a machine of another host is refused.
        if any(uri != conn.uri for uri, _ in machines):
            return None
        return conn, path, [uuid for _, uuid in machines]

    def canDropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int,
                        parent: Index) -> bool:
        return self._drop_target(data, parent) is not None

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int,
                     parent: Index) -> bool:
        target = self._drop_target(data, parent)
        if target is None:
            return False
        self.machines_dropped.emit(*target)
        return True

    def _folder_data(self, index: Index, role: int) -> Any:
        conn, path = self._folder_keys[index.internalId() - _FOLDER_BASE]
        if role == Qt.ItemDataRole.DisplayRole:
            count = self._folder_counts.get(id(conn), {}).get(path, 0)
            return f"{FolderTree.name(path)} ({count})"
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tooltip(f"Machines on {conn.name} filed in {path} or its sub-folders")
        if role == Qt.ItemDataRole.DecorationRole:
            return icon("folder")
        if role == HostRole.HOST:
            return conn
        if role == HostRole.SECTION:
            return "folder"
        if role == HostRole.FOLDER:
            return path
        return None
