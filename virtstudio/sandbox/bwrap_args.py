"""Compile a profile into a bubblewrap argument list (never a shell string).

The sandbox sees the system's programs read-only and an /etc of its own: the
few generated files that name its user and host, and a short list of host
files programs need to run (libraries' cache, name service switch, time zone,
CA certificates, fonts) — never the host's /etc with its passwords, keys and
settings.  Granted folders are bound by the real path they resolve to at
launch, after the deny-list of ``grants`` has checked it again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from virtstudio.sandbox.grants import GrantRules, resolve_grant
from virtstudio.sandbox.identity import SandboxIdentity, launcher_identity
from virtstudio.sandbox.profile import SandboxProfile

# Where the system's programs live; each is shared read-only, or recreated as
# the same symlink on merged-/usr systems.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
# Host files under /etc a sandbox may see: what programs need, nothing secret.
# (alternatives: Debian's program choices, symlinks into /usr.)
ETC_FROM_HOST = ("ld.so.cache", "nsswitch.conf", "host.conf", "gai.conf", "localtime",
                 "ssl/certs", "pki/tls/certs", "fonts", "alternatives")
ETC_FOR_NETWORK = ("resolv.conf",)
# Written per launch into the sandbox's state folder (see ``write_etc``).
ETC_GENERATED = ("passwd", "group", "hosts", "hostname")
HOSTNAME = "sandbox"


@dataclass
class LaunchPlan:
    """Everything a launch needs besides the profile: resolved by the launcher."""

    command: list[str]
    home_dir: Path  # the private home on the host
    identity: SandboxIdentity = field(default_factory=launcher_identity)
    state_dir: Path | None = None  # this launch's generated /etc and runtime folder
    shares_netns: bool = False  # joins a network namespace made for it (user-mode network)
    xauthority: Path | None = None  # a copy of the X cookie the sandbox's user may read
    home_inside: str = "/home/sandbox"
    runtime_inside: str = "/run/user/sandbox"
    info_fd: int = -1
    block_fd: int = -1
    seccomp_fd: int = -1
    dbus_socket: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def _parents(dest: str) -> list[str]:
    """Make every folder above ``dest`` searchable (bwrap would make missing ones 0700, which
    a sandbox started by root, running as another user, could not enter)."""
    args: list[str] = []
    for parent in reversed(Path(dest).parents[:-1]):  # top-down, without "/"
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    return args


def write_etc(plan: LaunchPlan) -> None:
    """Write the generated /etc files and the runtime folder into ``plan.state_dir``."""
    assert plan.state_dir is not None
    etc = plan.state_dir / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    texts = {
        "passwd": plan.identity.passwd_text(plan.home_inside),
        "group": plan.identity.group_text(),
        "hosts": f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost\n",
        "hostname": f"{HOSTNAME}\n",
    }
    for name in ETC_GENERATED:
        (etc / name).write_text(texts[name])
        (etc / name).chmod(0o644)
    runtime = plan.state_dir / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    if plan.identity.drops_root:
        os.chown(runtime, plan.identity.uid, plan.identity.gid)


def _etc_binds(profile: SandboxProfile, plan: LaunchPlan) -> list[str]:
    args = ["--perms", "0755", "--dir", "/etc"]
    if plan.state_dir is not None:
        for name in ETC_GENERATED:
            args += ["--ro-bind", str(plan.state_dir / "etc" / name), f"/etc/{name}"]
    names = ETC_FROM_HOST + (ETC_FOR_NETWORK if profile.network != "none" else ())
    system = [Path(p).resolve() for p in SYSTEM_DIRS if Path(p).exists()]
    for name in names:
        host = Path("/etc") / name
        if host.is_symlink():
            target = host.resolve()
            if any(target == root or root in target.parents for root in system):
                args += ["--symlink", str(target), str(host)]  # e.g. localtime -> zoneinfo
                continue
        if host.exists():
            args += [*_parents(str(host)), "--ro-bind", str(host), str(host)]
    return args


def _display_binds(profile: SandboxProfile, plan: LaunchPlan) -> list[str]:
    args: list[str] = []
    if profile.display == "x11":
        display = os.environ.get("DISPLAY", "")
        number = display.split(":")[-1].split(".")[0] if ":" in display else ""
        socket = Path(f"/tmp/.X11-unix/X{number}")
        if number and socket.exists():
            args += [*_parents(str(socket)), "--ro-bind", str(socket), str(socket)]
            plan.env["DISPLAY"] = f":{number}"
        xauth = str(plan.xauthority or os.environ.get("XAUTHORITY", ""))
        if xauth and Path(xauth).is_file():
            args += ["--ro-bind", xauth, f"{plan.home_inside}/.Xauthority"]
            plan.env["XAUTHORITY"] = f"{plan.home_inside}/.Xauthority"
    elif profile.display == "wayland":
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        name = os.environ.get("WAYLAND_DISPLAY", "wayland-0")
        socket = Path(runtime) / name
        if runtime and socket.exists():
            args += ["--ro-bind", str(socket), f"{plan.runtime_inside}/{name}"]
            plan.env["WAYLAND_DISPLAY"] = name
    if profile.sound:
        runtime = Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"))
        for name in ("pulse/native", "pipewire-0"):
            socket = runtime / name
            if socket.exists():
                inside = f"{plan.runtime_inside}/{name}"
                args += [*_parents(inside), "--ro-bind", str(socket), inside]
        if (runtime / "pulse/native").exists():
            plan.env["PULSE_SERVER"] = f"unix:{plan.runtime_inside}/pulse/native"
    return args


def build_bwrap_args(profile: SandboxProfile, plan: LaunchPlan, bwrap: str = "bwrap") -> list[str]:
    """The argv that runs ``plan.command`` under ``profile``."""
    identity = plan.identity
    if identity.drops_root:
        # Built as root without a user namespace; setpriv drops to the identity inside.
        args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args = [bwrap, "--unshare-all", "--cap-drop", "ALL"]
        if plan.shares_netns:
            raise ValueError("only a root launcher joins a prepared network namespace")
    if identity.drops_root and not plan.shares_netns:
        args.append("--unshare-net")
    args += ["--die-with-parent", "--new-session", "--hostname", HOSTNAME]
    args += _system_binds()
    args += _etc_binds(profile, plan)
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--tmpfs", "/tmp",
             "--perms", "0755", "--dir", "/var", "--perms", "1777", "--tmpfs", "/var/tmp",
             "--perms", "0755", "--tmpfs", "/run", "--perms", "0755", "--dir", "/run/user",
             "--perms", "0755", "--dir", "/home"]
    if plan.state_dir is not None:
        args += ["--bind", str(plan.state_dir / "runtime"), plan.runtime_inside]
    else:
        args += ["--dir", plan.runtime_inside, "--chmod", "0700", plan.runtime_inside]
    if profile.private_home:
        args += ["--bind", str(plan.home_dir), plan.home_inside]
    else:
        args += ["--dir", plan.home_inside]
    # Checked again here, at launch: a symlink may have changed since the profile was saved.
    rules = GrantRules.for_user()
    for path in profile.read_only:
        real = str(resolve_grant(path, writable=False, rules=rules))
        args += [*_parents(real), "--ro-bind", real, real]
    for path in profile.read_write:
        real = str(resolve_grant(path, writable=True, rules=rules))
        args += [*_parents(real), "--bind", real, real]
    args += _display_binds(profile, plan)
    if plan.dbus_socket is not None:
        args += ["--ro-bind", str(plan.dbus_socket), f"{plan.runtime_inside}/bus"]
        plan.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={plan.runtime_inside}/bus"
    plan.env.update({"HOME": plan.home_inside, "PATH": SANDBOX_PATH,
                     "XDG_RUNTIME_DIR": plan.runtime_inside, "TMPDIR": "/tmp",
                     "LANG": os.environ.get("LANG", "C.UTF-8")})
    for key, value in sorted(plan.env.items()):
        args += ["--setenv", key, value]
    # The root of the sandbox's own tree (where /etc was made) is read-only too.
    args += ["--remount-ro", "/", "--chdir", plan.home_inside]
    if plan.seccomp_fd >= 0:
        args += ["--seccomp", str(plan.seccomp_fd)]
    if plan.info_fd >= 0:
        args += ["--info-fd", str(plan.info_fd)]
    if plan.block_fd >= 0:
        args += ["--block-fd", str(plan.block_fd)]
    args += ["--", *identity.drop_argv(), *plan.command]
    return args


def visible_inside(path: Path, profile: SandboxProfile) -> bool:
    """Whether the sandbox can see ``path`` (a program to run, say)."""
    path = path.resolve()
    roots = [Path(p).resolve() for p in SYSTEM_DIRS if Path(p).exists()]
    roots += [Path(p).resolve() for p in (*profile.read_only, *profile.read_write)]
    return any(path == root or root in path.parents for root in roots)
