"""Sandboxes started by an ordinary user: that user inside, networking by pasta joined later.

The test process is root, so a child process imports VirtStudio, then drops to
the unprivileged user nobody for good before it launches anything: every
launch below runs exactly as it would for a user who started VirtStudio.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from virtstudio.sandbox.identity import UNPRIVILEGED_GID, UNPRIVILEGED_UID

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys, time
from pathlib import Path
from virtstudio.sandbox.manager import SandboxManager
from virtstudio.sandbox.profile import SandboxProfile

work, abstract = Path(sys.argv[1]), sys.argv[2]
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
os.environ["HOME"] = str(work / "home")
manager = SandboxManager(work / "data")

def run(profile, script):
    sandbox = manager.launch(profile, ["/bin/sh", "-c", script])
    deadline = time.monotonic() + 30
    while sandbox.ended is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"code": sandbox.exit_code, "out": sandbox.log_text()}

probe = ("echo \"U\"\"ID=$(id -u)\"; echo \"PASS\"\"WD=$(grep -c . /etc/passwd)\"; "
         "echo \"NET\"\"=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort "
         "| tr '\\n' ,)\"; echo ok > " + str(work / "granted") + "/ok; "
         "/usr/bin/python3 -c \"import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n "
         "s.connect(b'\\0" + abstract + "'); print('REACHED' + '_HOST')\n"
         "except OSError as e: print('refused', e.errno)\"")
results = {network: run(SandboxProfile(name="t", network=network,
                                       read_write=[str(work / "granted")]), probe)
           for network in ("none", "internet")}
print(json.dumps(results))
"""


@pytest.fixture
def nobody_folder():
    """A folder nobody owns, reachable from /tmp (the test's own tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="vstest-user-"))
    folder.chmod(0o755)
    for sub in ("home", "granted"):
        (folder / sub).mkdir()
    for path in (folder, folder / "home", folder / "granted"):
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_sandbox_of_an_ordinary_user(nobody_folder):
    import socket

    name = f"vstest-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(b"\0" + name.encode())
    server.listen(1)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(nobody_folder), name],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for network, interfaces in (("none", "lo,"), ("internet", "eth0,lo,")):
        out = results[network]["out"]
        found = dict(line.split("=", 1) for line in out.splitlines()
                     if line.split("=", 1)[0] in ("UID", "PASSWD", "NET"))
        assert results[network]["code"] == 0, out
        assert found["UID"] == str(UNPRIVILEGED_UID), out  # the user, as the user
        assert int(found["PASSWD"]) <= 2, out  # its own passwd entries, not the host's
        assert found["NET"] == interfaces, out
        assert "REACHED_HOST" not in out and "refused 111" in out, out
    assert (nobody_folder / "granted" / "ok").read_text() == "ok\n"
