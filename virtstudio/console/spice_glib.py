"""A SPICE console driven by spice-glib (SpiceClientGLib through GObject introspection).

Used instead of VirtStudio's own SPICE client where spice-glib is installed: it
draws every QXL command, and with spice-vdagent in the guest it shares the
clipboard and resizes the guest's screen.  The class offers the same surface
as ``SpiceClient`` (a Framebuffer, the updated/resized/cursor_changed/closed
signals, key and pointer calls, ``connect``/``run``/``close`` awaited on the
caller's asyncio loop), so ``ConsoleSession`` and the widget do not know which
client runs.

Main context: spice-glib 0.42 attaches everything (its coroutines' socket
waits, idles, timeouts) to GLib's *global default* context and never looks at
a thread-default one, so a dedicated thread with a pushed context would never
see its sockets.  The default context is therefore iterated by one daemon
thread started here ("spice-glib").  Qt does not iterate it (the app sets
QT_NO_GLIB), so the GUI thread never blocks on it; libvirt's event thread
(``core/events.py``) iterates the same context when a host is open, and GLib
lets only one thread own it at a time, so the two take turns: every callback
of either library runs serialised on one of the two threads (libvirt's event
callbacks only hand work on, so they may run on this one too).  The same
thread serves core tests without any QApplication.  spice-glib objects are
touched only inside that context: every call from another thread goes through
``GLib.idle_add``.  Sessions share the thread; it lives as long as the process.

Sockets: the main channel gets the opener's first socket through
``spice_session_open_fd``; every further channel asks with "open-fd" and gets
its own socket, fetched by the opener on the caller's asyncio executor (a
libvirt call must not run on the GUI thread nor stall the GLib thread) and
handed back to the GLib context.

Pointer: in client mouse mode (QEMU with a tablet or an agent) positions are
absolute; in server mode the client sends relative motion from the last
position it sent, so the guest's pointer can drift from the host's where the
guest accelerates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from virtstudio.console.framebuffer import Framebuffer, ProtocolError
from virtstudio.console.rfb_client import MAX_CURSOR, CursorShape, describe_connection_error
from virtstudio.console.spice_client import _BUTTONS, _KEYSYM_TO_XT, KEY_DELAY
from virtstudio.core.signal import Signal

log = logging.getLogger(__name__)
SocketOpener = Callable[[], Awaitable[socket.socket]]

SURFACE_FMT_32_XRGB = 32
SURFACE_FMT_32_ARGB = 96
MOUSE_MODE_CLIENT = 2
CLIPBOARD_SELECTION = 0  # the desktop clipboard, not the X primary selection
CLIPBOARD_UTF8_TEXT = 1
MAX_CLIPBOARD = 1 << 20

# The channels a console needs; others (ports, webdav) get no socket and stay idle.
_WANTED = ("MainChannel", "DisplayChannel", "InputsChannel", "CursorChannel")

_ERRORS = {
    "SPICE_CHANNEL_ERROR_AUTH": "The console refused the password.",
    "SPICE_CHANNEL_ERROR_LINK": "The console did not answer as a SPICE server does.",
    "SPICE_CHANNEL_ERROR_CONNECT": "Could not connect to the console.",
    "SPICE_CHANNEL_ERROR_TLS": "The console's TLS connection failed.",
    "SPICE_CHANNEL_ERROR_IO": "The connection to the console was lost.",
}

_thread_lock = threading.Lock()
_thread: threading.Thread | None = None
_unavailable: str | None = None
# Sessions being torn down stay referenced until spice-glib says they are disconnected:
# dropping the last reference while its coroutines run crashes the library.
_closing: set[Any] = set()


def _modules() -> tuple[Any, Any]:
    import gi

    gi.require_version("GLib", "2.0")
    gi.require_version("SpiceClientGLib", "2.0")
    from gi.repository import GLib, SpiceClientGLib

    return GLib, SpiceClientGLib


def spice_glib_unavailable() -> str:
    """Why spice-glib cannot drive SPICE consoles here; "" when it can."""
    global _unavailable
    if _unavailable is None:
        try:
            import gi  # noqa: F401
        except ImportError:
            _unavailable = "PyGObject (the Python module gi) is not installed."
        else:
            try:
                _modules()
            except (ImportError, ValueError) as exc:
                _unavailable = ("spice-glib is not installed (Debian package "
                                f"gir1.2-spiceclientglib-2.0): {exc}")
            else:
                _unavailable = ""
    return _unavailable


def spice_glib_version() -> str:
    return _modules()[1].util_get_version_string()


def _ensure_thread() -> None:
    global _thread
    with _thread_lock:
        if _thread is None:
            glib = _modules()[0]
            context = glib.MainContext.default()

            def iterate() -> None:
                while True:
                    context.iteration(True)

            _thread = threading.Thread(target=iterate, name="spice-glib", daemon=True)
            _thread.start()


def _on(obj: Any, signal: str, handler: Callable[..., Any]) -> None:
    """Connect a GObject signal: SpiceSession and SpiceChannel shadow ``connect``."""
    from gi.repository import GObject

    GObject.Object.connect(obj, signal, handler)


def in_glib(fn: Callable[..., object], *args: object) -> None:
    """Run ``fn(*args)`` once inside GLib's default context, from any thread."""
    glib = _modules()[0]

    def once() -> bool:
        try:
            fn(*args)
        except Exception:
            log.exception("spice-glib call %s failed", getattr(fn, "__name__", fn))
        return False

    glib.idle_add(once, priority=glib.PRIORITY_DEFAULT)


