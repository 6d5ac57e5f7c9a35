"""The system bus and polkitd for tests on machines without an init system.

``polkit_running`` starts only what is not running yet (``dbus-daemon
--system`` and polkitd) and stops only what it started, by pid.
``allow_action`` writes a rules file under /etc/polkit-1/rules.d that answers
YES for one user and one action, and removes it afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import wait_for

BUS_SOCKET = Path("/run/dbus/system_bus_socket")
POLKITD = Path("/usr/lib/polkit-1/polkitd")
RULES_DIR = Path("/etc/polkit-1/rules.d")
POLKIT_NAME = "org.freedesktop.PolicyKit1"


def polkit_unavailable() -> str:
    if os.geteuid() != 0:
        return "starting polkitd needs root"
    if shutil.which("dbus-daemon") is None or shutil.which("dbus-send") is None:
        return "dbus-daemon is not installed"
    if not POLKITD.exists():
        return "polkitd is not installed"
    if shutil.which("pkexec") is None:
        return "pkexec is not installed"
    return ""


def _bus_answers() -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(BUS_SOCKET))
    except OSError:
        return False
    return True


def _polkit_on_bus() -> bool:
    done = subprocess.run(
        ["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{POLKIT_NAME}"],
        capture_output=True, text=True, timeout=10)
    return "boolean true" in done.stdout


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def gone() -> bool:
        # A forked daemon's parent is init, which may not reap it here: a zombie is gone.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state == "Z"

    wait_for(gone, timeout=10)


@contextmanager
def polkit_running() -> Iterator[None]:
    """The system bus and polkitd answer inside; what this started is stopped after."""
    started: list[int] = []
    polkitd: subprocess.Popen[bytes] | None = None
    try:
        if not _bus_answers():
            Path("/run/dbus").mkdir(parents=True, exist_ok=True)
            BUS_SOCKET.unlink(missing_ok=True)  # left by a bus that died
            Path("/run/dbus/pid").unlink(missing_ok=True)
            done = subprocess.run(["dbus-daemon", "--system", "--fork", "--print-pid"],
                                  capture_output=True, text=True, check=True, timeout=30)
            started.append(int(done.stdout.split()[0]))
            wait_for(_bus_answers, timeout=10)
        if not _polkit_on_bus():
            polkitd = subprocess.Popen([str(POLKITD), "--no-debug"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(_polkit_on_bus, timeout=20, interval=0.1)
        yield
    finally:
        if polkitd is not None:
            _stop(polkitd.pid)
            polkitd.wait(10)
        for pid in started:
            _stop(pid)


@contextmanager
def allow_action(user: str, action: str) -> Iterator[Path]:
    """polkit answers YES to ``user`` for ``action`` while inside; the rules file goes after."""
    rules = RULES_DIR / f"10-{user}.rules"
    RULES_DIR.mkdir(parents=True, exist_ok=True)
    # json.dumps quotes the names as JavaScript strings.
    rules.write_text(
        "polkit.addRule(function(action, subject) {\n"
        f"    if (subject.user == {json.dumps(user)} && action.id == {json.dumps(action)})\n"
        "        return polkit.Result.YES;\n"
        "});\n")
    rules.chmod(0o644)
    try:
        yield rules
    finally:
        rules.unlink(missing_ok=True)
