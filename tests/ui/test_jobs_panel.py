"""The Tasks panel over a real job runner."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from tests.qt_events import drain_posted_events
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.ui.jobs_panel import JobColumn, JobLogDialog, JobsPanel


@pytest.fixture
def panel(qtbot):
    runner = JobRunner()
    widget = JobsPanel(runner)
    qtbot.addWidget(widget)
    widget.show()
    yield widget, runner
    runner.shutdown(wait=True)


def test_progress_and_finish(panel, qtbot):
    widget, runner = panel
    gate = threading.Event()

    def work(job):
        job.report(0.5, "Halfway")
        gate.wait(5)

    job = runner.submit("Copy disk", work, host="Demo host")
    qtbot.waitUntil(lambda: widget.model.rowCount() == 1, timeout=20000)
    qtbot.waitUntil(lambda: widget.model.index(0, JobColumn.STATUS).data() == "Halfway",
                    timeout=20000)
    assert widget.model.index(0, JobColumn.HOST).data() == "Demo host"
    gate.set()
    qtbot.waitUntil(lambda: widget.model.index(0, JobColumn.STATUS).data() == "Done", timeout=20000)
    assert job.state is JobState.DONE


def test_failure_is_announced_once_in_red(panel, qtbot):
    widget, runner = panel
    failed = []
    widget.job_failed.connect(failed.append)
    # Listening after the panel: by the time this sees the job finished, the panel's relay
    # has posted that same change to the GUI thread.
    seen_finished = threading.Event()
    runner.job_changed.connect(lambda job: job.state.finished and seen_finished.set())

    def work(job):
        raise VirtStudioError("The pool is full.", "ENOSPC")

    runner.submit("Create volume", work)
    qtbot.waitUntil(lambda: len(failed) == 1, timeout=20000)
    index = widget.model.index(0, JobColumn.STATUS)
    assert index.data() == "Failed: The pool is full."
    assert index.data(Qt.ItemDataRole.ForegroundRole) is not None
    # The job's last change has been emitted and handled: nothing left to announce it again.
    qtbot.waitUntil(seen_finished.is_set, timeout=10000)
    drain_posted_events(qtbot)
    assert len(failed) == 1


def test_cancel_button_cancels_a_cancellable_job(panel, qtbot):
    widget, runner = panel
    job = runner.submit("Wait for shutdown", lambda job: job.wait(30), cancellable=True)
    qtbot.waitUntil(lambda: job.state is JobState.RUNNING, timeout=20000)
    widget.view.setCurrentIndex(widget.model.index(0, 0))
    qtbot.waitUntil(widget.cancel_button.isEnabled, timeout=20000)
    qtbot.mouseClick(widget.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.state is JobState.CANCELLED, timeout=20000)
    assert not widget.cancel_button.isEnabled()


def test_log_dialog_shows_the_lines(panel, qtbot):
    widget, runner = panel

    def work(job):
        job.log("step one")
        job.log("step two")

    job = runner.submit("Logged", work)
    qtbot.waitUntil(lambda: job.state.finished, timeout=20000)
    widget.view.setCurrentIndex(widget.model.index(0, 0))
    qtbot.mouseClick(widget.log_button, Qt.MouseButton.LeftButton)
    dialogs = widget.findChildren(JobLogDialog)
    assert len(dialogs) == 1
    text = dialogs[0].text.toPlainText()
    assert "step one" in text and "step two" in text and "Done" in text


def test_clear_finished(panel, qtbot):
    widget, runner = panel
    job = runner.submit("Quick", lambda job: None)
    qtbot.waitUntil(lambda: job.state.finished, timeout=20000)
    qtbot.waitUntil(lambda: widget.model.rowCount() == 1, timeout=20000)
    qtbot.mouseClick(widget.clear_button, Qt.MouseButton.LeftButton)
    assert widget.model.rowCount() == 0
