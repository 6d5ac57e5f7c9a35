"""Read what a .desktop file launches (Desktop Entry Specification, the parts we need)."""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

_FIELD_CODE = re.compile(r"%[fFuUdDnNickvm]")
APPLICATION_DIRS = (Path("/usr/share/applications"), Path("/usr/local/share/applications"))


@dataclass(frozen=True)
class DesktopApp:
    name: str
    command: tuple[str, ...]
    icon: str = ""
    source: str = ""


def read_desktop_file(path: Path) -> DesktopApp:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
        entry = parser["Desktop Entry"]
    except (OSError, configparser.Error, KeyError):
        raise VirtStudioError(f"{path.name} is not a desktop entry.") from None
    exec_line = entry.get("Exec", "").strip()
    if entry.get("Type", "Application") != "Application" or not exec_line:
        raise VirtStudioError(f"{path.name} does not launch an application.")
    try:
        argv = [a for a in shlex.split(_FIELD_CODE.sub("", exec_line)) if a]
    except ValueError:
        raise VirtStudioError(f"{path.name} has an Exec line that cannot be read.") from None
    if not argv:
        raise VirtStudioError(f"{path.name} does not launch an application.")
    return DesktopApp(entry.get("Name", path.stem), tuple(argv), entry.get("Icon", ""),
                      str(path))


def installed_apps(dirs: tuple[Path, ...] = APPLICATION_DIRS) -> list[DesktopApp]:
    apps = []
    for folder in dirs:
        for path in sorted(folder.glob("*.desktop")) if folder.is_dir() else []:
            try:
                app = read_desktop_file(path)
            except VirtStudioError:
                continue
            apps.append(app)
    return sorted(apps, key=lambda a: a.name.casefold())
