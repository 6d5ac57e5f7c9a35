"""Ask for a host change: directly when already root, else through pkexec and the helper."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from virtstudio.core.errors import VirtStudioError
from virtstudio.privileged.operations import check_request, perform

# Installed systems run the helper through this wrapper, which the polkit policy names.
INSTALLED_HELPER = "/usr/libexec/virtstudio/virtstudio-helper"


def helper_argv() -> list[str]:
    if os.path.exists(INSTALLED_HELPER):
        return [INSTALLED_HELPER]
    return [sys.executable, "-m", "virtstudio.privileged.helper"]


def run_privileged(op: str, **args: Any) -> Any:
    """Perform ``op``; raise VirtStudioError with the reason when refused or failed.

    Blocking (it may wait for the user's password): call it from a job thread.
    """
    request = {"op": op, "args": args}
    check_request(request)  # refuse bad input before asking for a password
    if os.geteuid() == 0:
        return perform(request)
    if shutil.which("pkexec") is None:
        raise VirtStudioError("This change needs administrator rights, and pkexec (polkit) "
                              "is not installed.")
    return _through(["pkexec", *helper_argv()], request)


def _through(argv: list[str], request: dict[str, Any]) -> Any:
    done = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True,
                          timeout=600)
    try:
        answer = json.loads(done.stdout or "{}")
    except ValueError:
        answer = {}
    if done.returncode in (126, 127) and not answer:
        raise VirtStudioError("Administrator rights were not granted; nothing was changed.")
    if not answer.get("ok"):
        raise VirtStudioError(answer.get("error") or "The privileged helper failed.",
                              answer.get("detail", done.stderr))
    return answer.get("result")
