"""Inventory benchmark: connect to generated test-driver hosts and fill the VM list.

For each size N, a fresh process opens a fixture of N domains in the real
main window (offscreen) and measures:
  populate_s    seconds from asking to connect to the list holding all N rows
  rss_mb        the process's peak resident memory
  max_stall_ms  the longest the GUI thread was busy between two 5 ms timer ticks
Prints one JSON object per line.  Usage: python -m bench.inventory [N ...]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (100, 1000, 5000)
TICK_MS = 5


def measure(domains: int) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_NO_GLIB"] = "1"
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from virtstudio.core.fixtures import write_fixture
    from virtstudio.core.inventory import Inventory
    from virtstudio.core.jobs import JobRunner
    from virtstudio.core.runtime import tune_gc, tune_thread_switching
    from virtstudio.ui import gc_on_gui_thread
    from virtstudio.ui.main_window import MainWindow
    from virtstudio.ui.settings import ConnectionSettings

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        fixture = write_fixture(Path(tmp) / "bench.xml", domains)
        from PySide6.QtCore import QSettings

        settings = ConnectionSettings(QSettings(str(Path(tmp) / "s.ini"),
                                                QSettings.Format.IniFormat))
        inventory = Inventory(stats_interval=float(os.environ.get("BENCH_STATS", "1.0")))
        window = MainWindow(inventory, JobRunner(), settings)
        window.show()
        app.processEvents()
        tune_gc()  # as the app does once its window exists
        tune_thread_switching()
        gc_on_gui_thread.install()

        stall = {"max": 0.0}
        clock = QElapsedTimer()
        ticker = QTimer()
        ticker.setInterval(TICK_MS)

        def tick() -> None:
            elapsed = clock.nsecsElapsed() / 1e6
            stall["max"] = max(stall["max"], elapsed - TICK_MS)
            clock.restart()

        ticker.timeout.connect(tick)
        result: dict[str, float] = {}

        def check() -> None:
            if window.vm_model.rowCount() >= domains and window.vm_proxy.rowCount() >= domains:
                result["populate_s"] = time.perf_counter() - start
                # Keep ticking a little: the view lays out after the last insert.
                QTimer.singleShot(300, app.quit)
            else:
                QTimer.singleShot(1, check)

        clock.start()
        ticker.start()
        start = time.perf_counter()
        inventory.add(f"test://{fixture}")
        QTimer.singleShot(1, check)
        QTimer.singleShot(60_000, app.quit)
        app.exec()
        ticker.stop()
        inventory.shutdown()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "domains": domains,
        "populate_s": round(result.get("populate_s", float("nan")), 4),
        "rss_mb": round(rss_mb, 1),
        "max_stall_ms": round(max(stall["max"], 0.0), 1),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure(int(argv[1]))), flush=True)
        return 0
    sizes = [int(a) for a in argv] or list(SIZES)
    for n in sizes:
        # A process per size, so peak memory belongs to that size alone.
        out = subprocess.run([sys.executable, "-m", "bench.inventory", "--one", str(n)],
                             check=True, capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
