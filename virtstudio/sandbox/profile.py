"""A sandbox profile: the named set of permissions an application runs with."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.grants import resolve_grant

# "internet": a network namespace of its own, reaching out through user-mode
# networking (pasta); the host's namespace, and so its abstract sockets, stay out of reach.
NETWORK_MODES = ("none", "internet", "bridge")
# Older profiles said "host" for what is now "internet" (sharing the host's network
# namespace is no longer offered): they load with the safe meaning.
LEGACY_NETWORK_MODES = {"host": "internet"}
DISPLAY_MODES = ("none", "x11", "wayland")
DBUS_MODES = ("none", "filtered")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_BUS_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)+(\.\*)?")
PROFILE_FORMAT = 1


@dataclass
class SandboxProfile:
    name: str
    description: str = ""
    private_home: bool = True
    read_only: list[str] = field(default_factory=list)
    read_write: list[str] = field(default_factory=list)
    network: str = "none"
    bridge: str = ""
    display: str = "none"
    sound: bool = False
    dbus: str = "none"
    dbus_talk: list[str] = field(default_factory=list)
    memory_mb: int = 0  # 0: no limit
    cpu_percent: int = 0
    max_processes: int = 0
    builtin: bool = False

    def __post_init__(self) -> None:
        self.network = LEGACY_NETWORK_MODES.get(self.network, self.network)

    def validate(self, *, check_paths: bool = True) -> None:
        """Raise VirtStudioError naming the first thing that is wrong."""
        if not _NAME_RE.fullmatch(self.name or ""):
            raise VirtStudioError(
                f"“{self.name}” is not a usable profile name: use 1-64 letters, digits, "
                "spaces, dots, dashes or underscores, starting with a letter or digit.")
        if self.network not in NETWORK_MODES:
            raise VirtStudioError(f"Unknown network mode “{self.network}”.")
        if self.network == "bridge" and not _IFNAME_RE.fullmatch(self.bridge or ""):
            raise VirtStudioError(
                f"“{self.bridge}” is not a bridge name (1-15 letters, digits, . _ -).")
        if self.display not in DISPLAY_MODES:
            raise VirtStudioError(f"Unknown display mode “{self.display}”.")
        if self.dbus not in DBUS_MODES:
            raise VirtStudioError(f"Unknown D-Bus mode “{self.dbus}”.")
        for name in self.dbus_talk:
            if not _BUS_NAME_RE.fullmatch(name):
                raise VirtStudioError(f"“{name}” is not a D-Bus name.")
        for label, value, top in (("Memory limit", self.memory_mb, 1 << 20),
                                  ("CPU limit", self.cpu_percent, 100 * 1024),
                                  ("Process limit", self.max_processes, 1 << 22)):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise VirtStudioError(f"{label} must be a whole number from 0 (none) to {top}.")
        for path in self.read_only:
            _check_path(path)
            resolve_grant(path, writable=False, must_exist=check_paths)
        for path in self.read_write:
            _check_path(path)
            resolve_grant(path, writable=True, must_exist=check_paths)

    def permissions(self) -> list[str]:
        """What the profile grants, in plain words, one line each."""
        lines = ["Sees the system's programs and libraries, read-only, and a minimal /etc of "
                 "its own (never the system's passwords, keys or settings)",
                 "Runs as an ordinary user, never as root (started by root, it runs as the "
                 "unprivileged user nobody)"]
        lines.append("Has a private home folder of its own; your home is hidden"
                     if self.private_home else "Has no home folder; your home is hidden")
        lines += [f"Can read {p}" for p in self.read_only]
        lines += [f"Can read and change {p}" for p in self.read_write]
        lines.append({
            "none": "No network at all",
            "internet": "Reaches the internet through a network of its own (user-mode "
                        "networking); cannot reach this computer's own services or sockets",
            "bridge": f"Has its own network, joined to bridge {self.bridge}",
        }[self.network])
        lines.append({
            "none": "Cannot show windows",
            "x11": "Can show windows on X11 (X11 lets it see other windows and keystrokes)",
            "wayland": "Can show windows on Wayland",
        }[self.display])
        lines.append("Can play and record sound" if self.sound else "No sound")
        if self.dbus == "filtered":
            talk = ", ".join(self.dbus_talk) or "nothing"
            lines.append(f"Can talk on the session bus only to: {talk}")
        else:
            lines.append("No access to the session bus (D-Bus)")
        lines.append("Cannot type into your terminal or use kernel interfaces sandboxes deny")
        limits = []
        if self.memory_mb:
            limits.append(f"{self.memory_mb} MiB of memory")
        if self.cpu_percent:
            limits.append(f"{self.cpu_percent} % of one CPU")
        if self.max_processes:
            limits.append(f"{self.max_processes} processes")
        lines.append("Limited to " + ", ".join(limits) if limits else "No resource limits")
        return lines

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("builtin")
        return json.dumps({"format": PROFILE_FORMAT, "profile": data}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SandboxProfile:
        """Read an exported profile; raise VirtStudioError when it is not one."""
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            raise VirtStudioError(f"This is not a profile file: {exc}.") from None
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT or not isinstance(
                data.get("profile"), dict):
            raise VirtStudioError("This is not a VirtStudio sandbox profile.")
        known = {f.name for f in fields(cls)} - {"builtin"}
        raw = data["profile"]
        unknown = set(raw) - known
        if unknown:
            # A newer file may grant more than this version can show: refuse, not ignore.
            raise VirtStudioError(
                "The profile has settings this version does not know: "
                + ", ".join(sorted(unknown)) + ".")
        try:
            profile = cls(**raw)
        except TypeError as exc:
            raise VirtStudioError(f"The profile is incomplete: {exc}.") from None
        profile.validate(check_paths=False)
        return profile

    def copy(self, **changes: Any) -> SandboxProfile:
        data = asdict(self)
        data.update(changes)
        return SandboxProfile(**data)


def _check_path(path: object) -> None:
    if not isinstance(path, str):
        raise VirtStudioError(f"“{path}” is not a path.")
