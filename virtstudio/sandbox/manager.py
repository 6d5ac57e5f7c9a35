"""Launch sandboxes, watch their processes, stop them.

A launch fails closed: every check (profile, program, bridge, limits, seccomp)
happens before anything runs, and the program only starts once bwrap has
built its namespaces and the manager has put it in its cgroup and network
(``--block-fd``).  Nothing is ever run unsandboxed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.core.signal import Signal
from virtstudio.sandbox import network
from virtstudio.sandbox.bwrap_args import (
    SANDBOX_PATH,
    LaunchPlan,
    build_bwrap_args,
    visible_inside,
    write_etc,
)
from virtstudio.sandbox.identity import SandboxIdentity, launcher_identity
from virtstudio.sandbox.limits import CgroupSupport, SandboxCgroup, detect
from virtstudio.sandbox.profile import SandboxProfile
from virtstudio.sandbox.seccomp import build_filter

STOP_GRACE_S = 3.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "virtstudio"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "sandbox"


@dataclass
class ProcessInfo:
    pid: int
    name: str
    cpu_percent: float = 0.0
    rss_bytes: int = 0


@dataclass
class Sandbox:
    id: int
    profile: SandboxProfile
    command: list[str]
    log_path: Path
    state: str = "starting"  # starting, running, exited, stopped, killed
    pid: int = 0  # bwrap, seen from the host
    child_pid: int = 0  # the sandbox's first process, seen from the host
    started: float = field(default_factory=time.time)
    ended: float | None = None
    exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)
    processes: list[ProcessInfo] = field(default_factory=list)
    cpu_percent: float = 0.0
    memory_bytes: int = 0
    out_of_memory: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    host_ifname: str = ""
    user_network: network.UserModeNetwork | None = field(default=None, repr=False)
    state_dir: Path | None = None

    @property
    def title(self) -> str:
        return f"{Path(self.command[0]).name} ({self.profile.name})"

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running")

    def log_text(self, limit: int = 256 * 1024) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class SandboxManager:
    def __init__(self, data_dir: Path | None = None, *, bwrap: str = "bwrap",
                 host_netns: str | None = None, sample_interval: float = 1.0) -> None:
        self.data_dir = data_dir or default_data_dir()
        self.bwrap = bwrap
        # A named network namespace standing for the host's network (bridges are looked
        # up there, pasta reaches out from there); None: this process's own, as in use.
        self.host_netns = host_netns
        self.sample_interval = sample_interval
        self.cgroups: CgroupSupport = detect()
        self.sandboxes: list[Sandbox] = []
        self.started = Signal("sandbox started")
        self.changed = Signal("sandbox changed")
        self.exited = Signal("sandbox exited")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cpu_last: dict[int, tuple[float, int]] = {}
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    # ---- checks -----------------------------------------------------------------------

    def resolve_program(self, program: str, profile: SandboxProfile) -> Path:
        """The program's path, checked to exist and to be visible in the sandbox."""
        if not program.strip():
            raise VirtStudioError("Enter the program to run.")
        if "/" in program:
            path = Path(program)
        else:
            found = shutil.which(program, path=SANDBOX_PATH)
            if found is None:
                raise VirtStudioError(
                    f"The program “{program}” was not found: nothing was started.")
            path = Path(found)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise VirtStudioError(
                f"{path} is missing or not an executable program: nothing was started.")
        if not visible_inside(path, profile):
            raise VirtStudioError(
                f"{path} is outside what the profile “{profile.name}” lets the sandbox see; "
                f"grant its folder {path.parent} (read-only is enough).")
        return path

    @staticmethod
    def _check_reachable(profile: SandboxProfile, identity: SandboxIdentity) -> None:
        for paths, write in ((profile.read_only, False), (profile.read_write, True)):
            for path in paths:
                if not identity.can_use(Path(path).resolve(), write=write):
                    verb = "change" if write else "read"
                    raise VirtStudioError(
                        f"Started by root, the sandbox runs as the unprivileged user "
                        f"{identity.user}, who may not {verb} {path}: nothing was started. "
                        f"Give {identity.user} access to it, or start VirtStudio as yourself.")

    @staticmethod
    def _x_cookie_for(identity: SandboxIdentity, state_dir: Path) -> Path | None:
        """Root's X cookie, copied for the sandbox's user (root's own file is root's alone)."""
        source = os.environ.get("XAUTHORITY", "")
        if not source or not Path(source).is_file():
            return None
        copy = state_dir / "Xauthority"
        shutil.copyfile(source, copy)
        copy.chmod(0o600)
        os.chown(copy, identity.uid, identity.gid)
        return copy

    def home_for(self, profile: SandboxProfile,
                 identity: SandboxIdentity | None = None) -> Path:
        home = self.data_dir / "sandboxes" / slug(profile.name) / "home"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if identity is not None and identity.drops_root:
            # The sandbox's unprivileged user must own its home to use it.
            os.chown(home, identity.uid, identity.gid)
        return home

    # ---- launching ----------------------------------------------------------------------

    def launch(self, profile: SandboxProfile, command: list[str], *,
               address: str | None = None, stdin: int | None = None) -> Sandbox:
        """Start ``command`` under ``profile``; raise VirtStudioError, having started nothing."""
        profile.validate()
        if not command:
            raise VirtStudioError("Enter the program to run.")
        program = self.resolve_program(command[0], profile)
        if shutil.which(self.bwrap) is None:
            raise VirtStudioError("bubblewrap (bwrap) is not installed: nothing was started.")
        if profile.network == "bridge" and not network.bridge_exists(profile.bridge,
                                                                     self.host_netns):
            raise VirtStudioError(
                f"The bridge {profile.bridge} does not exist (any more): nothing was started.")
        seccomp = build_filter()
        identity = launcher_identity()
        if identity.drops_root:
            self._check_reachable(profile, identity)
            if profile.dbus == "filtered":
                raise VirtStudioError(
                    f"Started by root, the sandbox runs as the unprivileged user {identity.user}, "
                    "whom root's session bus does not accept: a profile with the session bus "
                    "(D-Bus) starts only when VirtStudio runs as yourself. Nothing was started.")
        sandbox_id = next(self._ids)
        logs = self.data_dir / "sandbox-logs"
        logs.mkdir(parents=True, exist_ok=True)
        sandbox = Sandbox(sandbox_id, profile, [str(program), *command[1:]],
                          logs / f"{sandbox_id:04d}-{slug(profile.name)}.log")
        wants_limits = bool(profile.memory_mb or profile.cpu_percent or profile.max_processes)
        cgroup = SandboxCgroup(f"sandbox-{os.getpid()}-{sandbox_id}", self.cgroups)
        if identity.drops_root:
            sandbox.warnings.append(f"Started by root: runs as the unprivileged user "
                                    f"{identity.user} (uid {identity.uid}).")
        if wants_limits:
            if self.cgroups.kind:
                cgroup.create(profile)
            else:
                sandbox.warnings.append(f"Limits not applied: {self.cgroups.reason}")
        proxy: subprocess.Popen[bytes] | None = None
        sandbox.state_dir = self.data_dir / "run" / f"sandbox-{os.getpid()}-{sandbox_id}"
        try:
            plan = LaunchPlan(command=sandbox.command, home_dir=self.home_for(profile, identity),
                              identity=identity, state_dir=sandbox.state_dir)
            write_etc(plan)
            if identity.drops_root and profile.display == "x11":
                plan.xauthority = self._x_cookie_for(identity, sandbox.state_dir)
            if profile.dbus == "filtered":
                proxy, plan.dbus_socket = self._start_dbus_proxy(profile, sandbox_id)
                if identity.drops_root:
                    os.chown(plan.dbus_socket, identity.uid, identity.gid)
            self._start(sandbox, plan, seccomp, cgroup, address, stdin)
        except BaseException:
            cgroup.remove()
            if proxy is not None:
                proxy.kill()
                proxy.wait()
            if sandbox.user_network is not None:
                sandbox.user_network.stop()
            shutil.rmtree(sandbox.state_dir, ignore_errors=True)
            raise
        with self._lock:
            self.sandboxes.append(sandbox)
        threading.Thread(target=self._wait, args=(sandbox, cgroup, proxy),
                         name=f"sandbox {sandbox_id}", daemon=True).start()
        self._ensure_sampler()
        self.started.emit(sandbox)
        return sandbox

    def _start(self, sandbox: Sandbox, plan: LaunchPlan, seccomp: bytes, cgroup: SandboxCgroup,
               address: str | None, stdin: int | None) -> None:
        host_if = f"vsb{os.getpid() % 10000}x{sandbox.id}"[:15]
        internet = sandbox.profile.network == "internet"
        prefix: list[str] = []
        if internet and plan.identity.drops_root:
            sandbox.user_network = network.hold_user_mode_namespace(
                plan.identity.uid, plan.identity.gid, self.host_netns)
            plan.shares_netns = True
            prefix = [network.NSENTER, f"--net={sandbox.user_network.netns_path}", "--"]
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        try:
            with tempfile.TemporaryFile() as seccomp_file, sandbox.log_path.open("ab") as log:
                seccomp_file.write(seccomp)
                seccomp_file.seek(0)
                plan.info_fd, plan.block_fd = info_w, block_r
                plan.seccomp_fd = seccomp_file.fileno()
                argv = prefix + build_bwrap_args(sandbox.profile, plan, self.bwrap)
                log.write(f"$ {' '.join(sandbox.command)}\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT,
                    pass_fds=(info_w, block_r, plan.seccomp_fd),
                    env={"PATH": os.environ.get("PATH", SANDBOX_PATH)}, close_fds=True)
        except BaseException:
            for fd in (info_r, block_w):
                os.close(fd)
            raise
        finally:
            os.close(info_w)
            os.close(block_r)
        sandbox.pid = proc.pid
        sandbox.process = proc
        try:
            info = self._read_info(info_r, proc)
            sandbox.child_pid = int(info["child-pid"])
            if cgroup.dirs:
                cgroup.add(sandbox.child_pid)
            if sandbox.profile.network == "bridge":
                network.attach_to_bridge(sandbox.child_pid, sandbox.profile.bridge, host_if,
                                         netns=self.host_netns, address=address)
                sandbox.host_ifname = host_if
            if internet and sandbox.user_network is None:
                assert plan.state_dir is not None
                sandbox.user_network = network.attach_user_mode(
                    sandbox.child_pid, plan.state_dir / "pasta.pid", self.host_netns)
            os.write(block_w, b"go")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            os.close(block_w)
            os.close(info_r)
        sandbox.state = "running"

    @staticmethod
    def _read_info(fd: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> dict:
        data = b""
        deadline = time.monotonic() + timeout
        os.set_blocking(fd, False)
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                chunk = None
            if chunk:
                data += chunk
                with contextlib.suppress(ValueError):
                    return json.loads(data)
            elif chunk == b"" or proc.poll() is not None:
                break
            time.sleep(0.005)
        raise VirtStudioError("bubblewrap did not set up the sandbox: nothing was started. "
                              "See the sandbox's log for bwrap's message.")

    def _start_dbus_proxy(self, profile: SandboxProfile,
                          sandbox_id: int) -> tuple[subprocess.Popen[bytes], Path]:
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
        if not address:
            raise VirtStudioError("There is no session bus to filter (D-Bus is not running for "
                                  "this session): nothing was started.")
        tool = shutil.which("xdg-dbus-proxy")
        if tool is None:
            raise VirtStudioError("Filtered D-Bus needs xdg-dbus-proxy, which is not installed: "
                                  "nothing was started.")
        runtime = self.data_dir / "run"
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        socket = runtime / f"bus-{os.getpid()}-{sandbox_id}"
        argv = [tool, address, str(socket), "--filter",
                *[f"--talk={name}" for name in profile.dbus_talk]]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise VirtStudioError("The D-Bus filter did not start: nothing was started.")
            time.sleep(0.02)
        return proc, socket

    def _wait(self, sandbox: Sandbox, cgroup: SandboxCgroup,
              proxy: subprocess.Popen[bytes] | None) -> None:
        assert sandbox.process is not None
        code = sandbox.process.wait()
        try:
            sandbox.exit_code = code
            sandbox.ended = time.time()
            sandbox.out_of_memory = cgroup.oom_killed()
            if sandbox.state != "stopped":
                sandbox.state = "killed" if sandbox.out_of_memory else "exited"
            if sandbox.out_of_memory:
                sandbox.warnings.append("Stopped by its memory limit.")
            if proxy is not None:
                proxy.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proxy.wait(5)
            if sandbox.host_ifname:
                network.detach(sandbox.host_ifname, self.host_netns)
            if sandbox.user_network is not None:
                sandbox.user_network.stop()
            if sandbox.state_dir is not None:
                shutil.rmtree(sandbox.state_dir, ignore_errors=True)
            # The group can only go once its last process has.
            for _ in range(50):
                if not cgroup.pids():
                    break
                time.sleep(0.05)
            cgroup.remove()
        finally:
            # Whatever clean-up failed, the panel must learn that it ended.
            sandbox.processes = []
            sandbox.cpu_percent = 0.0
            self.exited.emit(sandbox)

    # ---- stopping ----------------------------------------------------------------------

    def stop(self, sandbox: Sandbox, grace: float = STOP_GRACE_S) -> None:
        """Ask the sandbox to end, then kill it; returns at once."""
        if not sandbox.running:
            return
        sandbox.state = "stopped"

        def kill() -> None:
            # Killing the namespace's first process ends every process in it.
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sandbox.child_pid or sandbox.pid, sig)
                assert sandbox.process is not None
                try:
                    sandbox.process.wait(wait)
                    return
                except subprocess.TimeoutExpired:
                    continue

        threading.Thread(target=kill, name=f"stop sandbox {sandbox.id}", daemon=True).start()

    def stop_all(self) -> None:
        for sandbox in list(self.sandboxes):
            self.stop(sandbox, grace=1.0)
        self._stop_sampling.set()

    # ---- monitoring --------------------------------------------------------------------

    def _ensure_sampler(self) -> None:
        if self._sampler is None or not self._sampler.is_alive():
            self._stop_sampling.clear()
            self._sampler = threading.Thread(target=self._sample_loop, name="sandbox monitor",
                                             daemon=True)
            self._sampler.start()

    def _sample_loop(self) -> None:
        while not self._stop_sampling.wait(self.sample_interval):
            running = [s for s in list(self.sandboxes) if s.running and s.child_pid]
            if not running:
                continue
            for sandbox in running:
                self.sample(sandbox)
                self.changed.emit(sandbox)

    def sample(self, sandbox: Sandbox) -> None:
        """Read the sandbox's processes with their CPU and memory use."""
        try:
            target = os.readlink(f"/proc/{sandbox.child_pid}/ns/pid")
        except OSError:
            return
        now = time.monotonic()
        found: list[ProcessInfo] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != target:
                    continue
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2:].split()
            ticks = int(rest[11]) + int(rest[12])
            rss = int(rest[21]) * _PAGE
            info = ProcessInfo(pid, name, 0.0, rss)
            last = self._cpu_last.get(pid)
            if last is not None and now > last[0]:
                info.cpu_percent = (ticks - last[1]) / _CLK_TCK / (now - last[0]) * 100
            self._cpu_last[pid] = (now, ticks)
            found.append(info)
        sandbox.processes = found
        sandbox.cpu_percent = sum(p.cpu_percent for p in found)
        sandbox.memory_bytes = sum(p.rss_bytes for p in found)

