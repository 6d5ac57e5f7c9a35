"""Consoles of remote hosts through one SSH connection per host.

A display on a ``qemu+ssh://`` host usually listens only on that host's
loopback address.  Instead of one SSH connection per console channel (SPICE
alone opens four), VirtStudio starts one OpenSSH ControlMaster per host and
reaches each display with ``ssh -S <control socket> -W address:port``, whose
standard input and output are one end of a socket pair: the console client
reads the other end as if it were the display's own socket.  Every ssh runs
from an argv list, in batch mode (a GUI cannot answer a password prompt), with
the same user, port, key and ssh program that libvirt's URI names.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.core.signal import Signal

START_TIMEOUT = 20.0
_LOOPBACK = "127.0.0.1"
_ANY = ("", "0.0.0.0", "::")


class TunnelError(VirtStudioError):
    """The SSH connection to a host's consoles could not be made or used."""


@dataclass(frozen=True)
class SshTarget:
    """Where and how ssh reaches a host, as libvirt's ``qemu+ssh://`` URI says."""

    host: str
    user: str = ""
    port: int | None = None
    keyfile: str = ""
    program: str = "ssh"
    no_verify: bool = False

    @classmethod
    def from_uri(cls, uri: str) -> SshTarget:
        parsed = uri_mod.parse(uri)
        if parsed.transport != "ssh":
            raise TunnelError(f"{uri} is not an SSH connection, so it has no SSH tunnel.")

        def param(name: str) -> str:
            values = parsed.params.get(name) or [""]
            return values[-1]

        return cls(host=parsed.host, user=parsed.user, port=parsed.port,
                   keyfile=param("keyfile"), program=param("command") or "ssh",
                   no_verify=param("no_verify") == "1")

    def ssh_args(self, *options: str) -> list[str]:
        """The ssh argv with ``options``, ending with this host (after ``--``)."""
        args = [self.program, "-o", "BatchMode=yes", "-T"]
        if self.port is not None:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-l", self.user]
        if self.keyfile:
            args += ["-i", self.keyfile]
        if self.no_verify:
            args += ["-o", "StrictHostKeyChecking=no"]
        return [*args, *options, "--", self.host]

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


def display_address(listen: str) -> str:
    """The address, as seen from the remote host itself, of a display listening on ``listen``."""
    return _LOOPBACK if listen in _ANY else listen


