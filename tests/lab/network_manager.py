"""A real NetworkManager for tests, kept away from the host's network and files.

``packaging/dev/fetch-network-manager`` (run by ``make test``) unpacks Debian's
daemon into ``.cache/network-manager/root`` without installing the package;
an installed ``/usr/sbin/NetworkManager`` is used when that cache is missing.
``PrivateNetworkManager`` runs it:

- on a private D-Bus bus of the system type (its own ``dbus-daemon``, its own
  unix socket, a permissive policy that only this bus has); clients reach it
  through ``DBUS_SYSTEM_BUS_ADDRESS=<bus_address>``;
- in a network namespace of its own, so the only links it can see or manage are
  that namespace's;
- in a private mount namespace where folders of the test are bound over /run
  and /var/lib: its run-time state (``/run/NetworkManager``) and leases never
  reach the host's; the state and internal config files are given on the
  command line, and ``NetworkManager.conf`` loads only the keyfile plugin with
  ``keyfile.path`` in the test's folder, so no profile is ever written under
  /etc.  It never touches resolv.conf (``dns=none``, ``rc-manager=unmanaged``)
  or the hostname (``hostname-mode=none``), and asks no polkit
  (``auth-polkit=false``: root callers only).

``start()`` returns once NetworkManager answers on the bus (about 0.3 s);
``kill()`` is SIGKILL of the daemon's own pid, as a crash would be; ``close()``
stops both daemons by pid, removes the namespace and the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection

REPO = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO / ".cache" / "network-manager" / "root"
CACHED_DAEMON = CACHE_ROOT / "usr" / "sbin" / "NetworkManager"
CACHED_LIBS = CACHE_ROOT / "usr" / "lib" / "x86_64-linux-gnu"
INSTALLED_DAEMON = Path("/usr/sbin/NetworkManager")
NM_NAME = "org.freedesktop.NetworkManager"
SETTINGS = DBusAddress("/org/freedesktop/NetworkManager/Settings", bus_name=NM_NAME,
                       interface="org.freedesktop.NetworkManager.Settings")
_DBUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                    interface="org.freedesktop.DBus")
_SUN_PATH_MAX = 107
# Fixed text: the folders come as positional arguments, never as shell text.
_BIND_THEN_EXEC = ('set -e; mount --bind "$1" /run; mount --bind "$2" /var/lib; '
                   "mkdir -p /run/NetworkManager /var/lib/NetworkManager; shift 3; "
                   'exec "$@"')

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

NM_CONF = """[main]
plugins=keyfile
auth-polkit=false
dns=none
rc-manager=unmanaged
hostname-mode=none
no-auto-default=*

[keyfile]
path={keyfiles}

[logging]
level=INFO
"""


def _daemon() -> Path | None:
    if CACHED_DAEMON.is_file():
        return CACHED_DAEMON
    return INSTALLED_DAEMON if INSTALLED_DAEMON.is_file() else None


def network_manager_unavailable() -> str:
    """Why no private NetworkManager can run here, or "" when one can."""
    if os.geteuid() != 0:
        return "a NetworkManager in its own network namespace needs root"
    if _daemon() is None:
        return ("NetworkManager is not unpacked (packaging/dev/fetch-network-manager "
                "could not download it) and not installed")
    for tool in ("dbus-daemon", "ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return ""


def _call(address: str, target: DBusAddress, method: str, signature: str | None = None,
          body: tuple[Any, ...] = (), timeout: float = 5) -> tuple[Any, ...]:
    """One call on the private bus; raises RuntimeError with D-Bus's reason on an error."""
    with open_dbus_connection(address) as bus:
        reply = bus.send_and_get_reply(new_method_call(target, method, signature, body),
                                       timeout=timeout)
    if reply.header.message_type.name == "error":
        raise RuntimeError(f"{method} failed: {reply.body}")
    return tuple(reply.body)


