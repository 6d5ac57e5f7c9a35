"""Loop devices over sparse files, for tests that need a real block device."""

from __future__ import annotations

import subprocess

import pytest

MiB = 1024 * 1024


@pytest.fixture
def make_loop(tmp_path):
    """Call with a size to get a fresh loop device; all are detached afterwards."""
    made = []

    def make(size: int = 64 * MiB) -> str:
        backing = tmp_path / f"loop{len(made)}.img"
        with backing.open("wb") as f:
            f.truncate(size)
        device = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                                capture_output=True, text=True, timeout=60).stdout.strip()
        made.append(device)
        return device

    yield make
    for device in made:
        subprocess.run(["wipefs", "-a", "-q", device], capture_output=True, timeout=60)
        subprocess.run(["losetup", "-d", device], capture_output=True, timeout=60)
