"""Guards against Qt binding releases with reference-counting bugs that crash long runs."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication


def test_process_events_keeps_none_alive(qapp):
    # PySide6 6.12.0 dropped one reference to None per call; a test session or a
    # long-running app then dies with "deallocating None".
    before = sys.getrefcount(None)
    for _ in range(200):
        QCoreApplication.processEvents()
    assert sys.getrefcount(None) >= before - 20
