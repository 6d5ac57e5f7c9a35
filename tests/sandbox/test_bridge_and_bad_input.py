"""Sandbox networking on a bridge the test builds in its own namespaces, and refused launches."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.lab.leftovers import remove_netns, session_name
from tests.sandbox.conftest import run, usable_by_sandbox
from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.manager import SandboxManager
from virtstudio.sandbox.profile import SandboxProfile

PY = "/usr/bin/python3"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def lab_bridge():
    """A host namespace with bridge vsbr0 and a peer namespace at 10.77.0.1 on it."""
    host_ns, peer_ns = session_name("sbx-host"), session_name("sbx-peer")
    ip("netns", "add", host_ns)
    ip("netns", "add", peer_ns)
    try:
        ip("-n", host_ns, "link", "add", "vsbr0", "type", "bridge")
        ip("-n", host_ns, "link", "set", "vsbr0", "up")
        ip("-n", host_ns, "link", "add", "vspeer", "type", "veth", "peer", "name", "eth0",
           "netns", peer_ns)
        ip("-n", host_ns, "link", "set", "vspeer", "master", "vsbr0", "up")
        ip("-n", peer_ns, "addr", "add", "10.77.0.1/24", "dev", "eth0")
        ip("-n", peer_ns, "link", "set", "eth0", "up")
        ip("-n", peer_ns, "link", "set", "lo", "up")
        yield host_ns, peer_ns
    finally:
        remove_netns(peer_ns, host_ns)


def test_isolated_network_reaches_a_peer_on_the_bridge(tmp_path, lab_bridge):
    host_ns, peer_ns = lab_bridge
    # One connection, then the server exits: bounded in count and time.
    server = subprocess.Popen(
        ["ip", "netns", "exec", peer_ns, PY, "-c",
         "import socket; s=socket.socket(); s.bind(('10.77.0.1', 7777)); s.listen(1);"
         "s.settimeout(20); c,a=s.accept(); c.sendall(b'hello from peer'); c.close()"])
    try:
        wait_listening(peer_ns, 7777)
        manager = SandboxManager(tmp_path / "data", host_netns=host_ns)
        profile = SandboxProfile(name="t", network="bridge", bridge="vsbr0")
        script = (PY + " -c \"import socket; c=socket.create_connection(('10.77.0.1', 7777), "
                  "timeout=5); print(c.recv(100).decode().upper())\"")
        code, out = run(manager, profile, script, address="10.77.0.2/24")
        assert code == 0, out
        assert "HELLO FROM PEER" in out
    finally:
        server.kill()
        server.wait()


def test_bridge_that_is_gone_starts_nothing(tmp_path, lab_bridge):
    host_ns, _ = lab_bridge
    manager = SandboxManager(tmp_path / "data", host_netns=host_ns)
    profile = SandboxProfile(name="t", network="bridge", bridge="vsbr-gone")
    with pytest.raises(VirtStudioError, match="does not exist"):
        manager.launch(profile, ["/bin/true"])
    assert manager.sandboxes == []


def test_missing_program_starts_nothing(manager):
    with pytest.raises(VirtStudioError, match="was not found"):
        manager.launch(SandboxProfile(name="t"), ["no-such-program-xyz"])
    with pytest.raises(VirtStudioError, match="missing or not an executable"):
        manager.launch(SandboxProfile(name="t"), ["/usr/bin/no-such-program"])
    assert manager.sandboxes == []


def test_program_outside_the_sandbox_view_is_refused(manager, tmp_path):
    tool = tmp_path / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    with pytest.raises(VirtStudioError, match="grant its folder"):
        manager.launch(SandboxProfile(name="t"), [str(tool)])
    granted = SandboxProfile(name="t", read_only=[str(usable_by_sandbox(tmp_path))])
    code, out = run(manager, granted, str(tool))
    assert code == 0 and "hi" in out


def test_granting_a_missing_path_starts_nothing(manager, tmp_path):
    profile = SandboxProfile(name="t", read_write=[str(tmp_path / "absent")])
    with pytest.raises(VirtStudioError, match="does not exist"):
        manager.launch(profile, ["/bin/true"])
    assert manager.sandboxes == []


def test_stop_ends_every_process(manager):
    sandbox = manager.launch(SandboxProfile(name="t"),
                             ["/bin/sh", "-c", "sleep 100 & sleep 100 & wait"])
    def all_started() -> bool:
        manager.sample(sandbox)
        return len(sandbox.processes) >= 3

    wait_for(all_started, timeout=10, interval=0.05)
    pids = [p.pid for p in sandbox.processes]
    manager.stop(sandbox, grace=0.5)
    wait_for(lambda: sandbox.ended is not None, timeout=10, interval=0.05)
    assert sandbox.state == "stopped"
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text().lower()


@pytest.fixture
def lab_upstream():
    """A namespace standing for the host, routed to a peer namespace at 10.78.0.1."""
    host_ns, peer_ns = session_name("sbx-up"), session_name("sbx-far")
    ip("netns", "add", host_ns)
    ip("netns", "add", peer_ns)
    try:
        ip("-n", host_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", peer_ns)
        ip("-n", host_ns, "addr", "add", "10.78.0.2/24", "dev", "eth0")
        ip("-n", peer_ns, "addr", "add", "10.78.0.1/24", "dev", "eth0")
        for ns in (host_ns, peer_ns):
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", host_ns, "route", "add", "default", "via", "10.78.0.1")
        yield host_ns, peer_ns
    finally:
        remove_netns(peer_ns, host_ns)


def serve_once(netns: str, address: str, port: int, answer: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", netns, PY, "-c",
         f"import socket; s=socket.socket(); s.bind(('{address}', {port})); s.listen(1);"
         f"s.settimeout(20); c,a=s.accept(); c.sendall(b'{answer}'); c.close()"])


def wait_listening(netns: str, port: int) -> None:
    def listening() -> bool:
        out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True, timeout=10).stdout
        return bool(out.strip())

    wait_for(listening, timeout=10, interval=0.05)


def test_internet_mode_reaches_out_through_pasta_but_not_the_hosts_loopback(tmp_path,
                                                                           lab_upstream):
    host_ns, peer_ns = lab_upstream
    far = serve_once(peer_ns, "10.78.0.1", 7777, "hello from far away")
    near = serve_once(host_ns, "127.0.0.1", 7778, "host loopback")
    try:
        wait_listening(peer_ns, 7777)
        wait_listening(host_ns, 7778)
        manager = SandboxManager(tmp_path / "data", host_netns=host_ns)
        connect = (PY + " -c \"import socket\ntry:\n c=socket.create_connection(('{0}', {1}), "
                   "timeout=5); print(c.recv(100).decode().upper())\n"
                   "except OSError as e: print('refused', {1}, e.errno)\"")
        _, out = run(manager, SandboxProfile(name="t", network="internet"),
                     connect.format("10.78.0.1", 7777) + "; " + connect.format("127.0.0.1", 7778))
        assert "HELLO FROM FAR AWAY" in out, out
        assert "HOST LOOPBACK" not in out and "refused 7778" in out, out
    finally:
        for server in (far, near):
            server.kill()
            server.wait()
