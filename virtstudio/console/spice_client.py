"""A Qt-free asyncio SPICE client for the main, display, inputs and cursor channels.

Each channel is its own connection, opened through ``opener`` (for local
hosts one virDomainOpenGraphicsFD call per channel).  The display is drawn
into the same Framebuffer the VNC client uses, and the client offers the same
signals and input calls, so the console widget shows either without knowing
which protocol runs.  The agent stays off: nothing of the clipboard or the
host's files reaches the guest.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable

from virtstudio.console import spice_cursor
from virtstudio.console import spice_display as disp
from virtstudio.console.framebuffer import Framebuffer, ProtocolError
from virtstudio.console.keymap import US_KEYS
from virtstudio.console.spice_images import CACHE_PIXELS
from virtstudio.console.spice_wire import (
    CHANNEL_CURSOR,
    CHANNEL_DISPLAY,
    CHANNEL_INPUTS,
    CHANNEL_MAIN,
    SpiceChannel,
)
from virtstudio.core.signal import Signal

MAIN_INIT = 103
MAIN_MOUSE_MODE = 105
MAINC_ATTACH_CHANNELS = 104
MAINC_MOUSE_MODE_REQUEST = 105
MOUSE_MODE_SERVER = 1
MOUSE_MODE_CLIENT = 2

INPUTS_MOTION_ACK = 111
INPUTSC_KEY_DOWN = 101
INPUTSC_KEY_UP = 102
INPUTSC_MOUSE_MOTION = 111
INPUTSC_MOUSE_POSITION = 112
INPUTSC_MOUSE_PRESS = 113
INPUTSC_MOUSE_RELEASE = 114
INPUTS_CAP_KEY_SCANCODE = 0
MOTION_ACK_BUNCH = 4  # the server acknowledges every 4 motions; keep at most 2 bunches out
# QEMU feeds SPICE keys straight into the guest's 16-byte PS/2 queue, so keys
# sent faster than the guest reads them are lost; QEMU's VNC server paces keys
# by the same 10 ms.
KEY_DELAY = 0.01

# VNC button bits -> SPICE button numbers (left, middle, right, wheel up, wheel down)
_BUTTONS = ((1, 1), (2, 2), (4, 3), (8, 4), (16, 5))
_KEYSYM_TO_XT = {keysym: xt for keysym, xt, _shift in US_KEYS.values()}

SocketOpener = Callable[[], Awaitable[socket.socket]]


def spice_scancode(xt: int, release: bool) -> int:
    """An XT scancode as SPICE's key messages carry it: bytes in wire order, E0 first."""
    if xt > 0xFF:
        if xt >> 8 != 0xE0:
            raise ValueError(f"unsupported scancode {xt:#x}")
        return 0xE0 | (((xt & 0x7F) | (0x80 if release else 0)) << 8)
    return xt | (0x80 if release else 0)


