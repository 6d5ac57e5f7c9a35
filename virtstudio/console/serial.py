"""A guest's serial (text) console through virDomainOpenConsole and a libvirt stream.

Opening, sending and closing run on the host's worker thread.  The stream is
non-blocking: libvirt's event loop says when output is waiting and the
callback reads what is there, so no thread blocks on a quiet console.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import describe
from virtstudio.core.signal import Signal

log = logging.getLogger(__name__)
_EVENTS = (libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR
           | libvirt.VIR_STREAM_EVENT_HANGUP)
SEND_TIMEOUT_S = 5.0


class SerialSession:
    """One open serial console; ``received`` carries bytes, ``closed`` a reason."""

    def __init__(self, host: HostConnection, uuid: str) -> None:
        self.host = host
        self.uuid = uuid
        self.state = "idle"  # idle, connecting, connected, closed
        self.error = ""
        self.opened = Signal("serial opened")
        self.received = Signal("serial received")
        self.closed = Signal("serial closed")
        self._stream: libvirt.virStream | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        self.state = "connecting"
        self.host.call(self._open).add_done_callback(self._opened)

    def _open(self, conn: libvirt.virConnect) -> None:
        dom = conn.lookupByUUIDString(self.uuid)
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        # FORCE takes the console over from a client that left without closing it.
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        with self._lock:
            if self.state == "closed":  # closed while this waited its turn on the worker
                _close_stream(stream)
                return
            self._stream = stream
            stream.eventAddCallback(_EVENTS, self._on_event, None)

    def _opened(self, future: Any) -> None:
        exc = future.exception()
        if exc is not None:
            self._finish(f"The serial console could not be opened: {describe(exc).message}")
            return
        if self.state == "connecting":
            self.state = "connected"
            self.opened.emit(self)

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: Any) -> None:
        # Runs on libvirt's event thread: read what is waiting and hand it on.
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    chunk = stream.recv(65536)
                except libvirt.libvirtError as exc:
                    self._finish(f"The serial console closed: {describe(exc).message}")
                    return
                if chunk == -2:
                    break  # nothing more for now
                if not chunk or isinstance(chunk, int):
                    self._finish("The serial console closed (the machine stopped?).")
                    return
                self.received.emit(bytes(chunk))
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("The serial console closed (the machine stopped?).")

    def send(self, data: bytes) -> None:
        """Type ``data`` into the guest; runs on the worker, in order."""
        if data and self.state == "connected":
            self.host.call(lambda _conn: self._send(data))

    def _send(self, data: bytes) -> None:
        with self._lock:
            stream = self._stream
        deadline = time.monotonic() + SEND_TIMEOUT_S
        while stream is not None and data:
            sent = stream.send(data)
            if sent == -2:
                if time.monotonic() > deadline:
                    log.info("serial console of %s stopped taking input", self.uuid)
                    return
                time.sleep(0.01)  # the guest's UART is full; it drains quickly
                continue
            data = data[sent:]

    def close(self) -> None:
        """Close the console (safe to call more than once, from any thread)."""
        self._finish("")

    def _finish(self, reason: str) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            # Not here on the event thread: removing a callback from inside it deadlocks.
            self.host.call(lambda _conn: _close_stream(stream))
        if self.state != "closed":
            self.state = "closed"
            self.error = reason
            self.closed.emit(self, reason)


def _close_stream(stream: libvirt.virStream) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        stream.eventRemoveCallback()
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()
