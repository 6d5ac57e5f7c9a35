"""Saved connections and window layout, kept in QSettings."""

from __future__ import annotations

import json
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError

_KEY = "connections/list"


@dataclass(frozen=True)
class SavedConnection:
    uri: str
    autoconnect: bool


class ConnectionSettings:
    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings or QSettings("VirtStudio", "VirtStudio")

    def load(self) -> list[SavedConnection]:
        """The saved connections; entries that are not valid are skipped, never raised."""
        raw = self._settings.value(_KEY, "[]")
        try:
            items = json.loads(raw if isinstance(raw, str) else "[]")
        except ValueError:
            return []
        saved: list[SavedConnection] = []
        seen: set[str] = set()
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("uri"), str):
                continue
            try:
                uri_mod.parse(item["uri"])
            except VirtStudioError:
                continue
            if item["uri"] in seen:
                continue
            seen.add(item["uri"])
            saved.append(SavedConnection(item["uri"], bool(item.get("autoconnect", True))))
        return saved

    def _store(self, saved: list[SavedConnection]) -> None:
        data = [{"uri": s.uri, "autoconnect": s.autoconnect} for s in saved]
        self._settings.setValue(_KEY, json.dumps(data))
        self._settings.sync()

    def add(self, uri: str, autoconnect: bool = True) -> None:
        saved = [s for s in self.load() if s.uri != uri]
        saved.append(SavedConnection(uri, autoconnect))
        self._store(saved)

    def remove(self, uri: str) -> None:
        self._store([s for s in self.load() if s.uri != uri])

    def set_autoconnect(self, uri: str, autoconnect: bool) -> None:
        self._store([SavedConnection(s.uri, autoconnect) if s.uri == uri else s
                     for s in self.load()])

    def save_window(self, key: str, state: bytes) -> None:
        self._settings.setValue(f"window/{key}", QByteArray(state))
        self._settings.sync()

    def load_window(self, key: str) -> bytes | None:
        value = self._settings.value(f"window/{key}")
        if isinstance(value, QByteArray) and not value.isEmpty():
            return bytes(value.data())
        return None
