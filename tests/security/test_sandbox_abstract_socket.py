"""A sandbox with network access cannot reach the host's abstract unix sockets.

Abstract sockets (X11's ``@/tmp/.X11-unix/X0`` among them) belong to a network
namespace, not to the file system: a sandbox that shared the host's namespace
could connect to every one of them, whatever its file view.  Internet access
now goes through pasta from a namespace of the sandbox's own.
"""

from __future__ import annotations

import socket
import threading
import uuid

import pytest

from tests.security.sandbox_support import make_manager, run
from virtstudio.sandbox.profile import SandboxProfile

manager = pytest.fixture(make_manager)

PY = "/usr/bin/python3"


@pytest.fixture
def host_abstract_socket():
    """A listener on the host's abstract socket ``@vstest-…`` that counts connections."""
    name = f"vstest-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(b"\0" + name.encode())
    server.listen(4)
    server.settimeout(0.2)
    accepted: list[bool] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(True)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield name, accepted
    stop.set()
    thread.join(2)
    server.close()


# "host" is what older profiles stored for network access; it must load as the safe mode.
@pytest.mark.parametrize("network", ["host", "internet", "none"])
def test_cannot_connect_to_a_host_abstract_socket(manager, host_abstract_socket, network):
    name, accepted = host_abstract_socket
    script = (PY + " -c \"import socket\n"
              "s = socket.socket(socket.AF_UNIX)\n"
              "try:\n"
              f" s.connect(b'\\\\0{name}'); print('REACHED' + '_HOST')\n"
              "except OSError as e: print('refused', e.errno)\"")
    _, out = run(manager, SandboxProfile(name="t", network=network), script)
    assert "REACHED_HOST" not in out, out
    assert "refused 111" in out, out  # ECONNREFUSED: no such socket in its namespace
    assert accepted == []
