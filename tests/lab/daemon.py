"""Real libvirt daemons for tests.

``ensure_libvirtd`` starts the system daemons when nothing answers (machines
without an init system).  ``PrivateLibvirtd`` runs a second, test-owned
libvirtd beside the system one: its own socket directory and pid file, and an
empty driver directory so it loads no hypervisor driver and cannot clash with
the system daemon's QEMU state.  It serves libvirt's test driver over a real
RPC connection (``test+unix:///<fixture>?socket=…``), so a test may kill it
and start it again without touching anything else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import libvirt

SYSTEM_URI = "qemu:///system"


def _answers(uri: str) -> bool:
    def quiet(_ctx: object, _err: object) -> None:
        pass

    libvirt.registerErrorHandler(quiet, None)
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def ensure_libvirtd(timeout: float = 20.0) -> None:
    """Make sure qemu:///system answers, starting virtlogd and libvirtd if needed."""
    if _answers(SYSTEM_URI):
        return
    if os.geteuid() != 0:
        raise RuntimeError("libvirtd is not running and only root can start it here")
    for d in ("/var/log/libvirt", "/var/run/libvirt", "/var/lib/libvirt"):
        Path(d).mkdir(parents=True, exist_ok=True)
    for name in ("virtlogd", "libvirtd"):
        if not _alive(Path(f"/var/run/{name}.pid")):
            subprocess.run([name, "-d"], check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(SYSTEM_URI):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{SYSTEM_URI} did not answer within {timeout:.0f} s")


class PrivateLibvirtd:
    def __init__(self, fixture: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vs-libvirtd-"))
        self.run_dir = self.dir / "run"
        self.drivers = self.dir / "drivers"
        self.run_dir.mkdir()
        self.drivers.mkdir()
        self.config = self.dir / "libvirtd.conf"
        self.config.write_text(
            f'unix_sock_dir = "{self.run_dir}"\n'
            "listen_tcp = 0\nlisten_tls = 0\n"
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        )
        self.fixture = fixture
        self.socket = self.run_dir / "libvirt-sock"
        path = str(fixture.resolve()) if fixture is not None else "/default"
        self.uri = f"test+unix://{path}?socket={self.socket}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 15.0) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return
            self.socket.unlink(missing_ok=True)
            env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(self.drivers),
                       XDG_RUNTIME_DIR=str(self.run_dir))
            self._proc = subprocess.Popen(
                ["libvirtd", "--config", str(self.config),
                 "--pid-file", str(self.dir / "libvirtd.pid")],
                env=env, stdout=subprocess.DEVNULL,
                stderr=open(self.dir / "libvirtd.log", "ab"),  # noqa: SIM115
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and _answers(self.uri):
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        log = (self.dir / "libvirtd.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"private libvirtd did not start:\n{log}")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to say goodbye to clients."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait(10)

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)

    def __enter__(self) -> PrivateLibvirtd:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
