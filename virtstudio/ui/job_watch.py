"""Hear on the GUI thread when a job ends or a worker's future resolves."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QObject

from virtstudio.core.jobs import Job
from virtstudio.core.signal import Signal
from virtstudio.ui.bridge import relay


def when_finished(job: Job, slot: Callable[[Job], None], owner: QObject) -> None:
    """Call ``slot(job)`` once on the GUI thread after ``job`` has finished."""
    called = False

    def on_change(changed: Job) -> None:
        nonlocal called
        if changed.state.finished and not called:
            called = True
            slot(changed)

    relay(job.changed, on_change, owner)
    if job.state.finished:
        on_change(job)


def when_done(future: Future[Any], slot: Callable[[Future[Any]], None], owner: QObject) -> None:
    """Call ``slot(future)`` on the GUI thread once ``future`` has a result or an error."""
    done = Signal("future done")

    def once(finished: Future[Any]) -> None:
        link.detach()  # a future resolves once: the owner need not keep the relay
        slot(finished)

    link = relay(done, once, owner)
    future.add_done_callback(done.emit)