def _memory(address: int, size: int) -> memoryview:
    """A view of ``size`` bytes spice-glib owns at ``address``, valid until it frees them."""
    return memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")


def spice_glib_scancode(xt: int) -> int:
    """An XT scancode as spice-glib takes it: an E0 prefix becomes bit 8."""
    if xt > 0xFF:
        if xt >> 8 != 0xE0:
            raise ValueError(f"unsupported scancode {xt:#x}")
        return 0x100 | (xt & 0xFF)
    return xt


class SpiceGlibClient:
    def __init__(self, *, password: str | None = None) -> None:
        self.password = password
        self.framebuffer: Framebuffer | None = None
        self.updates = 0
        self.channels_opened = 0
        self.agent_connected = False
        self.share_clipboard = False
        self.updated = Signal("spice-glib updated")  # list of (x, y, w, h)
        self.resized = Signal("spice-glib resized")  # (w, h)
        self.cursor_changed = Signal("spice-glib cursor")
        self.closed = Signal("spice-glib closed")  # error message or None
        self.incomplete = Signal("spice-glib incomplete")
        self.clipboard = Signal("spice-glib clipboard")  # the guest's text, only while shared
        self.desktop_resizable = Signal("spice-glib resizable")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opener: SocketOpener | None = None
        self._ready: asyncio.Future[None] | None = None
        self._done: asyncio.Future[str | None] | None = None
        self._update_event: asyncio.Event | None = None
        # GLib-side state: touched only inside the GLib context.
        self._session: Any = None
        self._main: Any = None
        self._inputs: Any = None
        self._channels: list[Any] = []
        self._surface: tuple[int, int] | None = None  # (address, stride)
        self._keys: deque[tuple[bool, int]] = deque()
        self._key_timer = False
        self._buttons = 0
        self._pointer = (0, 0)
        self._offer: bytes | None = None
        self._ending = False

    # ---- connecting --------------------------------------------------------------------

    async def connect(self, opener: SocketOpener, timeout: float = 30.0) -> None:
        """Open the main channel's socket and link; returns once the guest's screen exists."""
        reason = spice_glib_unavailable()
        if reason:
            raise ProtocolError(reason)
        loop = asyncio.get_running_loop()
        self._loop, self._opener = loop, opener
        self._ready, self._done = loop.create_future(), loop.create_future()
        self._update_event = asyncio.Event()
        _ensure_thread()
        sock = await opener()
        try:
            in_glib(self._start, sock.detach())
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except BaseException:
            await self.close()
            raise

    def _start(self, fd: int) -> None:
        try:
            self._open_session(fd)
        except Exception as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            self._finish(f"spice-glib could not start: {exc}")

    def _open_session(self, fd: int) -> None:
        _glib, spice = _modules()
        session = spice.Session()
        # Nothing but the screen, keys and pointer: no sound, USB or smartcard channels.
        session.props.enable_audio = False
        session.props.enable_usbredir = False
        session.props.enable_smartcard = False
        if self.password:
            session.props.password = self.password
        _on(session, "channel-new", self._on_channel_new)
        _on(session, "disconnected", lambda _s: self._finish(None))
        self._session = session
        if self._ending or not session.open_fd(fd):
            os.close(fd)
            self._finish("spice-glib could not use the console's socket.")

    def _on_channel_new(self, _session: Any, channel: Any) -> None:
        _glib, spice = _modules()
        kind = next((name for name in _WANTED if isinstance(channel, getattr(spice, name))), None)
        if kind is None:
            return
        self._channels.append(channel)
        _on(channel, "channel-event", self._on_channel_event)
        _on(channel, "open-fd", self._on_open_fd)
        if kind == "MainChannel":
            self._main = channel
            _on(channel, "main-agent-update", self._on_agent)
            _on(channel, "main-clipboard-selection-grab", self._on_guest_grab)
            _on(channel, "main-clipboard-selection", self._on_guest_text)
            _on(channel, "main-clipboard-selection-request", self._on_guest_request)
        elif kind == "DisplayChannel" and channel.props.channel_id == 0:
            _on(channel, "display-primary-create", self._on_primary_create)
            _on(channel, "display-primary-destroy", self._on_primary_destroy)
            _on(channel, "display-invalidate", self._on_invalidate)
            _on(channel, "display-mark", self._on_mark)
        elif kind == "CursorChannel":
            _on(channel, "cursor-set", self._on_cursor_set)
            _on(channel, "cursor-hide", lambda _c: self.cursor_changed.emit(None))
        if kind != "MainChannel":
            spice.Channel.connect(channel)  # spice_channel_connect: it then asks for "open-fd"

    def _on_open_fd(self, channel: Any, _with_tls: int) -> None:
        loop = self._loop
        if loop is None or self._ending:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._fetch_socket(channel), loop)
        except RuntimeError:  # the session's loop has already closed
            self._finish(None)

    async def _fetch_socket(self, channel: Any) -> None:
        assert self._opener is not None
        try:
            sock = await self._opener()
        except Exception as exc:
            in_glib(self._finish, describe_connection_error(exc))
            return
        in_glib(self._give_socket, channel, sock.detach())

    def _give_socket(self, channel: Any, fd: int) -> None:
        if self._ending:
            os.close(fd)
            return
        if self.password and not self._session.props.password:
            self._session.props.password = self.password
        if not channel.open_fd(fd):
            os.close(fd)
            self._finish("spice-glib could not use the console's socket.")

    def _on_channel_event(self, channel: Any, event: Any) -> None:
        name = getattr(event, "value_name", str(event))
        if name == "SPICE_CHANNEL_OPENED":
            self.channels_opened += 1
            if isinstance(channel, _modules()[1].InputsChannel):
                # spice-glib drops keys given before the inputs channel is up.
                self._inputs = channel
                self._ready_now()
                if self._keys and not self._key_timer:
                    self._key_timer = True
                    self._send_key()
            return
        if name == "SPICE_CHANNEL_CLOSED":
            self._finish(None)
            return
        message = _ERRORS.get(name)
        if message is None:
            return
        error = channel.get_error()
        if error is not None and error.message:
            message = f"{message[:-1]} ({error.message})."
        self._finish(message)

    def _finish(self, error: str | None) -> None:
        """The session ended (or never began): tell the asyncio side once."""
        loop = self._loop
        if loop is None:
            return

        def settle() -> None:
            ready, done = self._ready, self._done
            if ready is not None and not ready.done():
                ready.set_exception(ProtocolError(
                    error or "The console closed before it showed a screen."))
            if done is not None and not done.done():
                done.set_result(error)

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)
        self._teardown()

    def _teardown(self) -> None:
        if self._ending:
            return
        self._ending = True
        session, self._session = self._session, None
        self._main = self._inputs = None
        self._surface = None
        self._keys.clear()
        channels, self._channels = self._channels, []
        if session is None:
            return
        _closing.add(session)
        glib = _modules()[0]

        def forget(*_args: object) -> bool:
            _closing.discard(session)
            channels.clear()
            return False

        _on(session, "disconnected", forget)
        session.disconnect()
        glib.timeout_add_seconds(5, forget)  # in case "disconnected" never comes

    # ---- the screen ---------------------------------------------------------------------

    def _on_primary_create(self, _channel: Any, fmt: int, width: int, height: int,
                           stride: int, _shmid: int, address: int) -> None:
        if fmt not in (SURFACE_FMT_32_XRGB, SURFACE_FMT_32_ARGB):
            self._surface = None
            self.incomplete.emit(f"a {fmt}-bit screen")
            return
        try:
            if self.framebuffer is None:
                self.framebuffer = Framebuffer(width, height)
                old = None
            else:
                old = (self.framebuffer.width, self.framebuffer.height)
                if old != (width, height):
                    self.framebuffer.resize(width, height)
        except ProtocolError as exc:
            self._finish(exc.message)
            return
        self._surface = (address, stride)
        # Listeners learn the new size before any picture of that size reaches them.
        if old is not None and old != (width, height):
            self.resized.emit(width, height)
        self._copy(0, 0, width, height)
        self._ready_now()

    def _ready_now(self) -> None:
        """Connected once the screen exists and keys can go out, as with the own client."""
        loop, ready = self._loop, self._ready
        if loop is not None and ready is not None and self.framebuffer is not None \
                and self._inputs is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: ready.done() or ready.set_result(None))

    def _on_primary_destroy(self, _channel: Any) -> None:
        self._surface = None  # the memory goes away; keep showing the last picture

    def _on_invalidate(self, _channel: Any, x: int, y: int, w: int, h: int) -> None:
        fb = self.framebuffer
        if self._surface is None or fb is None:
            return
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, fb.width), min(y + h, fb.height)
        if x1 > x0 and y1 > y0:
            self._copy(x0, y0, x1 - x0, y1 - y0)

    def _on_mark(self, _channel: Any, mark: int) -> None:
        fb = self.framebuffer
        if mark and fb is not None and self._surface is not None:
            self._copy(0, 0, fb.width, fb.height)

    def _copy(self, x: int, y: int, w: int, h: int) -> None:
        assert self._surface is not None and self.framebuffer is not None
        address, stride = self._surface
        start = address + y * stride + x * 4
        self.framebuffer.put_rows(x, y, w, h, _memory(start, stride * (h - 1) + w * 4),
                                  src_stride=stride)
        self.updates += 1
        self.updated.emit([(x, y, w, h)])
        loop, event = self._loop, self._update_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _on_cursor_set(self, _channel: Any, width: int, height: int, hot_x: int, hot_y: int,
                       address: int | None) -> None:
        if not address or not (0 < width <= MAX_CURSOR and 0 < height <= MAX_CURSOR):
            return
        # spice-glib hands R, G, B, A bytes (ready for a GdkPixbuf); Qt's ARGB32 wants B, G, R, A.
        pixels = bytearray(_memory(address, width * height * 4))
        pixels[0::4], pixels[2::4] = pixels[2::4], pixels[0::4]
        self.cursor_changed.emit(CursorShape(hot_x, hot_y, width, height, bytes(pixels)))

    async def wait_update(self, timeout: float = 5.0) -> None:
        assert self._update_event is not None
        self._update_event.clear()
        await asyncio.wait_for(self._update_event.wait(), timeout)

    # ---- the agent: clipboard and guest resize ---------------------------------------------

    def _on_agent(self, main: Any) -> None:
        connected = bool(main.props.agent_connected)
        if connected != self.agent_connected:
            self.agent_connected = connected
            if connected:
                self.desktop_resizable.emit()

    def _on_guest_grab(self, main: Any, selection: int, types: int, ntypes: int) -> bool:
        if not (self.share_clipboard and selection == CLIPBOARD_SELECTION and types):
            return False
        offered = (ctypes.c_uint32 * ntypes).from_address(types)
        if CLIPBOARD_UTF8_TEXT in list(offered):
            main.clipboard_selection_request(selection, CLIPBOARD_UTF8_TEXT)
        return True

    def _on_guest_text(self, _main: Any, selection: int, kind: int, data: int,
                       size: int) -> None:
        if (self.share_clipboard and selection == CLIPBOARD_SELECTION
                and kind == CLIPBOARD_UTF8_TEXT and data and 0 <= size <= MAX_CLIPBOARD):
            self.clipboard.emit(bytes(_memory(data, size)).decode("utf-8", "replace"))

    def _on_guest_request(self, main: Any, selection: int, kind: int) -> bool:
        if not (self.share_clipboard and self._offer is not None
                and selection == CLIPBOARD_SELECTION and kind == CLIPBOARD_UTF8_TEXT):
            return False
        main.clipboard_selection_notify(selection, kind, self._offer)
        return True

    # The public calls below may come from any thread: each posts its work into GLib.

    def set_clipboard_sharing(self, on: bool) -> None:
        self.share_clipboard = on
        in_glib(self._sharing_changed, on)

    def _sharing_changed(self, on: bool) -> None:
        if not on and self._offer is not None:
            self._offer = None
            if self._main is not None and self.agent_connected:
                self._main.clipboard_selection_release(CLIPBOARD_SELECTION)

    def send_clipboard(self, text: str) -> None:
        """Offer desktop text to the guest's agent; ignored unless sharing is on."""
        if self.share_clipboard:
            in_glib(self._offer_text, text)

    def _offer_text(self, text: str) -> None:
        if not self.share_clipboard or self._main is None or not self.agent_connected:
            return
        self._offer = text.encode()[:MAX_CLIPBOARD]
        self._main.clipboard_selection_grab(CLIPBOARD_SELECTION, [CLIPBOARD_UTF8_TEXT])

    def set_desktop_size(self, width: int, height: int) -> bool:
        """Ask the guest's agent for a new screen size; False without an agent."""
        if not self.agent_connected:
            return False
        in_glib(self._ask_size, width, height)
        return True

    def _ask_size(self, width: int, height: int) -> None:
        if self._main is not None and self.agent_connected:
            self._main.update_display_enabled(0, True, False)
            # True: spice-glib sends the monitors config after its short debounce.
            self._main.update_display(0, 0, 0, width, height, True)

    # ---- input -----------------------------------------------------------------------------

    def key_event(self, down: bool, keysym: int, scancode: int | None = None) -> None:
        """A key as its XT scancode (SPICE has no keysyms); unknown keys are dropped."""
        in_glib(self._key, down, keysym, scancode)

    def _key(self, down: bool, keysym: int, scancode: int | None) -> None:
        xt = scancode if scancode is not None else _KEYSYM_TO_XT.get(keysym)
        if self._ending or xt is None:
            return
        self._keys.append((down, spice_glib_scancode(xt)))
        if self._inputs is not None and not self._key_timer:
            self._key_timer = True
            self._send_key()

    def _send_key(self) -> bool:
        # Paced as the own client does (QEMU puts SPICE keys straight into the guest's small
        # PS/2 queue), but counted from when spice-glib has written the key, not from when
        # it was queued, so a busy context never lets keys leave in one burst.
        inputs = self._inputs
        if not self._keys or inputs is None:
            self._key_timer = False
            return False
        down, code = self._keys.popleft()
        (inputs.key_press if down else inputs.key_release)(code)
        inputs.flush_async(None, self._key_flushed, None)
        return False

    def _key_flushed(self, channel: Any, result: Any, _data: object) -> None:
        with contextlib.suppress(Exception):
            channel.flush_finish(result)
        if not self._keys or self._inputs is None:
            self._key_timer = False
            return
        _modules()[0].timeout_add(int(KEY_DELAY * 1000), self._send_key)

    def pointer_event(self, x: int, y: int, buttons: int) -> None:
        """VNC-style pointer state: position plus button mask (8 and 16 are the wheel)."""
        in_glib(self._pointer_state, x, y, buttons)

    def _pointer_state(self, x: int, y: int, buttons: int) -> None:
        inputs, fb, main = self._inputs, self.framebuffer, self._main
        if inputs is None or fb is None or main is None:
            return
        x = min(max(x, 0), fb.width - 1)
        y = min(max(y, 0), fb.height - 1)
        held = buttons & 7
        if (x, y) != self._pointer:
            if int(main.props.mouse_mode) == MOUSE_MODE_CLIENT:
                inputs.position(x, y, 0, self._buttons)
            else:
                inputs.motion(x - self._pointer[0], y - self._pointer[1], self._buttons)
            self._pointer = (x, y)
        for bit, number in _BUTTONS:
            pressed, was = buttons & bit, self._buttons & bit
            if pressed and not was:
                inputs.button_press(number, held)
            if (bit >= 8 and pressed) or (was and not pressed):
                inputs.button_release(number, held)
        self._buttons = held

    # ---- running and closing --------------------------------------------------------------

    async def run(self) -> None:
        """Wait until the session ends; emits ``closed`` once."""
        assert self._done is not None
        try:
            error = await asyncio.shield(self._done)
        finally:
            await self.close()
        self.closed.emit(error)

    async def drain(self) -> None:
        """Wait until every key typed so far has been handed to spice-glib."""
        loop = asyncio.get_running_loop()
        while True:
            pending = loop.create_future()

            def check(future: asyncio.Future[bool] = pending) -> None:
                busy = bool(self._keys) or self._key_timer
                loop.call_soon_threadsafe(lambda: future.done() or future.set_result(busy))

            in_glib(check)
            if not await pending:
                return
            await asyncio.sleep(KEY_DELAY)

    async def close(self) -> None:
        if self._loop is None:
            return
        finished = self._loop.create_future()
        loop = self._loop

        def teardown() -> None:
            self._teardown()
            loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        in_glib(teardown)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(finished, 5)
        done = self._done
        if done is not None and not done.done():
            done.set_result(None)
