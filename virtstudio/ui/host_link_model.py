"""This computer's network interfaces, live from netlink, as a table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from virtstudio.network.host_links import HostNetwork, Link
from virtstudio.ui.bridge import relay

Index = QModelIndex | QPersistentModelIndex
_HEADERS = ("Interface", "Type", "State", "Bridge", "VLAN", "Addresses", "MAC", "MTU")


class HostLinkModel(QAbstractTableModel):
    def __init__(self, network: HostNetwork, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.network = network
        self._rows: list[Link] = []
        relay(network.links_added, self._on_added, self)
        relay(network.links_changed, self._on_changed, self)
        relay(network.links_removed, self._on_removed, self)
        self._on_added(list(network.links.values()))

    def _row(self, index: int) -> int:
        for row, link in enumerate(self._rows):
            if link.index == index:
                return row
        return -1

    def _on_added(self, links: list[Link]) -> None:
        fresh = [link for link in links if self._row(link.index) < 0]
        if fresh:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            self._rows.extend(fresh)
            self.endInsertRows()
        self._on_changed([link for link in links if link not in fresh])

    def _on_changed(self, links: list[Link]) -> None:
        for link in links:
            row = self._row(link.index)
            if row >= 0:
                self._rows[row] = link
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(_HEADERS) - 1))

    def _on_removed(self, links: list[Link]) -> None:
        for link in links:
            row = self._row(link.index)
            if row >= 0:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()

    def link_at(self, row: int) -> Link | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        link = self.link_at(index.row()) if index.isValid() else None
        if link is None or role != Qt.ItemDataRole.DisplayRole:
            return None
        col = index.column()
        if col == 0:
            return link.name
        if col == 1:
            return "bridge (VLAN-aware)" if link.vlan_filtering else link.kind
        if col == 2:
            return link.state
        if col == 3:
            master = self.network.links.get(link.master) if link.master else None
            return master.name if master is not None else "—"
        if col == 4:
            return str(link.vlan_id) if link.vlan_id else "—"
        if col == 5:
            return ", ".join(link.addresses) or "—"
        if col == 6:
            return link.mac or "—"
        return str(link.mtu)
