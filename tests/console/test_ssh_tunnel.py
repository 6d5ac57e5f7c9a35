"""SSH tunnels for remote consoles against a private sshd on 127.0.0.1: one connection per
host however many channels, real VNC bytes through them, closing with the host, and plain
messages for what cannot work."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.console.vnc_fake_server import FakeVncServer
from tests.lab.sshd import PrivateSshd, sshd_unavailable
from virtstudio.console.rfb_client import RfbClient
from virtstudio.console.ssh_tunnel import SshTarget, TunnelError, TunnelPool
from virtstudio.core.inventory import Inventory

pytestmark = pytest.mark.skipif(bool(sshd_unavailable()), reason=sshd_unavailable() or "ok")


@pytest.fixture(scope="module")
def sshd():
    with PrivateSshd() as server:
        yield server


@pytest.fixture
def pool():
    tunnels = TunnelPool()
    yield tunnels
    tunnels.close_all()


@pytest.fixture
def vnc():
    with FakeVncServer(width=32, height=24) as server:
        yield server, server.listen_tcp()


def _masters(control_path: Path) -> list[int]:
    """Pids of ssh master processes (``-M``) using ``control_path``, from /proc."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-M" in argv and str(control_path).encode() in argv:
            pids.append(int(proc.name))
    return pids


async def _screen_through(sock) -> tuple[int, int, bytes]:
    client = RfbClient(encoding="raw")
    await client.connect_socket(sock)
    task = asyncio.create_task(client.run())
    await client.wait_update(10)
    fb = client.framebuffer
    task.cancel()
    await client.close()
    return fb.width, fb.height, bytes(fb.data[:4])


def test_two_consoles_share_one_ssh_connection(sshd, pool, vnc):
    server, port = vnc
    uri = sshd.uri()
    logins_before = sshd.logins()
    first = pool.channel(uri, "127.0.0.1", port)
    second = pool.channel(uri, "", port)  # listening on every address: reached on loopback
    master = pool.running(uri)
    assert master is not None
    assert _masters(master.control_path) == [master.pid]
    assert sshd.logins() - logins_before == 1
    assert sshd.established() == 1

    async def both():
        return await asyncio.gather(_screen_through(first), _screen_through(second))

    screens = asyncio.run(asyncio.wait_for(both(), 30))
    assert screens == [(32, 24, b"\x00\x00\xff\x00")] * 2
    assert len(server.of_kind("encodings")) == 2  # two real RFB sessions reached the server
    assert _masters(master.control_path) == [master.pid] and sshd.established() == 1

    pool.close_host(uri)
    assert not master.alive and not master.control_path.exists()
    assert _masters(master.control_path) == []
    deadline = time.monotonic() + 5
    while sshd.established() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sshd.established() == 0


def test_a_removed_host_closes_its_tunnel(sshd, pool, vnc):
    _server, port = vnc
    inventory = Inventory()
    pool.follow(inventory)
    conn = inventory.add(sshd.uri(), connect=False)
    sock = pool.channel(conn.uri, "127.0.0.1", port)
    master = pool.running(conn.uri)
    assert master is not None and master.alive
    inventory.remove(conn)
    deadline = time.monotonic() + 10
    while master.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not master.alive and pool.running(conn.uri) is None
    sock.settimeout(5)  # the channel must end with the host, not hang
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data in (b"", b"RFB 003.008\n")  # at most the greeting sent before the end
    sock.close()


def test_a_dead_master_is_replaced_on_the_next_console(sshd, pool, vnc):
    _server, port = vnc
    uri = sshd.uri()
    pool.channel(uri, "127.0.0.1", port).close()
    first = pool.running(uri)
    first.close()  # as if the network had dropped it
    pool.channel(uri, "127.0.0.1", port).close()
    second = pool.running(uri)
    assert second is not None and second is not first and second.alive


def test_unreachable_host_says_why_and_leaves_nothing_running(sshd, pool):
    refused = sshd.uri().replace(f":{sshd.port}/", ":1/")
    said = r"Could not open an SSH connection to root@127\.0\.0\.1: .*refused"
    with pytest.raises(TunnelError, match=said):
        pool.channel(refused, "127.0.0.1", 5900)
    assert pool.running(refused) is None


@pytest.mark.parametrize(("uri", "listen", "port", "fragment"), [
    ("qemu:///system", "127.0.0.1", 5900, "not an SSH connection"),
    ("qemu+tcp://kvm1/system", "127.0.0.1", 5900, "not an SSH connection"),
    (None, "127.0.0.1", 0, "not a valid port"),
    (None, "127.0.0.1", 70000, "not a valid port"),
    (None, "10.0.0.1 -oProxyCommand=x", 5900, "cannot be reached over SSH"),
])
def test_bad_requests_are_refused_in_words(sshd, pool, uri, listen, port, fragment):
    with pytest.raises(TunnelError, match=fragment):
        pool.channel(uri or sshd.uri(), listen, port)


def test_target_follows_the_uri():
    target = SshTarget.from_uri(
        "qemu+ssh://admin@kvm1.example.org:2222/system?keyfile=/k/id&no_verify=1")
    args = target.ssh_args("-O", "check")
    assert args[:4] == ["ssh", "-o", "BatchMode=yes", "-T"]
    for pair in (["-p", "2222"], ["-l", "admin"], ["-i", "/k/id"],
                 ["-o", "StrictHostKeyChecking=no"]):
        assert any(args[i:i + 2] == pair for i in range(len(args)))
    assert args[-2:] == ["--", "kvm1.example.org"]  # the host can never pass as an option


_HOLDS_A_MASTER = """
import sys, time
from virtstudio.console.ssh_tunnel import TunnelPool
master = TunnelPool().master(sys.argv[1])
print(master.pid, master.control_path, flush=True)
time.sleep(120)
"""


def test_a_killed_app_takes_its_ssh_connection_along(sshd):
    """Even SIGKILL, which runs no clean-up, ends the host's ssh master: the kernel
    signals it when the process that started it is gone."""
    import os
    import signal
    import subprocess
    import sys

    app = subprocess.Popen([sys.executable, "-c", _HOLDS_A_MASTER, sshd.uri()],
                           stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).resolve().parents[2])
    try:
        pid, control_path = app.stdout.readline().split()
        assert _masters(Path(control_path)) == [int(pid)]
    finally:
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
    deadline = time.monotonic() + 10
    while _masters(Path(control_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _masters(Path(control_path)) == []
