"""One background thread that runs submitted calls in order, plus timers.

Each host connection owns one, so that every blocking libvirt call for that
host runs off the GUI thread and calls for one host never overtake each other.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.call_later(0.0, fn, *args)

    def call_later(self, delay: float, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        with self._cond:
            if self._stopping:
                future.cancel()
                return future
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), run))
            self._cond.notify()
        return future

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._queue and self._queue[0][0] <= now:
                        _, _, run = heapq.heappop(self._queue)
                        break
                    timeout = self._queue[0][0] - now if self._queue else None
                    self._cond.wait(timeout)
            try:
                run()
            except Exception:
                log.exception("task on %s failed", self.name)
