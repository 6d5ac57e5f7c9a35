"""Debug check: record every libvirt call made on the GUI thread.

When enabled, each public method of libvirt's classes (and ``libvirt.open*``)
is wrapped to note calls made on the thread registered as the GUI thread.
The test suite enables it for every test and fails a test that left a
record.  Set ``VIRTSTUDIO_DEBUG_THREADS=1`` to enable it in the app, where a
violation is logged with its stack.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

import libvirt

log = logging.getLogger(__name__)

_GUARDED_CLASSES = (
    "virConnect",
    "virDomain",
    "virDomainSnapshot",
    "virDomainCheckpoint",
    "virNetwork",
    "virNetworkPort",
    "virStoragePool",
    "virStorageVol",
    "virInterface",
    "virNodeDevice",
    "virSecret",
    "virNWFilter",
    "virStream",
)
_GUARDED_FUNCTIONS = ("open", "openAuth", "openReadOnly")

_gui_thread: threading.Thread | None = None
_installed = False
_lock = threading.Lock()
violations: list[str] = []


def set_gui_thread(thread: threading.Thread | None) -> None:
    global _gui_thread
    _gui_thread = thread


def _wrap(qualname: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _gui_thread is not None and threading.current_thread() is _gui_thread:
            where = "".join(traceback.format_stack(limit=8)[:-1])
            violations.append(f"{qualname} called on the GUI thread\n{where}")
            log.warning("libvirt call %s on the GUI thread\n%s", qualname, where)
        return fn(*args, **kwargs)

    guarded.__virtstudio_guarded__ = True  # type: ignore[attr-defined]
    return guarded


def install() -> None:
    """Wrap libvirt's entry points once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        for cls_name in _GUARDED_CLASSES:
            cls = getattr(libvirt, cls_name, None)
            if cls is None:
                continue
            for name, member in list(vars(cls).items()):
                if name.startswith("_") or not inspect.isfunction(member):
                    continue
                setattr(cls, name, _wrap(f"{cls_name}.{name}", member))
        for name in _GUARDED_FUNCTIONS:
            fn = getattr(libvirt, name, None)
            if fn is not None:
                setattr(libvirt, name, _wrap(f"libvirt.{name}", fn))
        _installed = True


def take_violations() -> list[str]:
    found = list(violations)
    violations.clear()
    return found
