"""Linked clones cost the same whatever the size: clone a 1 GiB and a 100 GiB qcow2.

Both bases hold the same 8 MiB of data; a linked clone is a qcow2 overlay, so
its creation time must not grow with the virtual size.  Prints one JSON object
with the medians in milliseconds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virtstudio.storage import qemu_img

GiB = 1024**3
RUNS = 15


def median_clone_ms(base: Path, folder: Path, runs: int) -> float:
    times = []
    for i in range(runs):
        target = folder / f"{base.stem}-clone{i}.qcow2"
        start = time.perf_counter()
        qemu_img.linked_clone(base, target, base_fmt="qcow2")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result: dict[str, float | int] = {"runs": runs}
        for label, size in (("1g", GiB), ("100g", 100 * GiB)):
            base = folder / f"base-{label}.qcow2"
            qemu_img.create(base, size)
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x42 0 8M", str(base)],
                           check=True, capture_output=True)
            result[f"clone_{label}_ms"] = round(median_clone_ms(base, folder, runs), 2)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
