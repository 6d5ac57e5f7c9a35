"""libvirt's default event loop, run on one dedicated daemon thread.

It must be registered before the first connection is opened, or that
connection delivers no events.  Callbacks it runs must stay short: they only
hand work to a connection's worker.
"""

from __future__ import annotations

import logging
import threading

import libvirt

log = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None


def _ignore_error(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; callers report them instead."""


def ensure_event_loop() -> threading.Thread:
    global _thread
    with _lock:
        if _thread is None:
            libvirt.registerErrorHandler(_ignore_error, None)
            libvirt.virEventRegisterDefaultImpl()
            _thread = threading.Thread(target=_loop, name="libvirt-events", daemon=True)
            _thread.start()
        return _thread


def _loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            log.exception("libvirt event loop iteration failed")
