"""Profiles and the applications assigned to them, saved under the user's data folder."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.core.signal import Signal
from virtstudio.sandbox.builtin_profiles import builtin_profiles
from virtstudio.sandbox.manager import slug
from virtstudio.sandbox.profile import LEGACY_NETWORK_MODES, SandboxProfile


@dataclass(frozen=True)
class SandboxApp:
    name: str
    command: tuple[str, ...]
    profile: str


class ProfileStore:
    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "profiles"
        self.apps_file = data_dir / "sandbox-apps.json"
        self.profiles: list[SandboxProfile] = []
        self.apps: list[SandboxApp] = []
        self.changed = Signal("profiles changed")
        self.load()

    def load(self) -> None:
        own: dict[str, SandboxProfile] = {}
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*.json")):
                try:
                    text = path.read_text()
                    profile = SandboxProfile.from_json(text)
                except (OSError, VirtStudioError):
                    continue  # a damaged file must not hide the others
                own[profile.name] = profile
                if profile.to_json() != text and _stored_network(text) in LEGACY_NETWORK_MODES:
                    # Saved by an older version: keep the file saying what it now means.
                    with contextlib.suppress(OSError):
                        path.write_text(profile.to_json())
        builtins = [p for p in builtin_profiles() if p.name not in own]
        self.profiles = builtins + sorted(own.values(), key=lambda p: p.name.casefold())
        self.apps = []
        try:
            for item in json.loads(self.apps_file.read_text()):
                self.apps.append(SandboxApp(str(item["name"]), tuple(item["command"]),
                                            str(item["profile"])))
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def find(self, name: str) -> SandboxProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def save(self, profile: SandboxProfile, *, replacing: str | None = None) -> None:
        """Save ``profile`` (a built-in edited becomes the user's own copy)."""
        profile.validate()
        clash = self.find(profile.name)
        if clash is not None and profile.name != replacing and not clash.builtin:
            raise VirtStudioError(f"A profile called “{profile.name}” exists already.")
        self.folder.mkdir(parents=True, exist_ok=True)
        saved = profile.copy(builtin=False)
        (self.folder / f"{slug(saved.name)}.json").write_text(saved.to_json())
        if replacing and replacing != saved.name:
            self._forget_file(replacing)
            self.apps = [SandboxApp(a.name, a.command, saved.name) if a.profile == replacing
                         else a for a in self.apps]
            self._save_apps()
        self.load()
        self.changed.emit()

    def delete(self, name: str) -> None:
        profile = self.find(name)
        if profile is None or profile.builtin:
            raise VirtStudioError("Built-in profiles cannot be deleted; edit a copy instead.")
        self._forget_file(name)
        self.apps = [a for a in self.apps if a.profile != name]
        self._save_apps()
        self.load()
        self.changed.emit()

    def _forget_file(self, name: str) -> None:
        (self.folder / f"{slug(name)}.json").unlink(missing_ok=True)

    def export(self, name: str, path: Path) -> None:
        profile = self.find(name)
        if profile is None:
            raise VirtStudioError(f"There is no profile called “{name}”.")
        path.write_text(profile.to_json())

    def import_file(self, path: Path) -> SandboxProfile:
        try:
            text = path.read_text()
        except OSError as exc:
            raise VirtStudioError(f"{path.name} cannot be read: {exc.strerror}.") from None
        profile = SandboxProfile.from_json(text)
        if self.find(profile.name) is not None:
            raise VirtStudioError(f"A profile called “{profile.name}” exists already.")
        self.save(profile)
        return profile

    def add_app(self, app: SandboxApp) -> None:
        if self.find(app.profile) is None:
            raise VirtStudioError(f"There is no profile called “{app.profile}”.")
        self.apps = [a for a in self.apps if not (a.profile == app.profile
                                                  and a.command == app.command)]
        self.apps.append(app)
        self._save_apps()
        self.changed.emit()

    def remove_app(self, app: SandboxApp) -> None:
        self.apps = [a for a in self.apps if a != app]
        self._save_apps()
        self.changed.emit()

    def apps_of(self, profile: str) -> list[SandboxApp]:
        return [a for a in self.apps if a.profile == profile]

    def _save_apps(self) -> None:
        self.apps_file.parent.mkdir(parents=True, exist_ok=True)
        self.apps_file.write_text(json.dumps(
            [{"name": a.name, "command": list(a.command), "profile": a.profile}
             for a in self.apps], indent=2))


def _stored_network(text: str) -> object:
    try:
        return json.loads(text)["profile"]["network"]
    except (ValueError, KeyError, TypeError):
        return None
