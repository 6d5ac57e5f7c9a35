"""The machine list: every domain of every host, as one flat table.

Core batches become fine-grained changes: one insert per added batch, removals
and changes grouped into contiguous row ranges, statistics as one dataChanged
over the statistics columns.  The model never resets on an event.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.inventory import Inventory
from virtstudio.core.io_errors import describe_faults, state_label
from virtstudio.core.units import format_kib, format_percent, format_rate
from virtstudio.machines.groups import groups_of
from virtstudio.ui.bridge import Relay, relay
from virtstudio.ui.icons import icon, state_icon
from virtstudio.ui.plain_text import html, rich_tooltip

Index = QModelIndex | QPersistentModelIndex


class VmColumn(enum.IntEnum):
    NAME = 0
    STATE = 1
    HOST = 2
    VCPUS = 3
    MEMORY = 4
    CPU = 5
    DISK_IO = 6
    NET_IO = 7
    GROUPS = 8


class VmRole(enum.IntEnum):
    DOMAIN = Qt.ItemDataRole.UserRole + 1
    HOST = enum.auto()
    UUID = enum.auto()
    SORT = enum.auto()
    HISTORY = enum.auto()


_HEADERS = {
    VmColumn.NAME: "Name", VmColumn.STATE: "State", VmColumn.HOST: "Host",
    VmColumn.VCPUS: "vCPUs", VmColumn.MEMORY: "Memory", VmColumn.CPU: "CPU",
    VmColumn.DISK_IO: "Disk I/O", VmColumn.NET_IO: "Network I/O",
    VmColumn.GROUPS: "Folder and tags",
}
# Running machines first when sorted by state, then the ones that need attention.
_STATE_ORDER = {"Running": 0, "Blocked": 1, "Paused": 2, "Suspended": 3, "Shutting down": 4,
                "Crashed": 5, "Shut off": 6, "Unknown": 7}
# Rows inserted per event-loop step while a large host is being listed.
INSERT_STEP = 100
# How long the batches must pause before queued rows are inserted.
QUIET_MS = 30
_NUMERIC = frozenset((VmColumn.VCPUS, VmColumn.MEMORY, VmColumn.CPU, VmColumn.DISK_IO,
                      VmColumn.NET_IO))
_COLUMN_COUNT = len(VmColumn)
_SORT = int(VmRole.SORT)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_DOMAIN = int(VmRole.DOMAIN)
_HOST = int(VmRole.HOST)
_UUID = int(VmRole.UUID)
_HISTORY = int(VmRole.HISTORY)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
# Sort key per column, indexed by column number.
_SORT_KEYS = (
    lambda h, d: d.summary.name.casefold(),
    lambda h, d: _STATE_ORDER.get(d.state.label, 9),
    lambda h, d: h.name.casefold(),
    lambda h, d: d.summary.vcpus,
    lambda h, d: d.summary.current_memory_kib,
    lambda h, d: d.stats.cpu_percent,
    lambda h, d: d.stats.disk_bytes_per_s,
    lambda h, d: d.stats.net_bytes_per_s,
    lambda h, d: groups_of(d).label.casefold(),
)


def _ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous (first, last) runs of the given rows, ascending."""
    runs: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


# Machines dragged out of the list: JSON [{"host": uri, "uuid": uuid}, ...].
MACHINES_MIME = "application/x-virtstudio-machines"


def machines_in(mime: QMimeData) -> list[tuple[str, str]]:
    """(host URI, UUID) of each machine a drag carries; [] for anything else."""
    if not mime.hasFormat(MACHINES_MIME):
        return []
    try:
        items = json.loads(bytes(mime.data(MACHINES_MIME).data()).decode())
        return [(str(item["host"]), str(item["uuid"])) for item in items]
    except (ValueError, TypeError, KeyError):
        return []


