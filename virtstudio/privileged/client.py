"""Ask for a host change: directly when already root, else through pkexec and the helper.

Only the installed helper is ever run, and only when no one but root could have
changed it: pkexec runs the program as root, so a helper (or a folder above
it) that the user can write would let anything the user runs become root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from virtstudio.core.errors import VirtStudioError
from virtstudio.privileged.operations import check_request, perform

# The program the polkit policy lets pkexec start (packaging/polkit/virtstudio-helper).
INSTALLED_HELPER = "/usr/libexec/virtstudio/virtstudio-helper"
# pkexec's answers when authorisation was refused or dismissed, or the program not run.
_NOT_AUTHORISED = (126, 127)


def _unsafe_reason(path: Path) -> str:
    try:
        st = path.lstat()
    except OSError:
        return f"{path} does not exist"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if st.st_uid != 0:
        return f"{path} is not owned by root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} can be changed by users other than root"
    return ""


def check_helper(path: str = INSTALLED_HELPER) -> str:
    """``path`` when it and every folder above it are root's alone; else a refusal."""
    helper = Path(path)
    if not helper.is_absolute():
        raise VirtStudioError(f"The privileged helper must be an absolute path, not {path}.")
    problems = [_unsafe_reason(p) for p in (helper, *helper.parents)]
    problem = next((p for p in problems if p), "")
    if not problem and not stat.S_ISREG(helper.stat().st_mode):
        problem = f"{path} is not a regular file"
    if problem:
        raise VirtStudioError(
            "The privileged helper is not installed safely, so changes that need "
            f"administrator rights are not possible: {problem}. Install VirtStudio's package "
            "(or, from a checkout, run packaging/dev/install-helper as root).")
    return path


def helper_argv(path: str = INSTALLED_HELPER) -> list[str]:
    """The command that runs the helper as root; VirtStudioError when it is not safe."""
    if shutil.which("pkexec") is None:
        raise VirtStudioError("This change needs administrator rights, and pkexec (polkit) "
                              "is not installed.")
    return ["pkexec", check_helper(path)]


def run_privileged(op: str, **args: Any) -> Any:
    """Perform ``op``; raise VirtStudioError with the reason when refused or failed.

    Blocking (it may wait for the user's password): call it from a job thread.
    """
    request = {"op": op, "args": args}
    check_request(request)  # refuse bad input before asking for a password
    if os.geteuid() == 0:
        return perform(request)
    return run_through(helper_argv(), request)


def run_through(argv: list[str], request: dict[str, Any]) -> Any:
    """Send ``request`` to the helper started by ``argv``; its answer, or its refusal."""
    done = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True,
                          timeout=600)
    try:
        answer = json.loads(done.stdout or "{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if done.returncode in _NOT_AUTHORISED and not answer:
        raise VirtStudioError("Administrator rights were not granted; nothing was changed.",
                              done.stderr)
    if not answer.get("ok"):
        raise VirtStudioError(str(answer.get("error") or "The privileged helper failed."),
                              str(answer.get("detail") or done.stderr))
    return answer.get("result")
