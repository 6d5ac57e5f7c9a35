"""Test-wide setup: offscreen Qt, the check that no libvirt call runs on the GUI thread,
and the session's housekeeping: it starts by removing what a killed run left behind
(every ``vstest-*`` object, tests/lab/leftovers.py) and fails at its end when the system
libvirtd stopped answering or ``vstest-*`` objects remain."""

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

_DAEMON_AT_START = pytest.StashKey[bool]()

from virtstudio.core import thread_guard  # noqa: E402

thread_guard.install()

# Garbage collection happens on the main thread only (after each test, and on the
# GUI thread's timer in Qt tests), as in the app: a collection on a worker thread
# would destroy Qt objects there (see virtstudio/ui/gc_on_gui_thread.py).
gc.disable()

_GUI_FIXTURES = {"qtbot", "qapp", "main_window"}
# Housekeeping libvirt calls get this long before the session gives up on the daemon.
_HOUSEKEEPING_S = 120.0


def _in_kernel_lab() -> bool:
    """Inside the kernel lab VM: it boots fresh each run and shares the host's files,
    whose vstest-* objects belong to the host's sessions."""
    try:
        return "virtme" in Path("/proc/cmdline").read_text()
    except OSError:
        return False


def _say(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)
    else:
        print(text, file=sys.stderr)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if getattr(config, "workerinput", None) is not None or _in_kernel_lab():
        return
    from tests.helpers import off_gui_thread
    from tests.lab import leftovers

    config.stash[_DAEMON_AT_START] = off_gui_thread(leftovers.system_daemon_answers,
                                                    timeout=_HOUSEKEEPING_S)
    stale = leftovers.ours(off_gui_thread(leftovers.find_all, timeout=_HOUSEKEEPING_S),
                           at_start=True)
    if stale:
        problems = off_gui_thread(leftovers.remove, stale, timeout=_HOUSEKEEPING_S)
        _say(config, "Removed what an earlier run left behind: "
             + ", ".join(map(str, stale)))
        for problem in problems:
            _say(config, f"Could not remove {problem}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _DAEMON_AT_START not in config.stash:
        return
    from tests.helpers import off_gui_thread
    from tests.lab import leftovers

    failures = []
    try:
        answers = off_gui_thread(leftovers.system_daemon_answers, timeout=_HOUSEKEEPING_S)
    except TimeoutError:
        answers = False
    if config.stash[_DAEMON_AT_START] and not answers:
        failures.append(f"the system libvirtd ({leftovers.CHECKED_URI}) answered when the "
                        "session started and does not answer now")
    left = leftovers.ours(off_gui_thread(leftovers.find_all, timeout=_HOUSEKEEPING_S),
                          at_start=False)
    if left:
        failures.append("tests left these behind (now removed): "
                        + ", ".join(map(str, left)))
        failures.extend(f"could not remove {problem}" for problem in
                        off_gui_thread(leftovers.remove, left, timeout=_HOUSEKEEPING_S))
    if failures:
        for failure in failures:
            _say(config, f"SESSION CHECK FAILED: {failure}")
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
