"""Storage pools of one host."""

from __future__ import annotations

from PySide6.QtCore import QObject

from virtstudio.core.entities import StoragePool
from virtstudio.core.units import format_bytes
from virtstudio.ui.entity_table_model import EntityTableModel

_COLUMNS = [
    ("Name", lambda p: p.name),
    ("Type", lambda p: p.pool_type),
    ("State", lambda p: "Active" if p.active else "Inactive"),
    ("Capacity", lambda p: format_bytes(p.capacity)),
    ("Allocation", lambda p: format_bytes(p.allocation)),
    ("Available", lambda p: format_bytes(p.available)),
    ("Volumes", lambda p: str(len(p.volumes)) if p.active else "—"),
    ("Promised", lambda p: format_bytes(p.promised) if p.active else "—"),
    ("Overcommit", lambda p: f"{p.overcommit:.2f}x" if p.active and p.capacity else "—"),
    ("Autostart", lambda p: "Yes" if p.autostart else "No"),
    ("Location", lambda p: p.target_path),
]


class PoolListModel(EntityTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(
            _COLUMNS,
            lambda h: (h.pools_added, h.pools_removed, h.pools_changed),
            lambda h: h.pools,
            parent,
        )

    def pool_at(self, row: int) -> StoragePool | None:
        return self.entity_at(row)
