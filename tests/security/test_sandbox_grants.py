"""A crafted profile cannot make a sandbox bind, or write, a host path it must not reach.

Profiles come from files the user imports: every granted path is resolved
(``//``, ``/./``, symlinks) and checked against the deny-list, when the
profile is read and again at launch.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.security.sandbox_support import make_manager, run, usable_by_sandbox
from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.profile import SandboxProfile

manager = pytest.fixture(make_manager)


@pytest.fixture
def victim(tmp_path):
    """A host folder no profile grants: the escape tries to write into it."""
    folder = tmp_path / "victim"
    folder.mkdir()
    usable_by_sandbox(folder, write=True)
    return folder


def crafted(**grants) -> str:
    return json.dumps({"format": 1, "profile": {"name": "Crafted", **grants}})


@pytest.mark.parametrize("granted", ["//run", "/./run", "/var/run", "link-to-run"])
def test_crafted_profile_cannot_write_a_host_path(manager, tmp_path, granted):
    if granted == "link-to-run":
        granted = str(tmp_path / "innocent")
        Path(granted).symlink_to("/run")
    escaped = Path("/run") / f"vstest-escaped-{uuid.uuid4().hex}"
    refusal = None
    try:
        profile = SandboxProfile.from_json(crafted(read_write=[granted]))
        run(manager, profile, f"echo escaped > {granted}/{escaped.name}")
    except VirtStudioError as exc:
        refusal = exc.message
    finally:
        written = escaped.exists()
        escaped.unlink(missing_ok=True)
    assert not written  # the host path it tried to write
    assert refusal is not None and "never be granted" in refusal
    assert manager.sandboxes == []


@pytest.mark.parametrize("granted", ["//", "/.", "///", "/./"])
def test_root_spelled_oddly_cannot_be_granted(granted):
    for grant in ({"read_only": [granted]}, {"read_write": [granted]}):
        with pytest.raises(VirtStudioError, match="whole file system"):
            SandboxProfile.from_json(crafted(**grant))


def test_symlink_to_a_denied_place_cannot_be_granted(manager, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to("/etc")
    with pytest.raises(VirtStudioError, match="never be granted"):
        SandboxProfile.from_json(crafted(read_write=[str(link)]))
    profile = SandboxProfile(name="t")
    profile.read_only = [str(link)]  # as if edited after it was checked
    with pytest.raises(VirtStudioError, match="never be granted"):
        manager.launch(profile, ["/bin/true"])
    assert manager.sandboxes == []


def test_folder_swapped_for_a_symlink_after_saving_is_checked_again_at_launch(manager,
                                                                              tmp_path):
    granted = tmp_path / "work"
    granted.mkdir()
    usable_by_sandbox(granted, write=True)
    profile = SandboxProfile(name="t", read_write=[str(granted)])
    profile.validate()
    granted.rmdir()
    granted.symlink_to("/run")  # the saved profile now names a denied place
    escaped = Path("/run") / f"vstest-escaped-{uuid.uuid4().hex}"
    try:
        with pytest.raises(VirtStudioError, match="never be granted"):
            run(manager, profile, f"echo escaped > {granted}/{escaped.name}")
        assert not escaped.exists()
    finally:
        escaped.unlink(missing_ok=True)


@pytest.mark.parametrize("granted", [
    "/etc", "/etc/ssh", "/root", "/boot", "/dev", "/dev/sda", "/proc", "/proc/1/root", "/sys",
    "/run", "/var/run", "/var/lib/libvirt", "/var/lib/libvirt/images", "/var/lib", "/home",
    "~", "~/.ssh", "~/.gnupg", "~/.config/virtstudio", "~/.local/share/virtstudio",
    "/tmp", "/tmp/.X11-unix",
])
def test_denied_places_cannot_be_granted(granted):
    path = str(Path.home()) + granted[1:] if granted.startswith("~") else granted
    for grant in ({"read_only": [path]}, {"read_write": [path]}):
        with pytest.raises(VirtStudioError):
            SandboxProfile.from_json(crafted(**grant))


@pytest.mark.parametrize("granted", ["/usr", "/usr/local", "/opt", "/var/tmp", "/var/cache"])
def test_system_folders_are_never_writable(granted):
    with pytest.raises(VirtStudioError, match="belongs to the system"):
        SandboxProfile.from_json(crafted(read_write=[granted]))


def test_write_is_only_granted_on_folders_of_ones_own(tmp_path):
    other = tmp_path / "others"
    other.mkdir()
    os.chown(other, 12345, 12345) if os.geteuid() == 0 else pytest.skip("needs root to chown")
    with pytest.raises(VirtStudioError, match="not yours"):
        SandboxProfile(name="t", read_write=[str(other)]).validate()
    SandboxProfile(name="t", read_only=[str(other)]).validate()  # reading it is fine
    # Root's sandboxes run as nobody: a folder root handed to nobody may be changed.
    os.chown(other, 65534, 65534)
    SandboxProfile(name="t", read_write=[str(other)]).validate()


def test_granted_folder_stays_the_only_writable_place(manager, tmp_path, victim):
    granted = tmp_path / "work"
    granted.mkdir()
    usable_by_sandbox(granted, write=True)
    _, out = run(manager, SandboxProfile(name="t", read_write=[str(granted)]),
                 f"echo ok > {granted}/ok; echo escaped > {victim}/escaped; "
                 "echo escaped > /escaped; echo escaped > /etc/escaped")
    assert (granted / "ok").read_text() == "ok\n", out
    assert not (victim / "escaped").exists()
    assert not Path("/escaped").exists() and not Path("/etc/escaped").exists()
