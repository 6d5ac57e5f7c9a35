"""The one runner for long work: every user action becomes a Job.

A job runs on a pool thread, reports progress and log lines, can be asked to
cancel, and ends done, failed (with a readable error) or cancelled.  The UI
lists jobs from the runner's signals and never waits on one.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from virtstudio.core.errors import UserError, describe
from virtstudio.core.signal import Signal

log = logging.getLogger(__name__)


class JobState(enum.Enum):
    QUEUED = "Queued"
    RUNNING = "Running"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class JobCancelled(Exception):
    """Raised inside a job function when the user asked to cancel."""


class Job:
    _ids = itertools.count(1)

    def __init__(self, title: str, host: str = "", target: str = "",
                 cancellable: bool = False) -> None:
        self.id = next(Job._ids)
        self.title = title
        self.host = host
        self.target = target
        self.cancellable = cancellable
        self.state = JobState.QUEUED
        self.progress: float | None = None  # 0..1, or None while unknown
        self.status = ""
        self.error: UserError | None = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.changed = Signal("job changed")
        self._log: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._on_cancel: Callable[[], None] | None = None
        self.cancel_refused = ""  # why cancel is not possible now, shown to the user
        self._cancel_lock = threading.Lock()  # a cancel is either seen or refused, never lost

    # ---- for the job function ----------------------------------------------------

    def report(self, progress: float | None = None, status: str | None = None) -> None:
        if progress is not None:
            self.progress = max(0.0, min(1.0, progress))
        if status is not None:
            self.status = status
            self.log(status)
        else:
            self.changed.emit(self)

    def log(self, line: str) -> None:
        with self._lock:
            self._log.append((time.time(), line))
        self.changed.emit(self)

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def on_cancel(self, fn: Callable[[], None] | None) -> None:
        """Set what to call when the user cancels, e.g. ``dom.abortJob``."""
        self._on_cancel = fn

    def refuse_cancel(self, reason: str) -> None:
        """Past the point of no return: from now on cancel is refused, saying why.

        A cancel asked for before this call still counts: check it first."""
        with self._cancel_lock:
            self.cancel_refused = reason
            self.cancellable = False
        self.log(f"Cannot be cancelled any more: {reason}")

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once and raise JobCancelled when cancelled."""
        if self._cancel.wait(seconds):
            raise JobCancelled()

    # ---- for everyone else ----------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def log_lines(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._log)

    def log_text(self) -> str:
        stamp = lambda t: time.strftime("%H:%M:%S", time.localtime(t))  # noqa: E731
        lines = [f"{stamp(t)}  {line}" for t, line in self.log_lines]
        if self.error is not None and self.error.detail:
            lines.append("")
            lines.append(self.error.detail)
        return "\n".join(lines)

    def cancel(self) -> bool:
        """Ask the job to stop; returns False when it cannot be cancelled."""
        with self._cancel_lock:
            refused = self.cancel_refused
            if not refused and self.cancellable and not self.state.finished:
                self._cancel.set()
        if refused and not self.state.finished:
            self.report(status=f"Cancel refused: {refused}")  # the status line shows why
            return False
        if not self._cancel.is_set() or self.state.finished:
            return False
        self.log("Cancel requested")
        hook = self._on_cancel
        if hook is not None:
            try:
                hook()
            except Exception as exc:
                self.log(f"Cancelling failed: {describe(exc).message}")
        return True

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.title!r} {self.state.value}>"


class JobRunner:
    def __init__(self, max_workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="job")
        self.jobs: list[Job] = []
        self.job_added = Signal("job_added")
        self.job_changed = Signal("job_changed")

    def submit(self, title: str, fn: Callable[[Job], Any], *, host: str = "",
               target: str = "", cancellable: bool = False) -> Job:
        job = Job(title, host, target, cancellable)
        job.changed.connect(self.job_changed.emit)
        self.jobs.append(job)
        self.job_added.emit(job)
        job.log(f"Queued: {title}")
        self._pool.submit(self._run, job, fn)
        return job

    def _run(self, job: Job, fn: Callable[[Job], Any]) -> None:
        if job.cancel_requested:
            self._finish(job, JobState.CANCELLED)
            return
        job.state = JobState.RUNNING
        job.started = time.time()
        job.log("Started")
        try:
            fn(job)
        except JobCancelled:
            self._finish(job, JobState.CANCELLED)
        except Exception as exc:
            job.error = describe(exc)
            log.info("job %s failed: %s", job.title, job.error.message, exc_info=True)
            self._finish(job, JobState.FAILED)
        else:
            if job.cancel_requested and job.progress != 1.0:
                self._finish(job, JobState.CANCELLED)
            else:
                job.progress = 1.0
                self._finish(job, JobState.DONE)

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        job.finished = time.time()
        if state is JobState.FAILED and job.error is not None:
            job.log(f"Failed: {job.error.message}")
        else:
            job.log(state.value)

    def shutdown(self, wait: bool = False) -> None:
        for job in self.jobs:
            if not job.state.finished:
                job.cancel()
        self._pool.shutdown(wait=wait, cancel_futures=True)
