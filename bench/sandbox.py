"""Sandbox launch overhead: a full VirtStudio launch against bare bwrap, both running `true`.

The bare run uses the very argv the profile compiles to, so the difference is
the launcher's own work: checks, seccomp program, cgroup, info/block pipes,
monitoring.  Prints one JSON object with medians in milliseconds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from virtstudio.sandbox.bwrap_args import LaunchPlan, build_bwrap_args
from virtstudio.sandbox.manager import SandboxManager
from virtstudio.sandbox.profile import SandboxProfile

RUNS = 30


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    with tempfile.TemporaryDirectory() as tmp:
        manager = SandboxManager(Path(tmp), sample_interval=60)
        profile = SandboxProfile(name="bench", memory_mb=256, max_processes=64)
        plan = LaunchPlan(command=["/usr/bin/true"], home_dir=manager.home_for(profile))
        bare_argv = build_bwrap_args(profile, plan)
        done = threading.Event()
        manager.exited.connect(lambda _sandbox: done.set())

        bare, full = [], []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(bare_argv, check=True, stdin=subprocess.DEVNULL)
            bare.append((time.perf_counter() - start) * 1000)

            done.clear()
            start = time.perf_counter()
            sandbox = manager.launch(profile, ["/usr/bin/true"])
            done.wait(30)
            full.append((time.perf_counter() - start) * 1000)
            if sandbox.exit_code != 0:
                raise SystemExit(f"sandboxed true failed: {sandbox.log_text()}")
        bwrap_ms = statistics.median(bare)
        sandbox_ms = statistics.median(full)
        print(json.dumps({"runs": runs, "bwrap_ms": round(bwrap_ms, 2),
                          "sandbox_ms": round(sandbox_ms, 2),
                          "overhead_ms": round(sandbox_ms - bwrap_ms, 2),
                          "limits": manager.cgroups.kind or "none"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
