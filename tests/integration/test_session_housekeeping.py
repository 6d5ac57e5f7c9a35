"""The session's housekeeping (tests/lab/leftovers.py, tests/conftest.py): a killed run's
vstest-* objects are removed, another live session's are left alone, and a session that
leaves something behind fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.lab import leftovers
from tests.lab.daemon import SYSTEM_URI, PrivateLibvirtd

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes network namespaces")


def _dead_pid() -> int:
    """The pid of a process that has just ended (what a killed session leaves in names)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)


def _netns_exists(name: str) -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return any(line.split(" ", 1)[0] == name for line in out.stdout.splitlines())


def _dir_pool(name: str, folder: Path) -> None:
    folder.mkdir()
    libvirt.open(SYSTEM_URI).storagePoolCreateXML(
        f"<pool type='dir'><name>{name}</name><target><path>{folder}</path></target></pool>", 0)


def _pool_names() -> set[str]:
    return {p.name() for p in libvirt.open(SYSTEM_URI).listAllStoragePools(0)}


@pytest.fixture
def other_session(tmp_path):
    """A stand-in for another live pytest session: a process named pytest that is not ours
    (setsid, so its parent is not this session)."""
    script = tmp_path / "pytest"
    # No exec: the shell itself must keep the name pytest while it waits.
    script.write_text('#!/bin/sh\necho $$ > "$1"\nsleep 600\n')
    script.chmod(0o755)
    pid_file = tmp_path / "pid"
    subprocess.run(["setsid", "-f", str(script), str(pid_file)], check=True,
                   timeout=30)
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 30))
    yield pid
    os.killpg(pid, signal.SIGKILL)  # the group this fixture's setsid made


def test_a_killed_runs_leftovers_are_found_and_removed(system_libvirtd, tmp_path):
    dead = _dead_pid()
    pool, netns = f"vstest-leftover-pool-{dead}", f"vstest-leftover-ns-{dead}"
    try:
        off_gui_thread(_dir_pool, pool, tmp_path / "pool")
        _netns(netns)
        found = leftovers.ours(off_gui_thread(leftovers.find_all), at_start=True)
        names = {item.name for item in found}
        assert {pool, netns} <= names
        assert leftovers.remove([i for i in found if i.name in (pool, netns)]) == []
        assert pool not in off_gui_thread(_pool_names)
        assert not _netns_exists(netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        off_gui_thread(leftovers.remove, [leftovers.Leftover("pool", pool)])


def test_another_live_sessions_objects_are_left_alone(other_session):
    theirs, unnamed = f"vstest-theirs-ns-{other_session}", "vstest-unnamed-ns-abc"
    try:
        _netns(theirs)
        _netns(unnamed)
        found = off_gui_thread(leftovers.find_all)
        assert {theirs, unnamed} <= {item.name for item in found}
        for at_start in (True, False):
            kept = {item.name for item in leftovers.ours(found, at_start=at_start)}
            # Named with its pid: its own. Without a pid: maybe its own while it runs.
            assert theirs not in kept and unnamed not in kept
    finally:
        for name in (theirs, unnamed):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def test_a_session_that_leaves_something_behind_fails(tmp_path):
    test_file = tmp_path / "test_leaves_a_namespace.py"
    test_file.write_text(
        "import os, subprocess\n\n"
        "def test_leaves_one():\n"
        "    subprocess.run(['ip', 'netns', 'add', f'vstest-forgotten-{os.getpid()}'],"
        " check=True)\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(tmp_path), str(test_file)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
        text=True, timeout=300)
    out = result.stdout + result.stderr
    assert "1 passed" in out
    assert result.returncode == 1, out
    assert "SESSION CHECK FAILED" in out and "network namespace vstest-forgotten-" in out
    assert not [line for line in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout.splitlines()
        if line.startswith("vstest-forgotten-")]  # and it is gone, for the next run


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # ended, not yet reaped


def test_a_killed_sessions_private_daemon_is_stopped():
    # A session that dies without closing its private daemon, as a killed run does.
    script = ("import os\nfrom tests.lab.daemon import PrivateLibvirtd\n"
              "daemon = PrivateLibvirtd()\ndaemon.start()\n"
              "print(daemon.pid, daemon.dir, flush=True)\nos._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), text=True, timeout=120)
    pid_text, folder = out.stdout.split()
    pid = int(pid_text)
    try:
        found = [item for item in off_gui_thread(leftovers.find_all)
                 if item.kind == "private server" and item.name == f"libvirtd {pid}"]
        assert found and leftovers.ours(found, at_start=True) == found
        assert leftovers.remove(found) == []
        wait_for(lambda: _gone(pid), timeout=60)
        assert not Path(folder).exists()
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)  # the daemon this test's child started


def test_a_session_during_which_the_daemon_stopped_answering_fails(tmp_path):
    # A private daemon stands in for the system one: this test may stop it.
    with PrivateLibvirtd() as daemon:
        test_file = tmp_path / "test_daemon_goes.py"
        test_file.write_text(
            "import os, signal\n\n"
            "def test_the_daemon_goes():\n"
            "    os.kill(int(os.environ['DAEMON_PID']), signal.SIGKILL)\n")
        env = dict(os.environ, PYTHONPATH=str(REPO), DAEMON_PID=str(daemon.pid),
                   VIRTSTUDIO_TEST_CHECKED_URI=daemon.uri)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
             "-q", "--rootdir", str(tmp_path), str(test_file)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert "1 passed" in out
    assert result.returncode == 1, out
    assert "SESSION CHECK FAILED" in out and "does not answer now" in out
