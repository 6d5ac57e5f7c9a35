"""Resource limits for sandboxes through cgroups.

cgroup v2 is used where this process may create child groups with the
memory, pids and cpu controllers enabled (a delegated subtree, or root).  On
hosts that still mount those controllers as cgroup v1 (hybrid layout), root
uses the v1 hierarchies.  Anywhere else limits cannot be enforced, and
``CgroupSupport.reason`` says why in words the panel shows.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.sandbox.profile import SandboxProfile

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_NAME = "virtstudio-sandboxes"
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupSupport:
    kind: str  # "v2", "v1" or "" when limits cannot be applied
    reason: str = ""


def _own_v2_group(root: Path) -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return root / line[3:].lstrip("/")
    except OSError:
        return None
    return None


def detect(root: Path = CGROUP_ROOT) -> CgroupSupport:
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        have = set(controllers.read_text().split())
        if {"memory", "pids"} <= have and os.access(root, os.W_OK):
            return CgroupSupport("v2")
        own = _own_v2_group(root)
        if own is not None and os.access(own, os.W_OK) and {"memory", "pids"} <= set(
                (own / "cgroup.controllers").read_text().split()):
            return CgroupSupport("v2")
        return CgroupSupport("", "This system does not delegate cgroup v2 memory and process "
                                 "control to VirtStudio, so limits cannot be applied.")
    if (root / "memory").is_dir() and (root / "pids").is_dir():
        if os.geteuid() == 0 and os.access(root / "memory", os.W_OK):
            return CgroupSupport("v1")
        return CgroupSupport("", "This system uses the older cgroup v1 layout, where only "
                                 "root can set limits, so limits cannot be applied.")
    return CgroupSupport("", "This system has no cgroup controllers for memory and "
                             "processes, so limits cannot be applied.")


class SandboxCgroup:
    """The group one sandbox runs in; created before it starts, removed after."""

    def __init__(self, name: str, support: CgroupSupport, root: Path = CGROUP_ROOT) -> None:
        self.name = name
        self.support = support
        self.root = root
        self.dirs: dict[str, Path] = {}

    def create(self, profile: SandboxProfile) -> None:
        try:
            if self.support.kind == "v2":
                self._create_v2(profile)
            elif self.support.kind == "v1":
                self._create_v1(profile)
        except OSError as exc:
            self.remove()
            raise VirtStudioError(f"Could not set the sandbox's limits: {exc.strerror}.",
                                  str(exc)) from None

    def _create_v2(self, profile: SandboxProfile) -> None:
        base = self.root / GROUP_NAME
        base.mkdir(exist_ok=True)
        # Controllers must be enabled in the parent before children can use them.
        with contextlib.suppress(OSError):
            (self.root / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        with contextlib.suppress(OSError):
            (base / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        group = base / self.name
        group.mkdir()
        self.dirs["unified"] = group
        if profile.memory_mb:
            (group / "memory.max").write_text(str(profile.memory_mb << 20))
            with contextlib.suppress(OSError):
                (group / "memory.swap.max").write_text("0")
        if profile.max_processes:
            (group / "pids.max").write_text(str(profile.max_processes))
        if profile.cpu_percent and (group / "cpu.max").exists():
            quota = CPU_PERIOD_US * profile.cpu_percent // 100
            (group / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")

    def _create_v1(self, profile: SandboxProfile) -> None:
        def group(controller: str) -> Path:
            path = self.root / controller / GROUP_NAME / self.name
            path.mkdir(parents=True)
            self.dirs[controller] = path
            return path

        memory = group("memory")
        if profile.memory_mb:
            (memory / "memory.limit_in_bytes").write_text(str(profile.memory_mb << 20))
            with contextlib.suppress(OSError):
                (memory / "memory.memsw.limit_in_bytes").write_text(str(profile.memory_mb << 20))
        pids = group("pids")
        if profile.max_processes:
            (pids / "pids.max").write_text(str(profile.max_processes))
        if profile.cpu_percent and (self.root / "cpu").is_dir():
            cpu = group("cpu")
            (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(CPU_PERIOD_US * profile.cpu_percent // 100))

    def add(self, pid: int) -> None:
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        path = self.dirs.get("unified") or self.dirs.get("pids") or self.dirs.get("memory")
        if path is None:
            return []
        try:
            return [int(x) for x in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def memory_bytes(self) -> int | None:
        for path, name in ((self.dirs.get("unified"), "memory.current"),
                           (self.dirs.get("memory"), "memory.usage_in_bytes")):
            if path is not None:
                try:
                    return int((path / name).read_text())
                except (OSError, ValueError):
                    return None
        return None

    def oom_killed(self) -> bool:
        unified = self.dirs.get("unified")
        memory = self.dirs.get("memory")
        try:
            if unified is not None:
                for line in (unified / "memory.events").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
            if memory is not None:
                for line in (memory / "memory.oom_control").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
                return int((memory / "memory.failcnt").read_text()) > 0 and not self.pids()
        except (OSError, ValueError):
            return False
        return False

    def remove(self) -> None:
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                path.rmdir()
        self.dirs.clear()