class SshMaster:
    """One ControlMaster process for one host, and the channels opened through it."""

    def __init__(self, target: SshTarget, control_dir: Path) -> None:
        self.target = target
        self.control_path = control_dir / f"m{id(self):x}.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._channels: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Connect; raise TunnelError with ssh's own words when it cannot."""
        if shutil.which(self.target.program) is None:
            raise TunnelError(f"The ssh program “{self.target.program}” is not installed.")
        argv = self.target.ssh_args("-M", "-N", "-S", str(self.control_path),
                                    "-o", "ControlPersist=no",
                                    "-o", "ServerAliveInterval=15",
                                    "-o", "ExitOnForwardFailure=yes")
        # Its own session: a Ctrl+C in the terminal that started VirtStudio must not
        # cut every console at once; close() ends it instead.
        self.process = _LEASHED.spawn(argv)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                said = self.process.stderr.read().decode(errors="replace").strip()
                raise TunnelError(f"Could not open an SSH connection to {self.target.label}: "
                                  f"{said or f'ssh exited with status {self.process.returncode}'}.")
            if time.monotonic() > deadline:
                self.close()
                raise TunnelError(f"The SSH connection to {self.target.label} did not come up "
                                  f"within {timeout:.0f} s.")
            time.sleep(0.05)
        # Nothing reads ssh's messages from here on; a full pipe must not stall it.
        assert self.process.stderr is not None
        threading.Thread(target=self._drain, args=(self.process.stderr,),
                         name="ssh master stderr", daemon=True).start()

    def _ready(self) -> bool:
        if not self.control_path.exists():
            return False
        check = subprocess.run(self.target.ssh_args("-S", str(self.control_path), "-O", "check"),
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
                               check=False)
        return check.returncode == 0

    @staticmethod
    def _drain(stream: object) -> None:
        with contextlib.suppress(OSError, ValueError):
            while stream.read(4096):  # type: ignore[attr-defined]
                pass

    def open_channel(self, address: str, port: int) -> socket.socket:
        """A socket connected, through this host's SSH connection, to ``address:port`` there."""
        if not 0 < port < 65536:
            raise TunnelError(f"The display's port {port} is not a valid port.")
        if not address or any(c.isspace() or c in "[]" for c in address):
            raise TunnelError(f"The display's address “{address}” cannot be reached over SSH.")
        if not self.alive:
            raise TunnelError(f"The SSH connection to {self.target.label} has closed.")
        ours, theirs = socket.socketpair()
        host_port = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        try:
            proc = subprocess.Popen(
                self.target.ssh_args("-S", str(self.control_path), "-o", "ControlMaster=no",
                                     "-W", host_port),
                stdin=theirs, stdout=theirs, stderr=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        with self._lock:
            self._channels = [p for p in self._channels if p.poll() is None] + [proc]
        threading.Thread(target=proc.wait, name="ssh channel reaper", daemon=True).start()
        return ours

    def close(self) -> None:
        with self._lock:
            channels, self._channels = self._channels, []
        for proc in [*channels, self.process]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in [*channels, self.process]:
            if proc is None:
                continue
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()


class _LeashedSpawner:
    """Starts masters so that they end with VirtStudio, even when it is killed.

    ``setpriv --pdeathsig TERM`` asks the kernel to signal the master when its
    parent goes, and then becomes ssh itself (same pid).  The kernel's "parent" is
    the thread that started the child, so every master is started from one thread
    that lives as long as the process: a console's short-lived worker thread ending
    must not take the host's connection with it.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[list[str], Future[subprocess.Popen[bytes]]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.setpriv = shutil.which("setpriv")

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="ssh master spawner",
                                                daemon=True)
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((argv, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            argv, done = self._requests.get()
            if self.setpriv is not None:
                argv = [self.setpriv, "--pdeathsig", "TERM", "--", *argv]
            try:
                done.set_result(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.PIPE,
                                                 start_new_session=True))
            except OSError as exc:
                done.set_exception(exc)


_LEASHED = _LeashedSpawner()


class TunnelPool:
    """At most one SSH connection per host, started on first use, ended with the host."""

    def __init__(self) -> None:
        self._masters: dict[SshTarget, SshMaster] = {}
        self._starting: dict[SshTarget, threading.Lock] = {}
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self.master_started = Signal("ssh master started")  # SshMaster

    def _control_dir(self) -> Path:
        # Short and private: a Unix socket path must stay under 108 bytes.
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="vs-ssh-"))
            os.chmod(self._dir, 0o700)
        return self._dir

    def master(self, uri: str) -> SshMaster:
        """The host's running master, started (blocking, off the GUI thread) when needed."""
        target = SshTarget.from_uri(uri)
        with self._lock:
            gate = self._starting.setdefault(target, threading.Lock())
        with gate:  # two consoles opening at once still make one connection
            with self._lock:
                existing = self._masters.get(target)
            if existing is not None and existing.alive:
                return existing
            if existing is not None:
                existing.close()
            with self._lock:
                master = SshMaster(target, self._control_dir())
            master.start()
            with self._lock:
                self._masters[target] = master
            self.master_started.emit(master)
            return master

    def channel(self, uri: str, listen: str, port: int) -> socket.socket:
        return self.master(uri).open_channel(display_address(listen), port)

    def running(self, uri: str) -> SshMaster | None:
        with self._lock:
            master = self._masters.get(SshTarget.from_uri(uri))
        return master if master is not None and master.alive else None

    def close_host(self, uri: str) -> None:
        try:
            target = SshTarget.from_uri(uri)
        except VirtStudioError:
            return  # not an SSH host: nothing to close
        with self._lock:
            master = self._masters.pop(target, None)
        if master is not None:
            master.close()

    def close_all(self) -> None:
        with self._lock:
            masters = list(self._masters.values())
            self._masters.clear()
        for master in masters:
            master.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def follow(self, inventory: Inventory) -> None:
        """End a host's SSH connection when the host is removed from ``inventory``."""
        def removed(conn: object) -> None:
            # Off the caller's thread (often the GUI's): ending processes waits on them.
            threading.Thread(target=self.close_host, args=(conn.uri,),  # type: ignore[attr-defined]
                             name="ssh tunnel close", daemon=True).start()

        inventory.connection_removed.connect(removed)


@functools.cache
def shared_pool() -> TunnelPool:
    """The application's pool (made on first use); its masters end when the process exits."""
    pool = TunnelPool()
    atexit.register(pool.close_all)
    return pool
