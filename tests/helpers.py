"""Small helpers shared by tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def off_gui_thread(fn: Callable[..., Any], *args: Any, timeout: float = 60.0) -> Any:
    """Run ``fn`` on a short-lived thread and return its result (for test set-up in GUI tests).

    Still running after ``timeout`` s is an error, never a silent None."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} still running after {timeout:.0f} s")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("value")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class Recorder:
    """Collects core signal emissions for assertions."""

    def __init__(self, *signals: Any) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        for sig in signals:
            sig.connect(lambda *args, _n=sig.name: self._add(_n, args))

    def _add(self, name: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self.events.append((name, args))

    def names(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self.events]

    def of(self, name: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [a for n, a in self.events if n == name]
