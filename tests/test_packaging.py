"""The desktop entry and AppStream metadata validate with the distributions' own tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parent.parent / "virtstudio" / "resources"
APP_ID = "org.virtstudio.VirtStudio"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run 'make setup'")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_desktop_entry_is_valid():
    result = _run("desktop-file-validate", str(RESOURCES / f"{APP_ID}.desktop"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_metainfo_is_valid():
    result = _run("appstreamcli", "validate", "--no-net",
                  str(RESOURCES / f"{APP_ID}.metainfo.xml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_icon_is_shipped():
    icon = RESOURCES / "icons" / "hicolor" / "scalable" / "apps" / "virtstudio.svg"
    assert icon.read_text().lstrip().startswith("<svg")
