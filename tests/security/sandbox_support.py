"""Shared by the sandbox attack-class tests: a manager, and escape programs built with gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sandbox.conftest import run, usable_by_sandbox, wait_exit
from virtstudio.sandbox.manager import SandboxManager

PROGRAMS = Path(__file__).parent / "sandbox_programs"

__all__ = ["build_program", "make_manager", "run", "usable_by_sandbox", "wait_exit"]


def make_manager(tmp_path: Path):
    """A manager with its own data folder; stops what it started when the test ends."""
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: run 'make setup'")
    manager = SandboxManager(tmp_path / "data", sample_interval=0.2)
    yield manager
    manager.stop_all()
    for sandbox in manager.sandboxes:
        wait_exit(sandbox)


def build_program(name: str, out_dir: Path) -> Path:
    """Compile ``sandbox_programs/<name>.c`` into ``out_dir`` (granted read-only to the sandbox)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the escape programs")
    out_dir.mkdir(exist_ok=True)
    usable_by_sandbox(out_dir)
    binary = out_dir / name
    subprocess.run([gcc, "-O1", "-Wall", "-o", str(binary), str(PROGRAMS / f"{name}.c")],
                   check=True, capture_output=True, timeout=120)
    binary.chmod(0o755)
    return binary
