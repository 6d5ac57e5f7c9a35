"""Compile a profile into a bubblewrap argument list (never a shell string)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from virtstudio.sandbox.profile import SandboxProfile

# Where the system's programs live; each is shared read-only, or recreated as
# the same symlink on merged-/usr systems.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass
class LaunchPlan:
    """Everything a launch needs besides the profile: resolved by the launcher."""

    command: list[str]
    home_dir: Path  # the private home on the host
    home_inside: str = "/home/sandbox"
    runtime_inside: str = "/run/user/sandbox"
    info_fd: int = -1
    block_fd: int = -1
    seccomp_fd: int = -1
    dbus_socket: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    return args


def _display_binds(profile: SandboxProfile, plan: LaunchPlan) -> list[str]:
    args: list[str] = []
    if profile.display == "x11":
        display = os.environ.get("DISPLAY", "")
        number = display.split(":")[-1].split(".")[0] if ":" in display else ""
        socket = Path(f"/tmp/.X11-unix/X{number}")
        if number and socket.exists():
            args += ["--ro-bind", str(socket), str(socket)]
            plan.env["DISPLAY"] = f":{number}"
        xauth = os.environ.get("XAUTHORITY", "")
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
                args += ["--ro-bind", str(socket), f"{plan.runtime_inside}/{name}"]
        if (runtime / "pulse/native").exists():
            plan.env["PULSE_SERVER"] = f"unix:{plan.runtime_inside}/pulse/native"
    return args


def build_bwrap_args(profile: SandboxProfile, plan: LaunchPlan, bwrap: str = "bwrap") -> list[str]:
    """The argv that runs ``plan.command`` under ``profile``."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--hostname", "sandbox"]
    if profile.network == "host":
        args.append("--share-net")
    args += _system_binds()
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
             "--tmpfs", "/run", "--dir", plan.runtime_inside,
             "--chmod", "0700", plan.runtime_inside]
    if profile.private_home:
        args += ["--bind", str(plan.home_dir), plan.home_inside]
    else:
        args += ["--dir", plan.home_inside]
    for path in profile.read_only:
        args += ["--ro-bind", path, path]
    for path in profile.read_write:
        args += ["--bind", path, path]
    args += _display_binds(profile, plan)
    if plan.dbus_socket is not None:
        args += ["--ro-bind", str(plan.dbus_socket), f"{plan.runtime_inside}/bus"]
        plan.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={plan.runtime_inside}/bus"
    plan.env.update({"HOME": plan.home_inside, "PATH": SANDBOX_PATH,
                     "XDG_RUNTIME_DIR": plan.runtime_inside, "TMPDIR": "/tmp",
                     "LANG": os.environ.get("LANG", "C.UTF-8")})
    for key, value in sorted(plan.env.items()):
        args += ["--setenv", key, value]
    args += ["--chdir", plan.home_inside]
    if plan.seccomp_fd >= 0:
        args += ["--seccomp", str(plan.seccomp_fd)]
    if plan.info_fd >= 0:
        args += ["--info-fd", str(plan.info_fd)]
    if plan.block_fd >= 0:
        args += ["--block-fd", str(plan.block_fd)]
    args += ["--", *plan.command]
    return args


def visible_inside(path: Path, profile: SandboxProfile) -> bool:
    """Whether the sandbox can see ``path`` (a program to run, say)."""
    path = path.resolve()
    roots = [Path(p).resolve() for p in SYSTEM_DIRS if Path(p).exists()]
    roots += [Path(p) for p in (*profile.read_only, *profile.read_write)]
    return any(path == root or root in path.parents for root in roots)
