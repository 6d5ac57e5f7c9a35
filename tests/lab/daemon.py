"""Real libvirt daemons for tests.

``ensure_libvirtd`` starts the system daemons when nothing answers (machines
without an init system).  ``PrivateLibvirtd`` runs a second, test-owned
libvirtd beside the system one: its own socket directory, config and pid file,
and an empty driver directory (``LIBVIRT_DRIVER_DIR``) so it loads no
hypervisor, network or storage driver module and so never touches the system
daemon's state under /run/libvirt.  What it serves is libvirt's test driver,
which is built into libvirt.so, over a real RPC connection::

    test+unix:///default?socket=<dir>/run/libvirt-sock
    test+unix:///abs/path/host.xml?socket=<dir>/run/libvirt-sock

The remote driver strips ``socket=`` and hands ``test:///<path>`` to the
daemon, so a fixture file is read by the daemon (absolute path, readable by
root).  ``/default`` is one state shared by every connection to that daemon
process; a fixture file gives each connection its own copy.  Either way a
killed daemon forgets every change.  A test may kill the daemon and start it
again without touching anything else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import libvirt

SYSTEM_URI = "qemu:///system"
_RUN = Path("/var/run")
# A unix socket path must fit in sun_path (108 bytes, NUL included).
_SUN_PATH_MAX = 107


def _accepts(path: Path) -> bool:
    """Whether a unix socket has a listener, without libvirt printing connect errors."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _answers(uri: str) -> bool:
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def _running(name: str) -> bool:
    """Whether the daemon named in /var/run/<name>.pid is alive (and is not a reused pid)."""
    try:
        pid = int((_RUN / f"{name}.pid").read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return False
    return comm == name


def _start_daemon(name: str) -> None:
    # "-d" forks; the parent exits once the child reports it is up (or why not).
    with tempfile.TemporaryFile() as err:
        result = subprocess.run([name, "-d"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, timeout=60, check=False)
        if result.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise RuntimeError(f"{name} -d failed ({result.returncode}): {message}")


def ensure_libvirtd(timeout: float = 20.0) -> None:
    """Make sure qemu:///system answers, starting virtlogd and libvirtd if needed.

    Also starts virtlogd when libvirtd runs without it: QEMU guests cannot
    start then ("Failed to connect socket to .../virtlogd-sock").
    """
    answering = _answers(SYSTEM_URI)
    logd_up = _accepts(_RUN / "libvirt" / "virtlogd-sock")
    if answering and logd_up:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"{SYSTEM_URI} does not answer (or virtlogd is down) "
                           "and only root can start the daemons here")
    for directory in ("/var/log/libvirt", "/var/run/libvirt", "/var/lib/libvirt"):
        Path(directory).mkdir(parents=True, exist_ok=True)
    if not logd_up and not _running("virtlogd"):
        _start_daemon("virtlogd")
    if not answering and not _running("libvirtd"):
        _start_daemon("libvirtd")
    deadline = time.monotonic() + timeout
    while not _answers(SYSTEM_URI):
        if time.monotonic() > deadline:
            state = "running" if _running("libvirtd") else "not running"
            raise RuntimeError(f"{SYSTEM_URI} did not answer within {timeout:.0f} s "
                               f"(libvirtd {state}; see /var/log/libvirt)")
        time.sleep(0.2)


class PrivateLibvirtd:
    """A test-owned libvirtd serving the test driver on a socket of its own.

    ``fixture`` is a test-driver XML file the daemon loads on each open; with
    none, the URI names the driver's built-in ``/default`` host.
    """

    def __init__(self, fixture: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vs-libvirtd-"))
        self.run_dir = self.dir / "run"
        self.socket = self.run_dir / "libvirt-sock"
        if len(str(self.run_dir / "libvirt-admin-sock")) > _SUN_PATH_MAX:
            # A long TMPDIR would make libvirtd fail to bind; /tmp always fits.
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = Path(tempfile.mkdtemp(prefix="vs-libvirtd-", dir="/tmp"))
            self.run_dir = self.dir / "run"
            self.socket = self.run_dir / "libvirt-sock"
        self.drivers = self.dir / "drivers"
        self.run_dir.mkdir()
        self.drivers.mkdir()
        self.config = self.dir / "libvirtd.conf"
        self.pid_file = self.dir / "libvirtd.pid"
        self.log = self.dir / "libvirtd.log"
        # No --listen, so no TCP/TLS socket either way; the flags say so twice.
        self.config.write_text(
            f'unix_sock_dir = "{self.run_dir}"\n'
            "listen_tcp = 0\nlisten_tls = 0\n"
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            'unix_sock_rw_perms = "0700"\nunix_sock_ro_perms = "0700"\n'
            'log_outputs = "3:stderr"\n'
        )
        self.fixture = fixture.resolve() if fixture is not None else None
        self.uri = self.uri_for(self.fixture)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def uri_for(self, fixture: Path | None) -> str:
        """The URI of another test host (fixture file, or None for /default) on this daemon."""
        path = str(fixture.resolve()) if fixture is not None else "/default"
        return f"test+unix://{quote(path)}?socket={quote(str(self.socket))}"

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs (it does not fork: no -d)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 15.0) -> None:
        """Start the daemon (no-op while it runs) and wait until a connection works."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            # A SIGKILLed daemon leaves its sockets behind.
            for stale in self.run_dir.iterdir():
                stale.unlink(missing_ok=True)
            env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(self.drivers))
            with open(self.log, "ab") as log:
                self._proc = subprocess.Popen(
                    ["libvirtd", "--config", str(self.config), "--pid-file", str(self.pid_file)],
                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )
            proc = self._proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _accepts(self.socket) and _answers(self.uri):
                return
            time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"private libvirtd did not come up within {timeout:.0f} s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to say goodbye to clients."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in 10 s."""
        self._signal(signal.SIGTERM)

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.start(timeout)

    def _signal(self, signum: int) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            # Our own child, by pid: never a process found by name.
            os.kill(proc.pid, signum)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def close(self) -> None:
        """Stop the daemon and remove its directory (sockets, config, log)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateLibvirtd:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