class SpiceClient:
    def __init__(self, *, password: str | None = None, compression: str = "off") -> None:
        if compression not in disp.COMPRESSION:
            raise ValueError(f"unknown compression {compression}")
        self.password = password
        self.compression = compression
        self.session_id = 0
        self.mouse_mode = MOUSE_MODE_SERVER
        self.updates = 0
        self.channels: dict[int, SpiceChannel] = {}
        self.incomplete = Signal("spice incomplete")  # what could not be drawn, once each
        self.display = disp.SpiceDisplay(self._on_draw, self._on_primary, self.incomplete.emit)
        self.cursor_state = spice_cursor.CursorState()
        self.updated = Signal("spice updated")  # list of (x, y, w, h)
        self.resized = Signal("spice resized")  # (w, h)
        self.cursor_changed = Signal("spice cursor")
        self.closed = Signal("spice closed")  # error message or None
        self._size: tuple[int, int] | None = None
        self._update_event = asyncio.Event()
        self._buttons = 0
        self._pointer = (0, 0)
        self._motion_pending = 0
        self._motion_backlog = (0, 0)
        self._keys: deque[bytes] = deque()
        self._key_pacer: asyncio.Task[None] | None = None

    @property
    def framebuffer(self) -> Framebuffer | None:
        return self.display.primary

    @property
    def cursor(self) -> object:
        return self.cursor_state.shape

    # ---- connecting --------------------------------------------------------------------

    async def connect(self, opener: SocketOpener, timeout: float = 30.0) -> None:
        """Link the main channel, then display, inputs and cursor; returns once a screen exists.

        On failure every channel opened so far is closed again.
        """
        try:
            await self._connect(opener, timeout)
        except BaseException:
            await self.close()
            raise

    async def _connect(self, opener: SocketOpener, timeout: float) -> None:
        main = await self._link(opener, CHANNEL_MAIN, [])
        while True:
            msg_type, body = await asyncio.wait_for(main.receive(), timeout)
            if msg_type == MAIN_INIT:
                break
        if len(body) < 16:
            raise ProtocolError("The server's main channel init is too short.")
        self.session_id, _hint, modes, current = struct.unpack_from("<IIII", body)
        self.mouse_mode = current
        if modes & MOUSE_MODE_CLIENT and current != MOUSE_MODE_CLIENT:
            main.send(MAINC_MOUSE_MODE_REQUEST, struct.pack("<H", MOUSE_MODE_CLIENT))
        main.send(MAINC_ATTACH_CHANNELS)
        display = await self._link(opener, CHANNEL_DISPLAY,
                                   [disp.CAP_LZ4_COMPRESSION, disp.CAP_PREF_COMPRESSION])
        # Both in one write: the server reads them before it sends the first image.
        display.send(disp.MSGC_INIT, disp.init_message(CACHE_PIXELS))
        display.send(disp.MSGC_PREFERRED_COMPRESSION,
                     bytes([disp.COMPRESSION[self.compression]]))
        await self._link(opener, CHANNEL_INPUTS, [INPUTS_CAP_KEY_SCANCODE])
        await self._link(opener, CHANNEL_CURSOR, [])
        while self.display.primary is None:
            msg_type, body = await asyncio.wait_for(display.receive(), timeout)
            self.display.handle(msg_type, body)

    async def _link(self, opener: SocketOpener, channel_type: int,
                    caps: list[int]) -> SpiceChannel:
        sock = await opener()
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        try:
            channel = await SpiceChannel.link(
                reader, writer, connection_id=self.session_id, channel_type=channel_type,
                channel_caps=caps, password=self.password)
        except BaseException:
            writer.close()
            raise
        self.channels[channel_type] = channel
        return channel

    # ---- receiving -----------------------------------------------------------------------

    async def run(self) -> None:
        """Read every channel until one ends; emits ``closed`` once."""
        error: str | None = None
        tasks = [asyncio.ensure_future(self._read(kind, channel))
                 for kind, channel in self.channels.items()]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, ProtocolError):
                    error = exc.message
                elif isinstance(exc, (ConnectionError, OSError)):
                    error = f"The connection to the console was lost ({exc})."
                elif exc is not None:
                    raise exc
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()
            self.closed.emit(error)

    async def _read(self, kind: int, channel: SpiceChannel) -> None:
        while True:
            msg_type, body = await channel.receive()
            if kind == CHANNEL_DISPLAY:
                self.display.handle(msg_type, body)
            elif kind == CHANNEL_CURSOR:
                if self.cursor_state.handle(msg_type, body):
                    self.cursor_changed.emit(self.cursor_state.shape
                                             if self.cursor_state.visible else None)
            elif kind == CHANNEL_INPUTS:
                self._inputs_message(msg_type)
            elif kind == CHANNEL_MAIN and msg_type == MAIN_MOUSE_MODE and len(body) >= 4:
                (_supported, self.mouse_mode) = struct.unpack_from("<HH", body)

    def _inputs_message(self, msg_type: int) -> None:
        if msg_type == INPUTS_MOTION_ACK:
            self._motion_pending = max(0, self._motion_pending - MOTION_ACK_BUNCH)
            dx, dy = self._motion_backlog
            if dx or dy:
                self._motion_backlog = (0, 0)
                self._send_motion(dx, dy)

    def _on_draw(self, rects: list[tuple[int, int, int, int]]) -> None:
        self.updates += 1
        self.updated.emit(rects)
        self._update_event.set()

    def _on_primary(self, fb: Framebuffer) -> None:
        size = (fb.width, fb.height)
        if self._size is not None and size != self._size:
            self.resized.emit(*size)
        self._size = size

    async def wait_update(self, timeout: float = 5.0) -> None:
        self._update_event.clear()
        await asyncio.wait_for(self._update_event.wait(), timeout)

    # ---- input ---------------------------------------------------------------------------

    def _inputs(self) -> SpiceChannel | None:
        return self.channels.get(CHANNEL_INPUTS)

    def key_event(self, down: bool, keysym: int, scancode: int | None = None) -> None:
        """A key as its XT scancode (SPICE has no keysyms); unknown keys are dropped."""
        inputs = self._inputs()
        xt = scancode if scancode is not None else _KEYSYM_TO_XT.get(keysym)
        if inputs is None or xt is None:
            return
        self._keys.append(struct.pack("<HI", INPUTSC_KEY_DOWN if down else INPUTSC_KEY_UP,
                                      spice_scancode(xt, release=not down)))
        if self._key_pacer is None or self._key_pacer.done():
            self._key_pacer = asyncio.ensure_future(self._send_keys())

    async def _send_keys(self) -> None:
        while self._keys:
            inputs = self._inputs()
            if inputs is None:
                self._keys.clear()
                return
            msg_type, code = struct.unpack("<HI", self._keys.popleft())
            inputs.send(msg_type, struct.pack("<I", code))
            if self._keys:
                await asyncio.sleep(KEY_DELAY)

    def pointer_event(self, x: int, y: int, buttons: int) -> None:
        """VNC-style pointer state: position plus button mask (8 and 16 are the wheel)."""
        inputs, fb = self._inputs(), self.framebuffer
        if inputs is None or fb is None:
            return
        x = min(max(x, 0), fb.width - 1)
        y = min(max(y, 0), fb.height - 1)
        held = buttons & 7
        if (x, y) != self._pointer:
            if self.mouse_mode == MOUSE_MODE_CLIENT:
                inputs.send(INPUTSC_MOUSE_POSITION, struct.pack("<IIHB", x, y, self._buttons, 0))
            else:
                self._send_motion(x - self._pointer[0], y - self._pointer[1])
            self._pointer = (x, y)
        for bit, number in _BUTTONS:
            pressed, was = buttons & bit, self._buttons & bit
            if pressed and not was:
                inputs.send(INPUTSC_MOUSE_PRESS, struct.pack("<BH", number, held))
            # A wheel step is a click: pressed and released at once.
            if (bit >= 8 and pressed) or (was and not pressed):
                inputs.send(INPUTSC_MOUSE_RELEASE, struct.pack("<BH", number, held))
        self._buttons = held

    def _send_motion(self, dx: int, dy: int) -> None:
        inputs = self._inputs()
        if inputs is None:
            return
        if self._motion_pending >= 2 * MOTION_ACK_BUNCH:
            bx, by = self._motion_backlog
            self._motion_backlog = (bx + dx, by + dy)
            return
        self._motion_pending += 1
        inputs.send(INPUTSC_MOUSE_MOTION, struct.pack("<iiH", dx, dy, self._buttons))

    def set_desktop_size(self, width: int, height: int) -> bool:
        return False  # needs the guest agent, which stays off

    async def drain(self) -> None:
        """Wait until every key typed so far and all pending messages are sent."""
        if self._key_pacer is not None:
            await self._key_pacer
        for channel in self.channels.values():
            if not channel.writer.is_closing():
                await channel.writer.drain()

    async def close(self) -> None:
        if self._key_pacer is not None:
            self._key_pacer.cancel()
        channels, self.channels = list(self.channels.values()), {}
        for channel in channels:
            await channel.close()