class VmListModel(QAbstractTableModel):
    def __init__(self, inventory: Inventory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[HostConnection, Domain]] = []
        self._row_of: dict[tuple[str, str], int] = {}
        self._relays: dict[int, list[Relay]] = {}
        self._pending: list[tuple[HostConnection, Domain]] = []
        self.sorted_by_statistics = False
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush_step)
        relay(inventory.connection_added, self._attach, self)
        relay(inventory.connection_removed, self._detach, self)
        for conn in inventory.connections:
            self._attach(conn)
            self._insert(conn, list(conn.domains.values()))

    # ---- subscriptions --------------------------------------------------------------

    def _attach(self, conn: HostConnection) -> None:
        if id(conn) in self._relays:
            return
        self._relays[id(conn)] = [
            relay(conn.domains_added, self._on_added, self),
            relay(conn.domains_removed, self._on_removed, self),
            relay(conn.domains_changed, self._on_changed, self),
            relay(conn.stats_updated, self._on_stats, self),
            relay(conn.state_changed, self._on_host_state, self),
        ]

    def _detach(self, conn: HostConnection) -> None:
        for r in self._relays.pop(id(conn), []):
            r.detach()
        self._pending = [(c, d) for c, d in self._pending if c is not conn]
        self._remove_rows([i for i, (h, _) in enumerate(self._rows) if h is conn])

    def _known(self, conn: HostConnection) -> bool:
        return id(conn) in self._relays

    # ---- batches from the core ------------------------------------------------------

    def _on_added(self, conn: HostConnection, domains: list[Domain]) -> None:
        if not self._known(conn):
            return
        # Queue, and insert in bounded steps once the batches pause.  While a
        # worker is still reading a host it holds the GIL most of the time, and
        # every call from Qt back into Python (data() while sorting) would wait
        # for it: inserting then costs ten times more than a moment later.
        self._pending.extend((conn, d) for d in domains)
        self._flush_timer.start(QUIET_MS)

    def flush_pending(self) -> None:
        """Insert every queued domain now."""
        while self._pending:
            self._insert_step(len(self._pending))

    def _flush_step(self) -> None:
        self._insert_step(INSERT_STEP)
        if self._pending:
            self._flush_timer.start(0)

    def _insert_step(self, limit: int) -> None:
        step, self._pending = self._pending[:limit], self._pending[limit:]
        by_host: dict[int, tuple[HostConnection, list[Domain]]] = {}
        for conn, dom in step:
            if self._known(conn):
                by_host.setdefault(id(conn), (conn, []))[1].append(dom)
        for conn, domains in by_host.values():
            self._insert(conn, domains)

    def _insert(self, conn: HostConnection, domains: list[Domain]) -> None:
        fresh = []
        replaced = []
        for dom in domains:
            row = self._row_of.get((conn.uri, dom.uuid))
            if row is None:
                fresh.append(dom)
            else:
                self._rows[row] = (conn, dom)
                replaced.append(row)
        if fresh:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for offset, dom in enumerate(fresh):
                self._rows.append((conn, dom))
                self._row_of[(conn.uri, dom.uuid)] = first + offset
            self.endInsertRows()
        self._emit_changed(replaced, 0, len(VmColumn) - 1)

    def _on_removed(self, conn: HostConnection, domains: list[Domain]) -> None:
        if not self._known(conn):
            return
        if self._pending:
            gone = {id(d) for d in domains}
            self._pending = [(c, d) for c, d in self._pending if id(d) not in gone]
        rows = [self._row_of[key] for d in domains
                if (key := (conn.uri, d.uuid)) in self._row_of]
        self._remove_rows(rows)

    def _on_changed(self, conn: HostConnection, domains: list[Domain]) -> None:
        # Queued domains are the same objects: they show their latest data once inserted.
        if not self._known(conn):
            return
        rows = []
        for dom in domains:
            row = self._row_of.get((conn.uri, dom.uuid))
            if row is not None:
                self._rows[row] = (conn, dom)
                rows.append(row)
        self._emit_changed(rows, 0, len(VmColumn) - 1)

    def _on_stats(self, conn: HostConnection, domains: list[Domain]) -> None:
        # Queued domains are the same objects: they show their latest data once inserted.
        if not self._known(conn):
            return
        rows = [row for d in domains
                if (row := self._row_of.get((conn.uri, d.uuid))) is not None]
        if rows:
            # One signal over the span: cheaper than one per row, and still no reset.
            # Naming the roles lets a sorting proxy skip re-sorting unless a
            # statistics column is the sort key.
            roles = [Qt.ItemDataRole.DisplayRole, VmRole.HISTORY]
            if self.sorted_by_statistics:
                roles.append(VmRole.SORT)
            self.dataChanged.emit(self.index(min(rows), VmColumn.CPU),
                                  self.index(max(rows), VmColumn.NET_IO), roles)

    def _on_host_state(self, conn: HostConnection) -> None:
        rows = [i for i, (h, _) in enumerate(self._rows) if h is conn]
        self._emit_changed(rows, VmColumn.HOST, VmColumn.HOST)

    def _emit_changed(self, rows: list[int], first_col: int, last_col: int) -> None:
        for first, last in _ranges(rows):
            self.dataChanged.emit(self.index(first, first_col), self.index(last, last_col))

    def _remove_rows(self, rows: list[int]) -> None:
        if not rows:
            return
        for first, last in reversed(_ranges(rows)):
            self.beginRemoveRows(QModelIndex(), first, last)
            for conn, dom in self._rows[first:last + 1]:
                self._row_of.pop((conn.uri, dom.uuid), None)
            del self._rows[first:last + 1]
            self.endRemoveRows()
        start = min(rows)
        for row in range(start, len(self._rows)):
            conn, dom = self._rows[row]
            self._row_of[(conn.uri, dom.uuid)] = row

    # ---- lookups --------------------------------------------------------------------

    def domain_at(self, row: int) -> Domain | None:
        return self._rows[row][1] if 0 <= row < len(self._rows) else None

    def host_at(self, row: int) -> HostConnection | None:
        return self._rows[row][0] if 0 <= row < len(self._rows) else None

    def row_of(self, host_uri: str, uuid: str) -> int:
        return self._row_of.get((host_uri, uuid), -1)

    def index_of(self, domain: Domain, column: int = 0) -> QModelIndex:
        row = self.row_of(domain.host_uri, domain.uuid)
        return self.index(row, column) if row >= 0 else QModelIndex()

    # ---- Qt model API ------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else _COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return _HEADERS[VmColumn(section)]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in _NUMERIC:
                return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        rows = sorted({index.row() for index in indexes if index.isValid()})
        picked = [self._rows[row] for row in rows if 0 <= row < len(self._rows)]
        mime = QMimeData()
        mime.setData(MACHINES_MIME, json.dumps(
            [{"host": conn.uri, "uuid": dom.uuid} for conn, dom in picked]).encode())
        mime.setText("\n".join(dom.name for _, dom in picked))
        return mime

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # Hot path: the proxy asks for sort keys thousands of times while sorting.
        row = index.row()
        if row < 0 or row >= len(self._rows):
            return None
        host, dom = self._rows[row]
        col = index.column()
        if role == _SORT:
            return _SORT_KEYS[col](host, dom)
        if role == _DISPLAY:
            return self._display(host, dom, VmColumn(col))
        if role == _DOMAIN:
            return dom
        if role == _HOST:
            return host
        if role == _UUID:
            return dom.uuid
        if role == _HISTORY:
            return self._history(dom, VmColumn(col))
        if role == _DECORATION:
            if col == VmColumn.NAME:
                return icon("vm")
            if col == VmColumn.STATE:
                return state_icon(dom.state)
            return None
        if role == _TOOLTIP:
            return self._tooltip(host, dom)
        if role == _ALIGNMENT and col in _NUMERIC:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    @staticmethod
    def _display(host: HostConnection, dom: Domain, col: VmColumn) -> str:
        s = dom.summary
        active = dom.state.is_active
        if col is VmColumn.NAME:
            return dom.name
        if col is VmColumn.STATE:
            return state_label(dom)
        if col is VmColumn.HOST:
            return host.name
        if col is VmColumn.VCPUS:
            return str(s.vcpus)
        if col is VmColumn.MEMORY:
            return format_kib(s.current_memory_kib)
        if col is VmColumn.GROUPS:
            return groups_of(dom).label
        if not active:
            return "—"
        if col is VmColumn.CPU:
            return format_percent(dom.stats.cpu_percent)
        if col is VmColumn.DISK_IO:
            return format_rate(dom.stats.disk_bytes_per_s)
        return format_rate(dom.stats.net_bytes_per_s)

    @staticmethod
    def _history(dom: Domain, col: VmColumn) -> list[float] | None:
        if not dom.state.is_active:
            return []
        if col is VmColumn.CPU:
            return list(dom.stats.cpu_history)
        if col is VmColumn.DISK_IO:
            return list(dom.stats.disk_history)
        if col is VmColumn.NET_IO:
            return list(dom.stats.net_history)
        return None

    @staticmethod
    def _tooltip(host: HostConnection, dom: Domain) -> str:
        lines = [f"<b>{html(dom.name)}</b>"]
        if dom.summary.title:
            lines.append(html(dom.summary.title))
        lines.append(html(f"{state_label(dom)} on {host.name}"))
        fault = describe_faults(dom, list(host.pools.values()))
        if fault:
            lines.append(html(fault))
        if not dom.persistent:
            lines.append("Transient: disappears once it stops")
        groups = groups_of(dom)
        if groups.folder:
            lines.append(f"Folder: {html(groups.folder)}")
        if groups.tags:
            lines.append(f"Tags: {html(', '.join(groups.tags))}")
        return rich_tooltip(*lines)


