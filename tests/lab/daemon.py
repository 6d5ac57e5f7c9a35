"""Real libvirt daemons for tests.

``require_libvirtd`` waits until the system daemon (``qemu:///system``) answers;
tests never start, stop or reconfigure it (``make test`` starts it first, through
packaging/dev/start-libvirtd).  ``PrivateLibvirtd`` runs a second, test-owned
libvirtd beside the system one: its own socket directory, config and pid file,
and an empty driver directory (``LIBVIRT_DRIVER_DIR``) so it loads no
hypervisor, network or storage driver module.  As root it also runs in a mount
namespace of its own with an empty tmpfs over /run/libvirt, so whatever a
driver or the daemon itself keeps there (``driver.pid`` locks, the identity
token, hostdev state) is its own and the system daemon's sockets and pid files
are out of its reach.  What it serves is libvirt's test driver, which is built
into libvirt.so, over a real RPC connection::

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


def require_libvirtd(timeout: float = 60.0) -> None:
    """Wait until qemu:///system answers and virtlogd listens; never start either.

    Starting a second system daemon beside a slow first one would unlink the first
    one's socket before failing on its driver locks: the daemons are started before
    the session (``make test``: packaging/dev/start-libvirtd), never by a test.
    """
    deadline = time.monotonic() + timeout
    while True:
        answering = _answers(SYSTEM_URI)
        logd_up = _accepts(_RUN / "libvirt" / "virtlogd-sock")
        if answering and logd_up:
            return
        if time.monotonic() > deadline:
            missing = "libvirtd does not answer" if not answering else "virtlogd is not listening"
            raise RuntimeError(f"{SYSTEM_URI}: {missing} after {timeout:.0f} s; start the "
                               "daemons first (packaging/dev/start-libvirtd, as root)")
        time.sleep(0.5)


def private_run_wrapper() -> list[str]:
    """The argv prefix that runs a command in its own mount namespace with an empty
    /run/libvirt (root only; an empty list otherwise, where libvirtd uses the user's
    own runtime directory anyway).  The command follows as positional arguments."""
    if os.geteuid() != 0:
        return []
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            PRIVATE_RUN_SETUP + ' && exec "$@"', "sh"]


# Fixed shell text; the command comes as positional arguments, never as shell text.  The
# mount lives only in the new namespace ("private" propagation keeps it from the host's).
# Each driver's "autostarted" marker says autostart has run: a private daemon serves what
# its test makes, never the host's autostart domains, pools or networks from /etc/libvirt.
PRIVATE_RUN_SETUP = ("mkdir -p /run/libvirt && "
                     "mount -t tmpfs -o mode=0755,size=64m vstest-libvirt-run /run/libvirt && "
                     "for driver in qemu lxc network storage; do "
                     "mkdir /run/libvirt/$driver && touch /run/libvirt/$driver/autostarted; done")


def guest_pids(daemon_pid: int) -> list[int]:
    """QEMU processes a daemon started, from the pid files in its own /run/libvirt view.

    libvirt gives each QEMU process a mount namespace of its own, so they are found by
    the pid files the daemon wrote (read through /proc/<pid>/root), not by namespace."""
    found = []
    for pid_file in Path(f"/proc/{daemon_pid}/root/run/libvirt/qemu").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            continue
        if comm.startswith("qemu"):
            found.append(pid)
    return found


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

    def argv(self) -> list[str]:
        """The daemon's command line, in its own mount namespace (see the module doc)."""
        return [*private_run_wrapper(), *self.daemon_argv()]

    def daemon_argv(self) -> list[str]:
        return ["libvirtd", "--config", str(self.config), "--pid-file", str(self.pid_file)]

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

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon (no-op while it runs) and wait until a connection works."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            # A SIGKILLed daemon leaves its sockets behind.
            for stale in self.run_dir.iterdir():
                stale.unlink(missing_ok=True)
            env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(self.drivers))
            with open(self.log, "ab") as log:
                # unshare and sh exec in place: the pid is the daemon's own.
                self._proc = subprocess.Popen(self.argv(), env=env, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=log)
            proc = self._proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _accepts(self.socket) and _answers(self.uri):
                return
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.close()
        raise RuntimeError(f"private libvirtd did not come up within {timeout:.0f} s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to say goodbye to clients."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in 10 s."""
        self._signal(signal.SIGTERM)

    def restart(self, timeout: float = 60.0) -> None:
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
        """Stop the daemon and whatever it started (guests in its mount namespace), and
        remove its directory (sockets, config, log)."""
        pid = self.pid
        if pid is not None:
            self._destroy_guests()
        # Still running after destroy (a daemon that stopped answering): by pid file.
        started = guest_pids(pid) if pid is not None and os.geteuid() == 0 else []
        self.stop()
        for child in started:
            # Only the guests this daemon wrote pid files for, in its own /run/libvirt.
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def _destroy_guests(self) -> None:
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            return
        try:
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    pass
        finally:
            conn.close()

    def __enter__(self) -> PrivateLibvirtd:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
