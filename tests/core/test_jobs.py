import threading

import pytest

from tests.helpers import wait_for
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState


@pytest.fixture
def runner():
    r = JobRunner(max_workers=2)
    yield r
    r.shutdown(wait=True)


def test_job_reports_progress_and_finishes(runner):
    seen = []
    runner.job_changed.connect(lambda job: seen.append(job.progress))

    def work(job):
        for i in range(4):
            job.report(i / 4, f"step {i}")

    job = runner.submit("Counting", work)
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.DONE
    assert job.progress == 1.0
    assert "step 3" in job.log_text()
    assert 0.5 in seen


def test_failure_is_readable(runner):
    def work(job):
        raise VirtStudioError("The disk is full.", "ENOSPC on /var/lib/libvirt/images")

    job = runner.submit("Failing", work)
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.FAILED
    assert job.error.message == "The disk is full."
    assert "ENOSPC" in job.log_text()


def test_cancel_wakes_a_waiting_job_and_runs_the_hook(runner):
    started = threading.Event()
    hooked = []

    def work(job):
        job.on_cancel(lambda: hooked.append(True))
        started.set()
        job.wait(30)

    job = runner.submit("Waiting", work, cancellable=True)
    started.wait(5)
    assert job.cancel()
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.CANCELLED
    assert hooked == [True]


def test_not_cancellable_job_refuses(runner):
    gate = threading.Event()
    job = runner.submit("Uncancellable", lambda job: gate.wait(5))
    assert not job.cancel()
    gate.set()
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.DONE


def test_cancel_refused_past_the_point_of_no_return_says_why():
    from virtstudio.core.jobs import Job

    job = Job("Clone", cancellable=True)
    job.state = JobState.RUNNING
    job.refuse_cancel("the clone exists and the source is being moved")
    assert job.cancel() is False and not job.cancel_requested
    assert job.status == "Cancel refused: the clone exists and the source is being moved"


def test_connection_loss_message_says_what_was_done_and_what_is_left():
    import libvirt

    from virtstudio.core.errors import connection_lost, lost_connection_error

    exc = libvirt.libvirtError("internal error: client socket is closed")
    assert connection_lost(exc)
    assert not connection_lost(libvirt.libvirtError("domain not found"))
    assert not connection_lost(ValueError("socket is closed"))
    made = lost_connection_error(exc, "host1", "defining b", ["created /x"], ["defining b"],
                                 [])
    assert made.message == ("The connection to host1 was lost during defining b. "
                            "Done: created /x. Not done: defining b. Left: nothing.")
    assert "client socket is closed" in made.detail
