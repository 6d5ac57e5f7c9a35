"""Real bubblewrap sandboxes, run by a manager with a data folder of the test's own."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from virtstudio.sandbox.manager import Sandbox, SandboxManager


@pytest.fixture
def manager(tmp_path):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: run 'make setup'")
    mgr = SandboxManager(tmp_path / "data", sample_interval=0.2)
    yield mgr
    mgr.stop_all()
    for sandbox in mgr.sandboxes:
        wait_exit(sandbox)


def wait_exit(sandbox: Sandbox, timeout: float = 30.0) -> Sandbox:
    deadline = time.monotonic() + timeout
    while sandbox.running or sandbox.ended is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"sandbox {sandbox.title} still running after {timeout} s")
        time.sleep(0.02)
    return sandbox


def run(manager: SandboxManager, profile, script: str, **kw) -> tuple[int, str]:
    """Run a shell script in a sandbox; return its exit code and output."""
    sandbox = wait_exit(manager.launch(profile, ["/bin/sh", "-c", script], **kw))
    return sandbox.exit_code, sandbox.log_text()


def usable_by_sandbox(path: Path, *, write: bool = False) -> Path:
    """Let the sandbox's user open ``path``: started by root, sandboxes run as nobody."""
    if os.geteuid() == 0:
        path.chmod(0o777 if write else 0o755)
    return path