class VmFilterProxy(QSortFilterProxyModel):
    """Filters by free text (with ``tag:x`` and ``folder:x``) and by host; sorts by each
    column's natural key."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tokens: list[str] = []
        self._host_uri: str | None = None
        self._folder: str | None = None
        self.setSortRole(VmRole.SORT)
        # The filter reads the entities directly; a role no change names
        # keeps statistics updates from re-running it on every row.
        self.setFilterRole(VmRole.UUID)
        self.setDynamicSortFilter(True)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if isinstance(model, VmListModel):
            model.sorted_by_statistics = column in (VmColumn.CPU, VmColumn.DISK_IO,
                                                    VmColumn.NET_IO)
        super().sort(column, order)

    def set_text(self, text: str) -> None:
        tokens = text.casefold().split()
        if tokens != self._tokens:
            self.beginFilterChange()
            self._tokens = tokens
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_host(self, uri: str | None) -> None:
        if uri != self._host_uri:
            self.beginFilterChange()
            self._host_uri = uri
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_folder(self, folder: str | None) -> None:
        """Show only machines filed in ``folder`` (or its sub-folders); None shows all."""
        if folder != self._folder:
            self.beginFilterChange()
            self._folder = folder
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    @property
    def folder(self) -> str | None:
        return self._folder

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self._tokens and self._host_uri is None and self._folder is None:
            return True
        model = self.sourceModel()
        assert isinstance(model, VmListModel)
        host = model.host_at(source_row)
        dom = model.domain_at(source_row)
        if host is None or dom is None:
            return False
        if self._host_uri is not None and host.uri != self._host_uri:
            return False
        groups = groups_of(dom)
        if self._folder is not None and not groups.in_folder(self._folder):
            return False
        if not self._tokens:
            return True
        haystack = " ".join((dom.name, dom.summary.title, host.name, dom.state.label,
                             groups.folder, *groups.tags)).casefold()
        for token in self._tokens:
            # tag:web and folder:prod match exactly; other words anywhere in the row.
            matched = groups.matches(token)
            if not (token in haystack if matched is None else matched):
                return False
        return True
