"""A scripted VNC server on its own thread, for tests that drive a real ConsoleSession.

Each ``opener()`` call makes a socket pair and serves the other end: security
None, a solid-colour screen sent raw, the ExtendedDesktopSize and extended
clipboard announcements when asked to, and a record of every message the
client sends, parsed.  ``push`` sends bytes to every client, e.g. cut text.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
import zlib

from tests.console.fake_server import rect, server_init, update
from virtstudio.console import rfb_clipboard as clip

PSEUDO_EXT_DESKTOP_SIZE = -308


def ext_clipboard(flags: int, payload: bytes = b"") -> bytes:
    """An extended clipboard message from the server."""
    body = struct.pack("!I", flags) + payload
    return struct.pack("!Bxxxi", 3, -len(body)) + body


def server_cut_text(text: str) -> bytes:
    data = text.encode("latin-1")
    return struct.pack("!BxxxI", 3, len(data)) + data


def server_provide(text: str) -> bytes:
    data = text.encode() + b"\x00"
    return ext_clipboard(clip.ACTION_PROVIDE | clip.FORMAT_TEXT,
                         zlib.compress(struct.pack("!I", len(data)) + data))


def parse_provide(flags: int, payload: bytes) -> str | None:
    return clip.parse_provide(flags, payload)


class FakeVncServer:
    def __init__(self, width: int = 64, height: int = 48, *, colour: bytes = b"\x00\x00\xff\x00",
                 ext_desktop: bool = False, ext_clipboard: bool = False,
                 follows_resize: bool = True) -> None:
        self.width, self.height = width, height
        self.colour = colour
        self.ext_desktop = ext_desktop
        self.ext_clipboard = ext_clipboard
        self.follows_resize = follows_resize
        # (kind, value): ("cut", text), ("ext", (flags, payload)), ("resize", (w, h)), ...
        self.received: list[tuple[str, object]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake VNC server",
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeVncServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def opener(self) -> socket.socket:
        client, server = socket.socketpair()
        server.setblocking(False)
        asyncio.run_coroutine_threadsafe(self._serve(server), self._loop)
        return client

    def listen_tcp(self) -> int:
        """Also serve on 127.0.0.1 (a free port, returned), as QEMU's VNC server does."""
        async def start() -> int:
            server = await asyncio.start_server(
                lambda r, w: self._serve_streams(r, w), "127.0.0.1", 0)
            return server.sockets[0].getsockname()[1]

        return asyncio.run_coroutine_threadsafe(start(), self._loop).result(60)

    def push(self, data: bytes) -> None:
        def send() -> None:
            for writer in self._writers:
                writer.write(data)

        self._loop.call_soon_threadsafe(send)

    def of_kind(self, kind: str) -> list[object]:
        return [value for k, value in list(self.received) if k == kind]

    def wait_for(self, kind: str, timeout: float = 5.0) -> list[object]:
        deadline = time.monotonic() + timeout
        while not self.of_kind(kind):
            if time.monotonic() > deadline:
                raise AssertionError(f"the client sent no {kind} message; got {self.received}")
            time.sleep(0.02)
        return self.of_kind(kind)

    def close(self) -> None:
        def stop() -> None:
            for writer in self._writers:
                writer.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(5)

    # ---- serving ---------------------------------------------------------------------------

    def _frame(self) -> bytes:
        pixels = self.colour * (self.width * self.height)
        return rect(0, 0, self.width, self.height, 0, pixels)

    def _ext_desktop_rect(self, reason: int, status: int) -> bytes:
        screens = struct.pack("!B3x", 1) + struct.pack("!IHHHHI", 1, 0, 0, self.width,
                                                       self.height, 0)
        return rect(reason, status, self.width, self.height, PSEUDO_EXT_DESKTOP_SIZE, screens)

    async def _serve(self, sock: socket.socket) -> None:
        await self._serve_streams(*await asyncio.open_connection(sock=sock))

    async def _serve_streams(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            writer.write(b"RFB 003.008\n")
            await reader.readexactly(12)
            writer.write(b"\x01\x01")
            await reader.readexactly(1)
            writer.write(b"\x00\x00\x00\x00")
            await reader.readexactly(1)
            writer.write(server_init(self.width, self.height))
            while True:
                await self._message(reader, writer)
        self._writers.remove(writer)

    async def _message(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind = (await reader.readexactly(1))[0]
        if kind == 0:
            await reader.readexactly(19)
        elif kind == 2:
            (count,) = struct.unpack("!xH", await reader.readexactly(3))
            encodings = struct.unpack(f"!{count}i", await reader.readexactly(4 * count))
            self.received.append(("encodings", encodings))
            if self.ext_clipboard and clip.PSEUDO_EXT_CLIPBOARD in encodings:
                writer.write(ext_clipboard(clip.ACTION_CAPS | clip.ACTIONS | clip.FORMAT_TEXT,
                                           struct.pack("!I", clip.MAX_TEXT)))
        elif kind == 3:
            incremental = (await reader.readexactly(9))[0]
            if not incremental:
                rects = [self._frame()]
                if self.ext_desktop:
                    rects.insert(0, self._ext_desktop_rect(0, 0))
                writer.write(update(*rects))
        elif kind == 4:
            down, keysym = struct.unpack("!BxxI", await reader.readexactly(7))
            self.received.append(("key", (bool(down), keysym)))
        elif kind == 5:
            self.received.append(("pointer", struct.unpack("!BHH", await reader.readexactly(5))))
        elif kind == 6:
            (length,) = struct.unpack("!xxxi", await reader.readexactly(7))
            if length >= 0:
                self.received.append(("cut", (await reader.readexactly(length)).decode("latin-1")))
            else:
                body = await reader.readexactly(-length)
                self.received.append(("ext", (struct.unpack("!I", body[:4])[0], body[4:])))
        elif kind == 251:
            width, height, count = struct.unpack("!xHHBx", await reader.readexactly(7))
            await reader.readexactly(16 * count)
            self.received.append(("resize", (width, height)))
            if self.follows_resize and self.ext_desktop:
                self.width, self.height = width, height
                writer.write(update(self._ext_desktop_rect(1, 0)))
            else:
                writer.write(update(self._ext_desktop_rect(1, 3)))  # 3: invalid layout
        elif kind == 255:
            await reader.readexactly(11)
        else:
            raise ConnectionError(f"unknown client message {kind}")
