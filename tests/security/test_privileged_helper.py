"""The privileged helper trusts no caller: it reads each device itself before writing it.

A device carrying a file system, a partition table or an LVM label is refused
unless the request says ``wipe`` (sent only after the user typed the device's
name); a mounted device is refused even then.  The polkit action asks every
time, and the client runs only a helper that nobody but root can change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstudio.core.errors import VirtStudioError

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "packaging/polkit/org.virtstudio.VirtStudio.policy"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and LVM need root")


def helper(request: dict) -> tuple[int, dict]:
    """The helper as pkexec would start it: a separate process reading one JSON request."""
    done = subprocess.run([sys.executable, "-m", "virtstudio.privileged.helper"],
                          input=json.dumps(request), capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def signatures(device: str) -> list[str]:
    out = subprocess.run(["wipefs", "--no-act", "--json", device], capture_output=True,
                         text=True, check=True).stdout
    return [s["type"] for s in json.loads(out or '{"signatures": []}')["signatures"]]


# With the session's pid: two sessions on one machine never share, or remove, a group.
VG, TAKEN_VG = f"vstest-helper-vg-{os.getpid()}", f"vstest-helper-taken-{os.getpid()}"
VGS = (VG, TAKEN_VG)


@pytest.fixture
def make_loop_device(tmp_path: Path) -> Iterator:
    """64 MiB loop devices on vstest image files, detached (and their VGs removed) after."""
    if shutil.which("losetup") is None or shutil.which("pvcreate") is None:
        pytest.skip("losetup and lvm2 are needed")
    made: list[str] = []

    def make() -> str:
        image = tmp_path / f"vstest-helper-{os.getpid()}-disk{len(made)}.img"
        with open(image, "wb") as f:
            f.truncate(64 << 20)
        device = subprocess.run(["losetup", "--find", "--show", str(image)],
                                capture_output=True, text=True, check=True).stdout.strip()
        made.append(device)
        return device

    try:
        yield make
    finally:
        for vg in VGS:
            subprocess.run(["vgremove", "--yes", "--force", vg], capture_output=True)
        for device in made:
            subprocess.run(["pvremove", "--yes", "--force", device], capture_output=True)
            subprocess.run(["losetup", "--detach", device], capture_output=True)


@pytest.fixture
def loop_device(make_loop_device) -> str:
    return make_loop_device()


def make_ext4(device: str) -> None:
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)


def make_gpt(device: str) -> None:
    subprocess.run(["parted", "--script", device, "mklabel", "gpt"], check=True,
                   capture_output=True)


@pytest.mark.parametrize(("prepare", "kind", "words"), [
    (make_ext4, "ext4", "file system or signature (ext4)"),
    (make_gpt, "gpt", "gpt partition table"),
])
def test_helper_refuses_a_device_carrying_a_signature(loop_device, prepare, kind, words):
    prepare(loop_device)
    for request in ({"op": "create_volume_group",
                     "args": {"name": VG, "devices": [loop_device]}},
                    {"op": "create_partition_table",
                     "args": {"device": loop_device, "label": "dos"}}):
        code, answer = helper(request)
        assert code == 1 and not answer["ok"], answer
        assert words in answer["error"] and loop_device in answer["error"]
        assert "typing the device's name" in answer["error"]
        assert kind in signatures(loop_device)  # nothing was changed
    assert subprocess.run(["vgs", VG], capture_output=True).returncode != 0


def test_helper_refuses_an_lvm_physical_volume(loop_device):
    subprocess.run(["pvcreate", "--yes", loop_device], check=True, capture_output=True)
    code, answer = helper({"op": "create_partition_table",
                           "args": {"device": loop_device, "label": "gpt"}})
    assert code == 1 and "an LVM physical volume" in answer["error"]
    assert "LVM2_member" in signatures(loop_device)


def test_helper_wipes_and_writes_when_the_request_says_wipe(loop_device):
    make_ext4(loop_device)
    code, answer = helper({"op": "create_volume_group",
                           "args": {"name": VG, "devices": [loop_device],
                                    "wipe": True}})
    assert code == 0 and answer["ok"], answer
    assert signatures(loop_device) == ["LVM2_member"]
    assert subprocess.run(["vgs", VG], capture_output=True).returncode == 0


def test_a_mounted_device_is_refused_even_with_wipe(loop_device, tmp_path):
    make_ext4(loop_device)
    mountpoint = tmp_path / "vstest-mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", loop_device, str(mountpoint)], check=True, capture_output=True)
    try:
        code, answer = helper({"op": "create_volume_group",
                               "args": {"name": VG, "devices": [loop_device],
                                        "wipe": True}})
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True, capture_output=True)
    assert code == 1 and "is mounted" in answer["error"], answer
    assert "ext4" in signatures(loop_device)


def test_a_physical_volume_of_a_group_is_refused_even_with_wipe(make_loop_device):
    device = make_loop_device()
    subprocess.run(["vgcreate", "--yes", TAKEN_VG, device], check=True,
                   capture_output=True)
    code, answer = helper({"op": "create_partition_table",
                           "args": {"device": device, "label": "gpt", "wipe": True}})
    assert code == 1 and f"volume group {TAKEN_VG}" in answer["error"], answer
    assert "LVM2_member" in signatures(device)


def test_a_taken_volume_group_name_wipes_nothing(make_loop_device):
    other, device = make_loop_device(), make_loop_device()
    subprocess.run(["vgcreate", "--yes", TAKEN_VG, other], check=True,
                   capture_output=True)
    make_ext4(device)
    code, answer = helper({"op": "create_volume_group",
                           "args": {"name": TAKEN_VG, "devices": [device],
                                    "wipe": True}})
    assert code == 1 and "exists already" in answer["error"]
    assert "ext4" in signatures(device)


def test_policy_asks_an_administrator_every_time():
    root = ET.parse(POLICY).getroot()
    actions = root.findall("action")
    assert actions
    for action in actions:
        defaults = action.find("defaults")
        for key in ("allow_any", "allow_inactive", "allow_active"):
            assert defaults.find(key).text == "auth_admin", (action.get("id"), key)


def test_helper_script_runs_isolated_from_the_installed_venv():
    first = (REPO / "packaging/polkit/virtstudio-helper").read_text().splitlines()[0]
    assert first == "#!/usr/lib/virtstudio/venv/bin/python3 -I"


@pytest.fixture
def user_writable_helper(tmp_path: Path) -> Path:
    folder = tmp_path / "libexec"
    folder.mkdir()
    script = folder / "virtstudio-helper"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return script


def test_client_refuses_a_helper_others_can_write(user_writable_helper):
    from virtstudio.privileged import client

    user_writable_helper.chmod(0o777)
    with pytest.raises(VirtStudioError, match="not installed safely"):
        client.helper_argv(str(user_writable_helper))


def test_client_refuses_a_helper_in_a_folder_others_can_write(user_writable_helper):
    from virtstudio.privileged import client

    user_writable_helper.parent.chmod(0o777)
    with pytest.raises(VirtStudioError, match="can be changed by users other than root"):
        client.helper_argv(str(user_writable_helper))


def test_client_refuses_a_helper_owned_by_a_user(user_writable_helper):
    from virtstudio.privileged import client

    os.chown(user_writable_helper, 65534, 65534)  # nobody
    with pytest.raises(VirtStudioError, match="not owned by root"):
        client.helper_argv(str(user_writable_helper))


def test_client_runs_only_pkexec_with_the_installed_path():
    from virtstudio.privileged import client

    if not Path(client.INSTALLED_HELPER).exists():
        with pytest.raises(VirtStudioError, match="not installed"):
            client.helper_argv()
        return
    assert client.helper_argv() == ["pkexec", "/usr/libexec/virtstudio/virtstudio-helper"]
