"""The set of host connections the app has open."""

from __future__ import annotations

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.signal import Signal


class Inventory:
    def __init__(self, *, stats_interval: float = 1.0) -> None:
        self.stats_interval = stats_interval
        self.connections: list[HostConnection] = []
        self.connection_added = Signal("connection_added")
        self.connection_removed = Signal("connection_removed")

    def find(self, uri: str) -> HostConnection | None:
        for conn in self.connections:
            if conn.uri == uri:
                return conn
        return None

    def add(self, uri: str, *, name: str | None = None, is_demo: bool = False,
            connect: bool = True) -> HostConnection:
        """Add a host; raise VirtStudioError for a bad or duplicate URI."""
        uri_mod.parse(uri)
        if self.find(uri) is not None:
            raise VirtStudioError(f"A connection to {uri} is already open.")
        conn = HostConnection(uri, name=name, is_demo=is_demo,
                              stats_interval=self.stats_interval)
        self.connections.append(conn)
        self.connection_added.emit(conn)
        if connect:
            conn.open()
        return conn

    def remove(self, conn: HostConnection, *, wait: bool = True) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
            self.connection_removed.emit(conn)
            conn.shutdown(wait=wait)

    def shutdown(self, *, wait: bool = True) -> None:
        for conn in list(self.connections):
            self.remove(conn, wait=wait)
