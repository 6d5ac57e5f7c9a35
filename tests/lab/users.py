"""Real unprivileged users for tests: made with useradd, removed with userdel after.

Every name is ``vstest-<label>-<pid>-<random>`` (tests/lab/leftovers.py tells by the pid
whose a left-over user is).  ``run_as`` starts a command as the user with ``runuser`` and
a clean environment.  An interpreter that lives in a
folder the user cannot enter (a pyenv under /root) is shown to the user inside
a private mount namespace only: a tmpfs over the closed folder holds a bind
of the one entry needed, so nothing on the system is chmod-ed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import wait_for
from tests.lab.leftovers import session_name

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class LabUser:
    name: str
    uid: int
    gid: int
    home: str


def users_unavailable() -> str:
    if os.geteuid() != 0:
        return "making users needs root"
    for tool in ("useradd", "userdel", "runuser", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return ""


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@contextmanager
def lab_user(label: str, groups: Sequence[str] = ()) -> Iterator[LabUser]:
    """A new user ``vstest-<label>-<pid>-<random>`` (in ``groups``), removed with its home
    after."""
    name = session_name(label, max_length=32)  # useradd's limit
    argv = ["useradd", "--create-home", "--shell", "/bin/sh"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    subprocess.run([*argv, name], check=True, capture_output=True, text=True)
    entry = pwd.getpwnam(name)
    try:
        yield LabUser(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    finally:
        # What the user left running (a session libvirtd, say) was started by this test.
        for pid in _pids_of(entry.pw_uid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not _pids_of(entry.pw_uid), timeout=10)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def user_env(user: LabUser, **extra: str) -> list[str]:
    """``env -i`` arguments: the minimal environment a login would give, plus ``extra``."""
    values = {"HOME": user.home, "USER": user.name, "LOGNAME": user.name, "PATH": SAFE_PATH,
              "LANG": "C.UTF-8", **extra}
    return ["env", "-i", *(f"{k}={v}" for k, v in values.items())]


def _closed_ancestor(path: Path) -> tuple[Path, Path] | None:
    """The first folder above ``path`` others cannot enter, and its entry on the way."""
    for child in [path, *path.parents][::-1][1:]:
        parent = child.parent
        if not os.stat(parent).st_mode & 0o001:
            return parent, child
    return None


def interpreter_binds() -> list[tuple[str, str]]:
    """(hidden folder, entry to show) for this interpreter, when a user could not run it."""
    real = Path(os.path.realpath(sys.executable))
    closed = _closed_ancestor(real)
    return [(str(closed[0]), str(closed[1]))] if closed else []


# Fixed text; paths come as positional arguments, never as shell text.  First the
# (closed folder, entry) pairs, then the (file, over this file) pairs.
_SHOW_THEN_RUN = (
    'set -e; stage="$1"; shift; '
    'while [ "$1" != "--" ]; do '
    'mount --bind "$2" "$stage"; mount -t tmpfs -o mode=0755 vstest "$1"; '
    'mkdir -p "$2"; mount --move "$stage" "$2"; shift 2; done; shift; '
    'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"')


def run_as(user: LabUser, argv: Sequence[str], *, env: dict[str, str] | None = None,
           binds: Sequence[tuple[str, str]] = (), file_binds: Sequence[tuple[str, str]] = (),
           input: str | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as ``user`` (``runuser``) in a mount namespace of its own when asked.

    ``binds`` are (closed folder, entry in it) to show; ``file_binds`` (source,
    target) put a file (a daemon's socket) over another, for this command only.
    """
    command = ["runuser", "-u", user.name, "--", *user_env(user, **(env or {})), *argv]
    stage = ""
    if binds or file_binds:
        stage = tempfile.mkdtemp(prefix="vstest-stage-")
        folders = [arg for pair in binds for arg in pair]
        files = [arg for pair in file_binds for arg in pair]
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   _SHOW_THEN_RUN, "sh", stage, *folders, "--", *files, "--", *command]
    try:
        return subprocess.run(command, input=input, capture_output=True, text=True,
                              timeout=timeout)
    finally:
        if stage:
            os.rmdir(stage)
