"""The privileged helper end to end: a real user, real pkexec, a real polkitd.

Allowed (a polkit rule says YES for the test user), the user's request runs as
root and the helper still re-checks every device; denied (no rule, no
authentication agent), nothing runs and the client says so in words.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.lab.polkit import allow_action, polkit_running, polkit_unavailable
from tests.lab.users import LabUser, lab_user, run_as, users_unavailable
from tests.network.conftest import ip, netns  # noqa: F401 - the fixture itself
from virtstudio.privileged.client import INSTALLED_HELPER

REPO = Path(__file__).resolve().parents[2]
ACTION = "org.virtstudio.VirtStudio.host-change"
VENV_PYTHON = "/usr/lib/virtstudio/venv/bin/python3"

pytestmark = pytest.mark.skipif(bool(users_unavailable() or polkit_unavailable()),
                                reason=users_unavailable() or polkit_unavailable())

# The application's own client, run by the user: checks the helper, then pkexec.
CLIENT = """
import json, sys
from virtstudio.core.errors import VirtStudioError
from virtstudio.privileged.client import run_privileged
request = json.loads(sys.argv[1])
try:
    print(json.dumps({"result": run_privileged(request["op"], **request["args"])}))
except VirtStudioError as exc:
    print(json.dumps({"error": exc.message}))
"""


@pytest.fixture(scope="module")
def installed_helper() -> Iterator[str]:
    """The helper as the package installs it; installed from this checkout when missing."""
    added = not Path(INSTALLED_HELPER).exists()
    if added:
        subprocess.run([str(REPO / "packaging/dev/install-helper")], check=True,
                       capture_output=True, timeout=600)
    try:
        yield INSTALLED_HELPER
    finally:
        if added:
            subprocess.run([str(REPO / "packaging/dev/install-helper"), "--remove"],
                           capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def polkit() -> Iterator[None]:
    with polkit_running():
        yield


@pytest.fixture
def user(polkit) -> Iterator[LabUser]:
    with lab_user("pk") as made:
        yield made


def client(user: LabUser, op: str, **args: object) -> dict:
    """The user's VirtStudio asking for ``op``: the checkout's code, the installed Python."""
    done = run_as(user, [VENV_PYTHON, "-c", CLIENT, json.dumps({"op": op, "args": args})],
                  env={"PYTHONPATH": str(REPO)})
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_pkexec_runs_the_helper_for_an_allowed_user(installed_helper, user, netns):  # noqa: F811
    ns = netns("pkexec")
    with allow_action(user.name, ACTION):
        # polkitd reads a new rules file on its own a moment later.
        answer = wait_for(lambda: (a := client(user, "create_bridge", name="vspk0", netns=ns))
                          and "error" not in a and a, timeout=20, interval=0.5)
    assert answer == {"result": None}
    assert "vspk0" in ip("-n", ns, "link", "show").stdout


def test_pkexec_denied_changes_nothing(installed_helper, user, netns):  # noqa: F811
    ns = netns("pkdeny")
    answer = client(user, "create_bridge", name="vspk1", netns=ns)
    assert answer == {"error": "Administrator rights were not granted; nothing was changed."}
    assert "vspk1" not in ip("-n", ns, "link", "show").stdout
    direct = run_as(user, ["pkexec", installed_helper],
                    input=json.dumps({"op": "create_bridge", "args": {"name": "vspk1",
                                                                      "netns": ns}}))
    assert direct.returncode in (126, 127) and not direct.stdout


def test_allowed_user_still_cannot_erase_a_disk_without_wipe(installed_helper, user,
                                                            tmp_path):
    image = tmp_path / "vstest-pk-disk.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True,
                            text=True, check=True).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
        with allow_action(user.name, ACTION):
            def answered() -> dict | None:
                a = client(user, "create_volume_group", name="vstestpkvg", devices=[device])
                return None if "not granted" in a.get("error", "") else a

            answer = wait_for(answered, timeout=20, interval=0.5)
        assert "is not blank" in answer["error"] and "ext4" in answer["error"]
        assert b"ext4" in subprocess.run(["blkid", "-p", device], capture_output=True).stdout
    finally:
        subprocess.run(["vgremove", "--yes", "--force", "vstestpkvg"], capture_output=True)
        subprocess.run(["losetup", "--detach", device], capture_output=True)


def test_helper_and_its_folders_belong_to_root(installed_helper):
    for path in (Path(installed_helper), *Path(installed_helper).parents):
        st = path.stat()
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
    assert os.access(installed_helper, os.X_OK)
