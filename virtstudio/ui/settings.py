"""Saved connections and window layout, kept in QSettings.

A connection URI that runs a program or names a socket, key or certificate
(``uri.risky_parameters``) is asked about before it is used.  Once the user
has confirmed one, its entry carries a keyed digest of the exact URI, made
with a secret kept in a file of its own beside the settings: a settings
file that was edited, copied from elsewhere or written by another program
does not carry a valid digest, so its risky URIs are asked about again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError

_KEY = "connections/list"
_SECRET_BYTES = 32


@dataclass(frozen=True)
class SavedConnection:
    uri: str
    autoconnect: bool
    confirmed: bool = False  # the user said yes to this exact URI's risky parameters


class ConnectionSettings:
    def __init__(self, settings: QSettings | None = None,
                 secret_file: Path | None = None) -> None:
        self._settings = settings or QSettings("VirtStudio", "VirtStudio")
        self._secret_file = secret_file or Path(self._settings.fileName()).with_suffix(
            ".confirmations")

    def _secret(self, create: bool) -> bytes | None:
        try:
            secret = self._secret_file.read_bytes()
            if len(secret) == _SECRET_BYTES:
                return secret
        except OSError:
            pass
        if not create:
            return None
        secret = secrets.token_bytes(_SECRET_BYTES)
        self._secret_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret

    def _digest(self, uri: str, create: bool = False) -> str:
        secret = self._secret(create)
        if secret is None:
            return ""
        return hmac.new(secret, uri.encode(), hashlib.sha256).hexdigest()

    def _confirmed(self, uri: str, digest: object) -> bool:
        if not isinstance(digest, str) or not digest:
            return False
        expected = self._digest(uri)
        return bool(expected) and hmac.compare_digest(expected, digest)

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
            saved.append(SavedConnection(item["uri"], bool(item.get("autoconnect", True)),
                                         self._confirmed(item["uri"], item.get("confirmed"))))
        return saved

    def _store(self, saved: list[SavedConnection]) -> None:
        data = []
        for s in saved:
            entry: dict[str, object] = {"uri": s.uri, "autoconnect": s.autoconnect}
            if s.confirmed and uri_mod.risky_parameters(s.uri):
                entry["confirmed"] = self._digest(s.uri, create=True)
            data.append(entry)
        self._settings.setValue(_KEY, json.dumps(data))
        self._settings.sync()

    def add(self, uri: str, autoconnect: bool = True, confirmed: bool = False) -> None:
        """Save ``uri``; ``confirmed`` when the user has just said yes to its risky parameters."""
        before = [s for s in self.load() if s.uri == uri]
        confirmed = confirmed or any(s.confirmed for s in before)
        saved = [s for s in self.load() if s.uri != uri]
        saved.append(SavedConnection(uri, autoconnect, confirmed))
        self._store(saved)

    def confirm(self, uri: str) -> None:
        """Remember that the user said yes to this saved URI's risky parameters."""
        self._store([SavedConnection(s.uri, s.autoconnect, True) if s.uri == uri else s
                     for s in self.load()])

    def remove(self, uri: str) -> None:
        self._store([s for s in self.load() if s.uri != uri])

    def set_autoconnect(self, uri: str, autoconnect: bool) -> None:
        self._store([SavedConnection(s.uri, autoconnect, s.confirmed) if s.uri == uri else s
                     for s in self.load()])

    def save_window(self, key: str, state: bytes) -> None:
        self._settings.setValue(f"window/{key}", QByteArray(state))
        self._settings.sync()

    def load_window(self, key: str) -> bytes | None:
        value = self._settings.value(f"window/{key}")
        if isinstance(value, QByteArray) and not value.isEmpty():
            return bytes(value.data())
        return None
