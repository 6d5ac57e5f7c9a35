"""Find out, off the GUI thread, which local libvirt daemon this user may manage.

``qemu:///system`` when it answers (root, the ``libvirt`` group, or a polkit
rule lets this user in); otherwise, for an ordinary user, their own
``qemu:///session``, with the reason system access was refused and what would
give it, for the first-run page.  Root without a system daemon gets nothing
(the caller shows the demo host), as before.
"""

from __future__ import annotations

import grp
import os
import pwd
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import libvirt

from virtstudio.core.events import ensure_event_loop

LOCAL_SYSTEM_URI = "qemu:///system"
LOCAL_SESSION_URI = "qemu:///session"
LIBVIRT_GROUP = "libvirt"


@dataclass(frozen=True)
class LocalAccess:
    """Which local URI to open (None: none answered) and why system access is missing."""

    uri: str | None
    system_refused: str = ""  # libvirt's words when qemu:///system did not open
    user: str = ""
    in_group_now: bool = False  # this login already carries the libvirt group
    in_group_later: bool = False  # the group lists the user, so the next login will

    @property
    def is_system(self) -> bool:
        return self.uri == LOCAL_SYSTEM_URI


def _open_error(uri: str) -> str | None:
    """None when ``uri`` opens, else libvirt's message."""
    ensure_event_loop()
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        return (exc.get_error_message() or str(exc)).strip() or "it did not answer"
    try:
        conn.close()
    except libvirt.libvirtError:
        pass
    return None


def _answers(uri: str) -> bool:
    return _open_error(uri) is None


def _group_membership(user: str) -> tuple[bool, bool]:
    try:
        group = grp.getgrnam(LIBVIRT_GROUP)
    except KeyError:
        return False, False
    return group.gr_gid in os.getgroups(), user in group.gr_mem


def find_local_access() -> LocalAccess:
    """Blocking (two connection attempts at most): which local daemon to open."""
    refused = _open_error(LOCAL_SYSTEM_URI)
    if refused is None:
        return LocalAccess(LOCAL_SYSTEM_URI)
    if os.geteuid() == 0:
        return LocalAccess(None, refused)
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    now, later = _group_membership(user)
    uri = LOCAL_SESSION_URI if _open_error(LOCAL_SESSION_URI) is None else None
    return LocalAccess(uri, refused, user, now, later)


def probe_local_access(done: Callable[[LocalAccess], None] | None = None
                       ) -> Future[LocalAccess]:
    """``find_local_access`` on a short-lived thread; the future (and ``done``) get it."""
    future: Future[LocalAccess] = Future()

    def run() -> None:
        result = find_local_access()
        future.set_result(result)
        if done is not None:
            done(result)

    threading.Thread(target=run, name="probe libvirtd", daemon=True).start()
    return future


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
