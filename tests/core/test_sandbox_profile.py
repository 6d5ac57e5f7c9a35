"""Profiles: validation, plain-words permissions, export and import, the seccomp program."""

from __future__ import annotations

import pytest

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.builtin_profiles import builtin_profiles
from virtstudio.sandbox.bwrap_args import LaunchPlan, build_bwrap_args
from virtstudio.sandbox.identity import SandboxIdentity
from virtstudio.sandbox.profile import SandboxProfile
from virtstudio.sandbox.seccomp import build_filter


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"name": ""}, "not a usable profile name"),
    ({"name": "a/b"}, "not a usable profile name"),
    ({"network": "wifi"}, "Unknown network"),
    ({"network": "bridge", "bridge": "a-name-much-too-long"}, "not a bridge name"),
    ({"memory_mb": -1}, "Memory limit"),
    ({"read_only": ["relative/path"]}, "absolute path"),
    ({"read_write": ["/"]}, "whole file system"),
    ({"read_write": ["/no/such/dir"]}, "does not exist"),
    ({"dbus_talk": ["not a name"]}, "not a D-Bus name"),
])
def test_validation_names_the_problem(changes, fragment):
    with pytest.raises(VirtStudioError, match=fragment):
        SandboxProfile(name="ok").copy(**changes).validate()


def test_builtin_profiles_are_valid_and_described():
    profiles = builtin_profiles()
    assert {p.name for p in profiles} == {"Offline tool", "Web browser", "Untrusted binary"}
    for p in profiles:
        p.validate()
        text = "\n".join(p.permissions())
        assert "home" in text and "network" in text.lower()
    untrusted = next(p for p in profiles if p.name == "Untrusted binary")
    assert "No network at all" in untrusted.permissions()


def test_export_import_round_trip_and_refusals():
    profile = SandboxProfile(name="Editor", read_only=["/usr/share"], network="internet",
                             memory_mb=512)
    again = SandboxProfile.from_json(profile.to_json())
    assert again == profile
    with pytest.raises(VirtStudioError, match="not a profile file"):
        SandboxProfile.from_json("{nope")
    with pytest.raises(VirtStudioError, match="not a VirtStudio sandbox profile"):
        SandboxProfile.from_json('{"format": 99, "profile": {}}')
    widened = profile.to_json().replace('"builtin"', '"x"').replace(
        '"memory_mb": 512', '"memory_mb": 512, "raw_bwrap_args": ["--bind", "/", "/"]')
    with pytest.raises(VirtStudioError, match="does not know: raw_bwrap_args"):
        SandboxProfile.from_json(widened)


USER = SandboxIdentity(1000, 1000, "user", "user", drops_root=False)
ROOT_LAUNCHER = SandboxIdentity(65534, 65534, "nobody", "nogroup", drops_root=True)


def test_argv_is_a_list_with_the_grants(tmp_path):
    profile = SandboxProfile(name="t", read_only=["/usr/share"], read_write=[str(tmp_path)])
    plan = LaunchPlan(command=["/usr/bin/env", "a b; rm -rf /"], home_dir=tmp_path,
                      identity=USER)
    argv = build_bwrap_args(profile, plan)
    assert argv[0] == "bwrap" and "--unshare-all" in argv and "--share-net" not in argv
    triples = [argv[i:i + 3] for i in range(len(argv) - 2)]
    assert ["--ro-bind", "/usr/share", "/usr/share"] in triples
    assert ["--bind", str(tmp_path), str(tmp_path)] in triples
    assert argv[-3:] == ["--", "/usr/bin/env", "a b; rm -rf /"]
    cap = argv.index("--cap-drop")
    assert argv[cap:cap + 2] == ["--cap-drop", "ALL"]
    internet = build_bwrap_args(profile.copy(network="host"), plan)  # an old profile's value
    assert "--share-net" not in internet and "--unshare-all" in internet


def test_argv_of_a_root_launcher_drops_to_an_unprivileged_user(tmp_path):
    plan = LaunchPlan(command=["/bin/true"], home_dir=tmp_path, identity=ROOT_LAUNCHER)
    argv = build_bwrap_args(SandboxProfile(name="t"), plan)
    assert "--unshare-net" in argv and "--share-net" not in argv
    command = argv[argv.index("--") + 1:]
    assert command[0] == "/usr/bin/setpriv" and "--reuid=65534" in command
    assert "--bounding-set=-all" in command and command[-2:] == ["--", "/bin/true"]
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert "/etc" not in binds and "/etc/shadow" not in binds


def test_seccomp_program_shape():
    program = build_filter("x86_64")
    assert len(program) % 8 == 0 and 20 < len(program) // 8 < 255
    with pytest.raises(VirtStudioError, match="none is built"):
        build_filter("riscv64")
