"""Virtual networks of one host."""

from __future__ import annotations

from PySide6.QtCore import QObject

from virtstudio.core.entities import Network
from virtstudio.ui.entity_table_model import EntityTableModel

_MODES = {"nat": "NAT", "route": "Routed", "isolated": "Isolated", "open": "Open",
          "bridge": "Bridge", "passthrough": "Passthrough", "private": "Private",
          "vepa": "VEPA", "hostdev": "Host device"}

_COLUMNS = [
    ("Name", lambda n: n.name),
    ("State", lambda n: "Active" if n.active else "Inactive"),
    ("Mode", lambda n: _MODES.get(n.forward_mode, n.forward_mode)),
    ("Bridge", lambda n: n.bridge or "—"),
    ("IPv4", lambda n: n.ipv4 or "—"),
    ("Autostart", lambda n: "Yes" if n.autostart else "No"),
]


class NetworkListModel(EntityTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(
            _COLUMNS,
            lambda h: (h.networks_added, h.networks_removed, h.networks_changed),
            lambda h: h.networks,
            parent,
        )

    def network_at(self, row: int) -> Network | None:
        return self.entity_at(row)
