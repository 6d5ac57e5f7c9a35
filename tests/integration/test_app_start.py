"""The entry module as a user starts it: `python -m virtstudio` finds the local libvirtd
(or is told to show the demo host), draws its window and exits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]


def start_app(tmp_path: Path, *args: str) -> Path:
    shot = tmp_path / "window.png"
    # A private settings folder: no saved connection of the user's leaks in or out.
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "virtstudio", *args, "--screenshot", str(shot)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return shot


@pytest.mark.parametrize("args", [(), ("--demo",)], ids=["local-daemon", "demo"])
def test_the_app_starts_draws_and_exits(system_libvirtd, tmp_path, args):
    image = QImage(str(start_app(tmp_path, *args)))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 500
    # Not a blank window: the toolbar, lists and panes put many colours on it.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}
    assert len(colours) > 20
