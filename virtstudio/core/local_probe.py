"""Find out, off the GUI thread, whether a local libvirt daemon answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

import libvirt

from virtstudio.core.events import ensure_event_loop

LOCAL_SYSTEM_URI = "qemu:///system"


def _answers(uri: str) -> bool:
    ensure_event_loop()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return False
    try:
        conn.close()
    except libvirt.libvirtError:
        pass
    return True


def probe_local_libvirtd(uri: str = LOCAL_SYSTEM_URI,
                         done: Callable[[bool], None] | None = None) -> Future[bool]:
    """Try ``uri`` on a short-lived thread; the future (and ``done``) get the answer."""
    future: Future[bool] = Future()

    def run() -> None:
        result = _answers(uri)
        future.set_result(result)
        if done is not None:
            done(result)

    threading.Thread(target=run, name="probe libvirtd", daemon=True).start()
    return future
