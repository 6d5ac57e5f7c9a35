"""A console session: one VNC or SPICE client on its own thread and asyncio loop.

The GUI talks to it with plain method calls (forwarded thread-safely into the
loop) and hears back through core signals.  Reaching the console (a libvirt
call) runs on the host's worker, never on the GUI thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable

from virtstudio.console.framebuffer import Framebuffer
from virtstudio.console.local import open_graphics_socket
from virtstudio.console.rfb_client import RfbClient, describe_connection_error
from virtstudio.console.spice_client import SpiceClient
from virtstudio.console.spice_glib import SpiceGlibClient, spice_glib_unavailable
from virtstudio.core.connection import HostConnection
from virtstudio.core.signal import Signal

SocketOpener = Callable[[], socket.socket]
SPICE_BACKENDS = ("auto", "glib", "builtin")
SPICE_CLIENT_ENV = "VIRTSTUDIO_SPICE_CLIENT"  # builtin or glib: the user's choice


def choose_spice_backend(requested: str = "auto") -> str:
    """"glib" or "builtin": an explicit request, else the environment, else spice-glib
    where it is installed."""
    if requested not in SPICE_BACKENDS:
        raise ValueError(f"unknown SPICE client {requested}")
    if requested == "auto":
        requested = os.environ.get(SPICE_CLIENT_ENV, "auto").strip().lower() or "auto"
        if requested not in SPICE_BACKENDS:
            requested = "auto"
    if requested == "auto":
        return "glib" if spice_glib_unavailable() == "" else "builtin"
    return requested


class ConsoleSession:
    def __init__(self, opener: SocketOpener, *, encoding: str = "zrle",
                 password: str | None = None, protocol: str = "vnc",
                 spice_backend: str = "auto") -> None:
        if protocol not in ("vnc", "spice"):
            raise ValueError(f"unknown console protocol {protocol}")
        self._opener = opener
        self.protocol = protocol  # SPICE calls the opener once per channel
        # Which SPICE client runs: "glib" (spice-glib) or "builtin" (VirtStudio's own).
        self.spice_backend = choose_spice_backend(spice_backend) if protocol == "spice" else None
        self.encoding = encoding
        self.password = password
        self.client: RfbClient | SpiceClient | SpiceGlibClient | None = None
        self.state = "idle"  # idle, connecting, connected, closed
        self.error: str | None = None
        self.state_changed = Signal("console state")
        self.updated = Signal("console updated")
        self.resized = Signal("console resized")
        self.cursor_changed = Signal("console cursor")
        self.incomplete = Signal("console incomplete")  # drawing the client had to skip
        self.clipboard = Signal("console clipboard")  # the guest's text, only while shared
        self.desktop_resizable = Signal("console resizable")  # the guest can follow a resize
        self.clipboard_shared = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_domain(cls, host: HostConnection, uuid: str, index: int = 0,
                   **kwargs: object) -> ConsoleSession:
        def opener() -> socket.socket:
            future = host.call(lambda c: open_graphics_socket(c.lookupByUUIDString(uuid), index))
            return future.result(timeout=30)

        return cls(opener, **kwargs)  # type: ignore[arg-type]

    @property
    def client_name(self) -> str:
        """The client that shows this console, in words for the user."""
        if self.spice_backend == "glib":
            return "spice-glib"
        return f"VirtStudio's {self.protocol.upper()} client"

    @property
    def framebuffer(self) -> Framebuffer | None:
        return self.client.framebuffer if self.client is not None else None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run_thread,
                                        name=f"{self.protocol} console",
                                        daemon=True)
        self._thread.start()

    def _set_state(self, state: str, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.state_changed.emit(self)

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._main())
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        finally:
            loop.close()
            self._loop = None

    async def _main(self) -> None:
        self._set_state("connecting")
        loop = asyncio.get_running_loop()
        try:
            client: RfbClient | SpiceClient | SpiceGlibClient
            if self.spice_backend == "glib":
                client = SpiceGlibClient(password=self.password)
                client.share_clipboard = self.clipboard_shared
                client.clipboard.connect(self.clipboard.emit)
                client.desktop_resizable.connect(self.desktop_resizable.emit)
            elif self.protocol == "spice":
                client = SpiceClient(password=self.password)
            else:
                client = RfbClient(encoding=self.encoding, password=self.password)
                client.share_clipboard = self.clipboard_shared
                client.clipboard.connect(self.clipboard.emit)
                client.desktop_resizable.connect(self.desktop_resizable.emit)
            client.updated.connect(self.updated.emit)
            client.resized.connect(lambda w, h: self.resized.emit(w, h))
            client.cursor_changed.connect(self.cursor_changed.emit)
            self.client = client
            opened_client = client

            def open_socket() -> socket.socket:
                sock = self._opener()
                # A remote display's password is known only once the opener read its XML.
                secret = getattr(self._opener, "password", None)
                if secret and opened_client.password is None:
                    opened_client.password = secret
                return sock

            if isinstance(client, (SpiceClient, SpiceGlibClient)):
                client.incomplete.connect(self.incomplete.emit)
                await client.connect(lambda: loop.run_in_executor(None, open_socket))
            else:
                await client.connect_socket(await loop.run_in_executor(None, open_socket))
        except Exception as exc:
            self._set_state("closed", describe_connection_error(exc))
            return
        self._set_state("connected")
        errors: list[str | None] = []
        client.closed.connect(errors.append)
        with contextlib.suppress(asyncio.CancelledError):
            await client.run()
        self._set_state("closed", errors[0] if errors else None)

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is not None and self.client is not None and not loop.is_closed():
            if isinstance(self.client, SpiceGlibClient):
                fn(*args)  # it posts into GLib's context itself
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def key(self, down: bool, keysym: int, scancode: int | None = None) -> None:
        if self.client is not None:
            self._call(self.client.key_event, down, keysym, scancode)

    def pointer(self, x: int, y: int, buttons: int) -> None:
        if self.client is not None:
            self._call(self.client.pointer_event, x, y, buttons)

    def resize_guest(self, width: int, height: int) -> None:
        if self.client is not None:
            self._call(self.client.set_desktop_size, width, height)

    @property
    def supports_clipboard(self) -> bool:
        # VirtStudio's SPICE client has no agent channel; spice-glib's needs spice-vdagent.
        return self.protocol == "vnc" or self.spice_backend == "glib"

    @property
    def desktop_resizes(self) -> bool:
        """Whether the server announced that the guest's screen size can be asked for."""
        if isinstance(self.client, SpiceGlibClient):
            return self.client.agent_connected
        return isinstance(self.client, RfbClient) and self.client.extended_desktop

    def set_clipboard_sharing(self, on: bool) -> None:
        self.clipboard_shared = on
        if isinstance(self.client, (RfbClient, SpiceGlibClient)):
            self._call(self.client.set_clipboard_sharing, on)

    def send_clipboard(self, text: str) -> None:
        """Offer desktop text to the guest; ignored unless sharing is on."""
        if self.clipboard_shared and isinstance(self.client, (RfbClient, SpiceGlibClient)):
            self._call(self.client.send_clipboard, text)

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(5)
