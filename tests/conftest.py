"""Test-wide setup: offscreen Qt, and the check that no libvirt call runs on the GUI thread."""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path

# Both must be set before any QApplication exists (see docs/architecture.md).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QT_NO_GLIB"] = "1"

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402

from virtstudio.core import thread_guard  # noqa: E402

thread_guard.install()

# Garbage collection happens on the main thread only (after each test, and on the
# GUI thread's timer in Qt tests), as in the app: a collection on a worker thread
# would destroy Qt objects there (see virtstudio/ui/gc_on_gui_thread.py).
gc.disable()

_GUI_FIXTURES = {"qtbot", "qapp", "main_window"}


@pytest.fixture(autouse=True)
def _no_libvirt_on_gui_thread(request: pytest.FixtureRequest):
    """In tests that run a Qt GUI, fail when libvirt was called on the GUI thread."""
    gui = bool(_GUI_FIXTURES & set(request.fixturenames))
    thread_guard.take_violations()
    thread_guard.set_gui_thread(threading.main_thread() if gui else None)
    if gui:
        from virtstudio.ui import gc_on_gui_thread

        request.getfixturevalue("qapp")
        gc_on_gui_thread.install()
    yield
    gc.collect()
    thread_guard.set_gui_thread(None)
    found = thread_guard.take_violations()
    if found:
        pytest.fail("libvirt was called on the GUI thread:\n" + "\n".join(found[:3]))


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    from virtstudio.ui.settings import ConnectionSettings

    return ConnectionSettings(QSettings(str(tmp_path / "settings.ini"),
                                        QSettings.Format.IniFormat))


@pytest.fixture
def make_main_window(qtbot, settings):
    from virtstudio.core.inventory import Inventory
    from virtstudio.core.jobs import JobRunner
    from virtstudio.ui.main_window import MainWindow

    made = []

    def make(inventory=None):
        inventory = inventory or Inventory(stats_interval=0.3)
        runner = JobRunner()
        window = MainWindow(inventory, runner, settings)
        qtbot.addWidget(window)
        window.show()
        made.append((window, inventory, runner))
        return window

    yield make
    for window, inventory, runner in made:
        runner.shutdown(wait=True)
        inventory.shutdown(wait=True)
        window.close()
