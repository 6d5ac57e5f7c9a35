"""Break-out attempts against real sandboxes: each must fail, and granted access must work."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.sandbox.conftest import run, usable_by_sandbox, wait_exit
from virtstudio.sandbox.profile import SandboxProfile

PY = "/usr/bin/python3"


@pytest.fixture
def secret_in_real_home():
    path = Path.home() / f".virtstudio-secret-{uuid.uuid4().hex}"
    path.write_text("top secret\n")
    path.chmod(0o600)
    yield path
    path.unlink(missing_ok=True)


def test_cannot_read_the_real_home(manager, secret_in_real_home):
    code, out = run(manager, SandboxProfile(name="t"), f"cat {secret_in_real_home}")
    assert code != 0
    assert "top secret" not in out


def test_granted_folders_work_and_nothing_else_is_writable(manager, tmp_path):
    rw = tmp_path / "rw"
    ro = tmp_path / "ro"
    hidden = tmp_path / "hidden"
    for d in (rw, ro, hidden):
        d.mkdir()
    usable_by_sandbox(rw, write=True)
    usable_by_sandbox(ro)
    (ro / "in.txt").write_text("readable\n")
    profile = SandboxProfile(name="t", read_only=[str(ro)], read_write=[str(rw)])
    code, out = run(manager, profile, f"""
        cat {ro}/in.txt && echo written > {rw}/out.txt || exit 10
        echo x > {ro}/evil.txt && exit 11
        echo x > /usr/evil.txt && exit 12
        echo x > /etc/evil.txt && exit 13
        echo x > {hidden}/evil.txt && exit 14
        exit 0""")
    assert code == 0, out
    assert "readable" in out
    assert (rw / "out.txt").read_text() == "written\n"
    assert not (ro / "evil.txt").exists() and not (hidden / "evil.txt").exists()
    assert not Path("/usr/evil.txt").exists() and not Path("/etc/evil.txt").exists()


def test_private_home_persists_between_runs(manager):
    profile = SandboxProfile(name="Keeps notes")
    assert run(manager, profile, "echo remembered > ~/note")[0] == 0
    code, out = run(manager, profile, "cat ~/note")
    assert code == 0 and "remembered" in out
    assert (manager.home_for(profile) / "note").exists()


def test_cannot_see_or_signal_host_processes(manager):
    host = subprocess.Popen(["sleep", "60"])
    try:
        code, out = run(manager, SandboxProfile(name="t"), f"""
            kill -0 {host.pid} 2>/dev/null && exit 20
            [ -e /proc/{host.pid}/cmdline ] && exit 21
            ls /proc | grep -c '^[0-9]'""")
        assert code == 0, out
        assert int(out.strip().splitlines()[-1]) < 10  # only the sandbox's own few processes
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


@pytest.fixture
def loopback_server():
    """A TCP listener on this machine's loopback that counts connections."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            accepted.append(True)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    srv.close()


# The marker is assembled at run time so the command echoed into the log cannot match.
CONNECT = (PY + " -c \"import socket,sys; socket.create_connection(('{host}', {port}), "
           "timeout=3); print('CONN' + 'ECTED')\"")


def test_no_network_when_off(manager, loopback_server):
    port, accepted = loopback_server
    _, out = run(manager, SandboxProfile(name="t", network="none"),
                    CONNECT.format(host="127.0.0.1", port=port)
                    + "; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert "CONNECTED" not in out
    assert accepted == []
    assert out.strip().splitlines()[-1] == "lo"


def test_internet_mode_has_a_network_of_its_own(manager, loopback_server):
    """User-mode networking: an eth0 routed through pasta, but not the host's loopback."""
    port, accepted = loopback_server
    _, out = run(manager, SandboxProfile(name="t", network="internet"),
                 "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,; "
                 "echo; ip route show default; GW=$(ip route show default | cut -d' ' -f3); "
                 + CONNECT.format(host="127.0.0.1", port=port) + "; "
                 + CONNECT.format(host="$GW", port=port))
    assert "eth0,lo," in out, out
    assert "default via" in out, out
    assert "CONNECTED" not in out
    assert accepted == []


def test_profiles_of_the_old_host_network_load_as_internet(tmp_path):
    old = {"format": 1, "profile": {"name": "Old browser", "network": "host"}}
    profile = SandboxProfile.from_json(json.dumps(old))
    assert profile.network == "internet"
    assert "user-mode networking" in " ".join(profile.permissions())


def test_tiocsti_cannot_inject_keystrokes(manager):
    master, slave = pty.openpty()
    try:
        script = (PY + " -c \"import fcntl,termios\n"
                  "try:\n fcntl.ioctl(0, termios.TIOCSTI, b'X'); print('INJ' + 'ECTED')\n"
                  "except OSError as e: print('refused', e.errno)\"")
        sandbox = wait_exit(manager.launch(SandboxProfile(name="t"), ["/bin/sh", "-c", script],
                                           stdin=slave))
        out = sandbox.log_text()
        assert "INJECTED" not in out
        assert "refused 1" in out  # EPERM from the seccomp filter
        os.set_blocking(master, False)
        try:
            pending = os.read(master, 100)
        except BlockingIOError:
            pending = b""
        assert b"X" not in pending
    finally:
        os.close(master)
        os.close(slave)


def test_namespace_and_mount_calls_are_refused(manager):
    code, out = run(manager, SandboxProfile(name="t"),
                    "unshare -U true && exit 30; unshare -m true && exit 31; exit 0")
    assert code == 0, out


def test_memory_limit_kills_the_sandbox_not_the_host(manager):
    if not manager.cgroups.kind:
        pytest.fail(f"cgroups unavailable here: {manager.cgroups.reason}")
    profile = SandboxProfile(name="t", memory_mb=64)
    script = PY + " -c \"b = bytearray(512 * 1024 * 1024); print('SURV' + 'IVED', len(b))\""
    sandbox = wait_exit(manager.launch(profile, ["/bin/sh", "-c", script]))
    assert "SURVIVED" not in sandbox.log_text()
    assert sandbox.exit_code != 0
    assert sandbox.out_of_memory and sandbox.state == "killed"
    assert "memory limit" in " ".join(sandbox.warnings)


def test_stored_profiles_of_the_old_host_network_are_migrated(tmp_path):
    from virtstudio.sandbox.store import ProfileStore

    folder = tmp_path / "data" / "profiles"
    folder.mkdir(parents=True)
    stored = folder / "old-browser.json"
    stored.write_text(json.dumps({"format": 1, "profile": {"name": "Old browser",
                                                           "network": "host"}}))
    store = ProfileStore(tmp_path / "data")
    assert store.find("Old browser").network == "internet"
    assert json.loads(stored.read_text())["profile"]["network"] == "internet"
    assert store.find("Web browser").network == "internet"


def test_x_cookie_reaches_the_sandbox_user_but_root_files_stay_roots(manager, tmp_path,
                                                                    monkeypatch):
    cookie = tmp_path / "Xauthority"
    cookie.write_bytes(b"cookie-" + b"for-x")
    cookie.chmod(0o600)
    monkeypatch.setenv("XAUTHORITY", str(cookie))
    code, out = run(manager, SandboxProfile(name="t", display="x11"), 'cat "$XAUTHORITY"')
    assert code == 0 and "cookie-for-x" in out, out
    assert cookie.stat().st_uid == os.geteuid() and cookie.stat().st_mode & 0o777 == 0o600