def _end(proc: subprocess.Popen[bytes] | None, signum: int) -> None:
    """Signal our own child (Popen signals its pid, never a process found by name) and reap it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class PrivateNetworkManager:
    """NetworkManager on a private system bus, in a network namespace of its own."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vs-nm-"))
        if len(str(self.dir / "bus")) > _SUN_PATH_MAX:
            # A long TMPDIR would not fit a unix socket path; /tmp always does.
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = Path(tempfile.mkdtemp(prefix="vs-nm-", dir="/tmp"))
        self.socket = self.dir / "bus"
        self.bus_address = f"unix:path={self.socket}"
        self.keyfiles = self.dir / "system-connections"
        self.netns = f"vstest-nm-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.log = self.dir / "NetworkManager.log"
        for folder in ("system-connections", "conf.d", "system-conf.d", "run", "var-lib"):
            (self.dir / folder).mkdir()
        (self.dir / "bus.conf").write_text(BUS_CONF.format(socket=self.socket))
        (self.dir / "NetworkManager.conf").write_text(NM_CONF.format(keyfiles=self.keyfiles))
        self._bus: subprocess.Popen[bytes] | None = None
        self._nm: subprocess.Popen[bytes] | None = None
        self._netns_made = False

    @property
    def pid(self) -> int | None:
        """NetworkManager's pid while it runs (ip, unshare and sh each exec it in place)."""
        proc = self._nm
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, timeout: float = 20.0) -> None:
        """Start the bus, the namespace and NetworkManager (each only if needed); wait for it."""
        deadline = time.monotonic() + timeout
        if self._bus is None or self._bus.poll() is not None:
            self._start_bus(deadline)
        if not self._netns_made:
            subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True,
                           timeout=30)
            self._netns_made = True
        if self.pid is None:
            self._start_nm(deadline)

    def _start_bus(self, deadline: float) -> None:
        self.socket.unlink(missing_ok=True)
        with open(self.dir / "dbus.log", "ab") as log:
            self._bus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={self.dir / 'bus.conf'}", "--nofork"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        while not self._answers(_DBUS, "GetId"):
            if self._bus.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private D-Bus daemon did not start: "
                                   + (self.dir / "dbus.log").read_text(errors="replace"))
            time.sleep(0.02)

    def _answers(self, target: DBusAddress, method: str) -> bool:
        try:
            _call(self.bus_address, target, method, timeout=2)
        except (OSError, RuntimeError, ValueError):
            return False
        return True

    def _start_nm(self, deadline: float) -> None:
        daemon = _daemon()
        if daemon is None:
            raise RuntimeError(network_manager_unavailable())
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address)
        if daemon == CACHED_DAEMON:
            env["LD_LIBRARY_PATH"] = str(CACHED_LIBS)
        argv = ["ip", "netns", "exec", self.netns,
                "unshare", "--mount", "--propagation", "private",
                "sh", "-c", _BIND_THEN_EXEC, "sh",
                str(self.dir / "run"), str(self.dir / "var-lib"), "--",
                str(daemon), "--no-daemon", "--debug",
                f"--config={self.dir / 'NetworkManager.conf'}",
                f"--config-dir={self.dir / 'conf.d'}",
                f"--system-config-dir={self.dir / 'system-conf.d'}",
                f"--intern-config={self.dir / 'NetworkManager-intern.conf'}",
                f"--state-file={self.dir / 'NetworkManager.state'}",
                f"--pid-file={self.dir / 'NetworkManager.pid'}"]
        with open(self.log, "ab") as log:
            self._nm = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log)
        while not self.settings_answer():
            if self._nm.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"NetworkManager did not come up:\n{tail}")
            time.sleep(0.05)

    def settings_answer(self) -> bool:
        """Whether NetworkManager owns its name and its Settings object answers."""
        return self._answers(SETTINGS, "ListConnections")

    def profiles(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every stored profile by object path, with the variants unwrapped."""
        (paths,) = _call(self.bus_address, SETTINGS, "ListConnections")
        found = {}
        for path in paths:
            conn = DBusAddress(path, bus_name=NM_NAME,
                               interface="org.freedesktop.NetworkManager.Settings.Connection")
            (settings,) = _call(self.bus_address, conn, "GetSettings")
            found[path] = {group: {key: value for key, (_sig, value) in items.items()}
                           for group, items in settings.items()}
        return found

    def links(self) -> str:
        """``ip -br link`` inside the namespace (what NetworkManager may have created)."""
        return subprocess.run(["ip", "-n", self.netns, "-br", "link"], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def kill(self) -> None:
        """SIGKILL NetworkManager, as a crash would: no goodbye on the bus."""
        _end(self._nm, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM NetworkManager (SIGKILL after 10 s); the bus keeps running."""
        _end(self._nm, signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: NetworkManager keeps its name on the bus but answers nothing."""
        self._send(signal.SIGSTOP)

    def _send(self, signum: int) -> None:
        proc = self._nm
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    def close(self) -> None:
        """Stop NetworkManager and the bus, remove the namespace and the folder."""
        self._send(signal.SIGCONT)  # a paused daemon would sit on SIGTERM until killed
        self.stop()
        _end(self._bus, signal.SIGTERM)
        if self._netns_made:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)
            self._netns_made = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PrivateNetworkManager:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
