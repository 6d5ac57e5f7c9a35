"""The privileged helper's entry point: one JSON request on stdin, one JSON answer on stdout.

Started by pkexec (see packaging/polkit) when VirtStudio does not run as root.
It performs only the operations in ``operations.OPERATIONS``.
"""

from __future__ import annotations

import json
import sys

from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.privileged.operations import perform

MAX_REQUEST = 64 * 1024


def main() -> int:
    raw = sys.stdin.read(MAX_REQUEST + 1)
    try:
        if len(raw) > MAX_REQUEST:
            raise VirtStudioError("The request is too large.")
        try:
            request = json.loads(raw)
        except ValueError:
            raise VirtStudioError("The request is not JSON.") from None
        result = perform(request)
    except Exception as exc:  # every failure goes back as words, never a traceback
        error = describe(exc)
        json.dump({"ok": False, "error": error.message, "detail": error.detail}, sys.stdout)
        return 1
    json.dump({"ok": True, "result": result}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
