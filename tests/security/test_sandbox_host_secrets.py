"""A sandbox started by root reads no host secret: it never runs as uid 0 and has its own /etc.

Mapping uid 65534 inside a user namespace to root outside would only rename
root: the kernel would still let it read root's files.  The test therefore
also grants a folder holding a root-only file and checks it stays unreadable.
"""

from __future__ import annotations

import os

import pytest

from tests.security.sandbox_support import make_manager, run, usable_by_sandbox
from virtstudio.sandbox.profile import SandboxProfile

manager = pytest.fixture(make_manager)

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="concerns sandboxes started by root")


@as_root
def test_root_launcher_cannot_read_shadow_or_host_keys(manager):
    # "host" networking gave the old sandboxes the host's /etc and uid 0 as well.
    for network in ("none", "internet"):
        _, out = run(manager, SandboxProfile(name="t", network=network), """
            echo "uid=$(id -u)"
            cat /etc/shadow && echo SHADOW"_"READ
            cat /etc/gshadow && echo SHADOW"_"READ
            cat /etc/ssh/ssh_host_*_key && echo HOST_KEY"_"READ
            echo "ETC""-LIST"; ls /etc""")
        assert "uid=0" not in out and "uid=65534" in out, out
        assert "SHADOW_READ" not in out and "HOST_KEY_READ" not in out, out
        listed = set(out.split("\nETC-LIST\n", 1)[1].split())
        assert {"shadow", "gshadow", "ssh", "sudoers", "machine-id"}.isdisjoint(listed), out


@as_root
def test_root_launcher_runs_as_an_unprivileged_uid_on_the_host(manager, tmp_path):
    folder = tmp_path / "granted"
    folder.mkdir()
    usable_by_sandbox(folder)
    secret = folder / "root-only"
    secret.write_text("root secret\n")
    secret.chmod(0o600)
    _, out = run(manager, SandboxProfile(name="t", read_only=[str(folder)]),
                 f"cat {secret}; cat /proc/self/status")
    assert "root secret" not in out, out
    uids = next(line for line in out.splitlines() if line.startswith("Uid:")).split()[1:]
    assert "0" not in uids, out
    caps = next(line for line in out.splitlines() if line.startswith("CapEff:")).split()[1]
    assert int(caps, 16) == 0, out


def test_etc_inside_is_a_minimal_set_of_its_own(manager):
    code, out = run(manager, SandboxProfile(name="t"), "ls -A /etc; echo ---; cat /etc/passwd")
    assert code == 0, out
    listed, passwd = out.split("\n", 1)[1].split("---", 1)
    assert set(listed.split()) <= {
        "passwd", "group", "hosts", "hostname", "ld.so.cache", "nsswitch.conf", "host.conf",
        "gai.conf", "localtime", "ssl", "pki", "fonts", "alternatives"}, out
    entries = [line for line in passwd.split("\n") if line.strip()]
    assert 1 <= len(entries) <= 2 and not any(line.startswith("root:") for line in entries), out
