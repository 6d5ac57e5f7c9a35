"""An asyncio RFB 3.8 (VNC) client, free of Qt.

It negotiates security (None, VNC password, VeNCrypt with TLS), asks for a
32-bit BGRX pixel format that Qt paints as is, decodes Raw, CopyRect, Zlib,
ZRLE and Tight rectangles into a Framebuffer, follows DesktopSize and
ExtendedDesktopSize, keeps the server's cursor shape, and sends keys as
QEMU extended key events (scancodes) once the server acknowledges them.

One update request is kept in flight: the next incremental request is sent as
soon as an update starts arriving, so the server never waits on decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass

from virtstudio.console import rfb_clipboard as clip
from virtstudio.console import rfb_decoders as dec
from virtstudio.console.des import vnc_auth_response
from virtstudio.console.framebuffer import Framebuffer, ProtocolError, check_size
from virtstudio.console.keymap import xt_to_qemu
from virtstudio.core.signal import Signal

SEC_NONE = 1
SEC_VNC = 2
SEC_VENCRYPT = 19
VENCRYPT_TLS_NONE = 257
VENCRYPT_TLS_VNC = 258
VENCRYPT_X509_NONE = 260
VENCRYPT_X509_VNC = 261

PSEUDO_DESKTOP_SIZE = -223
PSEUDO_CURSOR = -239
PSEUDO_QEMU_EXT_KEY = -258
PSEUDO_LED_STATE = -261
PSEUDO_EXT_DESKTOP_SIZE = -308

ENCODINGS = {"raw": dec.ENC_RAW, "zlib": dec.ENC_ZLIB, "zrle": dec.ENC_ZRLE,
             "tight": dec.ENC_TIGHT, "copyrect": dec.ENC_COPYRECT}
# Little-endian 32 bpp, depth 24, true colour, red at bit 16: bytes B, G, R, X.
PIXEL_FORMAT = struct.pack("!BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
MAX_CURSOR = 256


@dataclass
class CursorShape:
    hotspot_x: int
    hotspot_y: int
    width: int
    height: int
    bgra: bytes  # width*height*4, alpha 0 or 255


class AuthenticationError(ProtocolError):
    """The server refused the password or the security type."""


# After a key release, repeat it this often and this many times (see _keep_refresh_fast).
NUDGE_INTERVAL_S = 0.02
NUDGE_COUNT = 8


class RfbClient:
    def __init__(self, *, password: str | None = None, encoding: str = "zrle",
                 tls: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 jpeg: dec.JpegDecoder | None = None) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding}")
        self.password = password
        self.encoding = encoding
        self.tls = tls
        self.server_hostname = server_hostname
        self.jpeg = jpeg
        self.framebuffer: Framebuffer | None = None
        self.name = ""
        self.cursor: CursorShape | None = None
        self.leds: int | None = None
        self.qemu_keys = False
        self.extended_desktop = False
        self.updates = 0
        self.updated = Signal("rfb updated")  # list of (x, y, w, h)
        self.resized = Signal("rfb resized")  # (w, h)
        self.cursor_changed = Signal("rfb cursor")
        self.bell = Signal("rfb bell")
        self.clipboard = Signal("rfb clipboard")  # text, only while sharing is on
        self.desktop_resizable = Signal("rfb desktop resizable")  # once, when announced
        # Nothing crosses either way until the user turns sharing on.
        self.share_clipboard = False
        self._clip = clip.ClipboardState()
        self.closed = Signal("rfb closed")  # error message or None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._zlib = dec.Inflater()
        self._zrle = dec.Inflater()
        self._tight = [dec.Inflater() for _ in range(4)]
        self._screen_id = 0
        self._update_event = asyncio.Event()
        self._refresh_nudges: list[asyncio.TimerHandle] = []

    # ---- connecting --------------------------------------------------------------------

    async def connect_tcp(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        await self.handshake(reader, writer)

    async def connect_socket(self, sock: socket.socket) -> None:
        """Use an already connected socket, e.g. from virDomainOpenGraphicsFD."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        await self.handshake(reader, writer)

    async def _read(self, n: int) -> bytes:
        assert self._reader is not None
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise ProtocolError("The server closed the connection.") from None

    def _send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        version = await self._read(12)
        if not version.startswith(b"RFB 003."):
            raise ProtocolError("The server does not speak the VNC protocol.")
        minor = int(version[8:11]) if version[8:11].isdigit() else 0
        if minor < 8:
            raise ProtocolError(f"The server speaks RFB 3.{minor}; VirtStudio needs 3.8.")
        self._send(b"RFB 003.008\n")
        await self._security()
        self._send(b"\x01")  # shared: do not disconnect other viewers
        header = await self._read(24)
        width, height = struct.unpack("!HH", header[:4])
        (name_len,) = struct.unpack("!I", header[20:24])
        if name_len > 4096:
            raise ProtocolError("The server's name is implausibly long.")
        self.name = (await self._read(name_len)).decode(errors="replace")
        self.framebuffer = Framebuffer(width, height)
        self._send(b"\x00\x00\x00\x00" + PIXEL_FORMAT)
        encodings = [ENCODINGS[self.encoding]]
        if self.encoding != "raw":
            encodings.append(dec.ENC_RAW)
        encodings += [PSEUDO_EXT_DESKTOP_SIZE, PSEUDO_DESKTOP_SIZE, PSEUDO_CURSOR,
                      PSEUDO_QEMU_EXT_KEY, PSEUDO_LED_STATE, clip.PSEUDO_EXT_CLIPBOARD]
        self._send(struct.pack(f"!BxH{len(encodings)}i", 2, len(encodings), *encodings))
        self.request_update(incremental=False)

    async def _security(self) -> None:
        count = (await self._read(1))[0]
        if count == 0:
            raise ProtocolError(f"The server refused the connection: {await self._reason()}")
        offered = set(await self._read(count))
        if SEC_VENCRYPT in offered and self.tls is not None:
            self._send(bytes([SEC_VENCRYPT]))
            await self._vencrypt()
            return
        if SEC_NONE in offered:
            self._send(bytes([SEC_NONE]))
        elif SEC_VNC in offered:
            if self.password is None:
                raise AuthenticationError("The console needs a password.")
            self._send(bytes([SEC_VNC]))
            self._send(vnc_auth_response(self.password, await self._read(16)))
        else:
            raise AuthenticationError(
                "The server offers no security type VirtStudio supports "
                f"({sorted(offered)}).")
        await self._security_result()

    async def _vencrypt(self) -> None:
        major, minor = await self._read(2)
        if (major, minor) < (0, 2):
            raise ProtocolError("The server's VeNCrypt is too old.")
        self._send(b"\x00\x02")
        if (await self._read(1))[0] != 0:
            raise ProtocolError("The server refused VeNCrypt 0.2.")
        count = (await self._read(1))[0]
        subtypes = struct.unpack(f"!{count}I", await self._read(4 * count))
        for wanted in (VENCRYPT_X509_VNC, VENCRYPT_X509_NONE, VENCRYPT_TLS_VNC,
                       VENCRYPT_TLS_NONE):
            if wanted in subtypes:
                break
        else:
            raise AuthenticationError("The server offers no VeNCrypt type VirtStudio supports.")
        self._send(struct.pack("!I", wanted))
        if (await self._read(1))[0] != 1:
            raise AuthenticationError("The server refused the VeNCrypt type.")
        assert self._writer is not None and self.tls is not None
        await self._writer.start_tls(self.tls, server_hostname=self.server_hostname)
        if wanted in (VENCRYPT_X509_VNC, VENCRYPT_TLS_VNC):
            if self.password is None:
                raise AuthenticationError("The console needs a password.")
            self._send(vnc_auth_response(self.password, await self._read(16)))
        await self._security_result()

    async def _security_result(self) -> None:
        (result,) = struct.unpack("!I", await self._read(4))
        if result != 0:
            raise AuthenticationError(f"The server refused the login: {await self._reason()}")

    async def _reason(self) -> str:
        (length,) = struct.unpack("!I", await self._read(4))
        return (await self._read(min(length, 4096))).decode(errors="replace")

    # ---- input ---------------------------------------------------------------------------

    def request_update(self, incremental: bool = True) -> None:
        fb = self.framebuffer
        if fb is not None:
            self._send(struct.pack("!BBHHHH", 3, int(incremental), 0, 0, fb.width, fb.height))

    def key_event(self, down: bool, keysym: int, scancode: int | None = None) -> None:
        if self.qemu_keys and scancode is not None:
            message = struct.pack("!BBHII", 255, 0, int(down), keysym, xt_to_qemu(scancode))
            self._send(message)
            if not down:
                self._keep_refresh_fast(message)
        else:
            self._send(struct.pack("!BBxxI", 4, int(down), keysym))

    def _keep_refresh_fast(self, key_release: bytes) -> None:
        """Have QEMU look for the guest's answer to a key every 30 ms for a short while.

        Any input message resets QEMU's screen refresh to 30 ms, but the refresh it
        triggers at once finds nothing new (the guest has not reacted yet) and the
        interval backs off again, so the answer would wait for a slower tick. Sending
        the same key release again keeps the fast rate: QEMU drops a release of a key
        that is not down, so the guest sees nothing of it.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for handle in self._refresh_nudges:
            handle.cancel()
        self._refresh_nudges = [loop.call_later(NUDGE_INTERVAL_S * (i + 1), self._send,
                                                key_release)
                                for i in range(NUDGE_COUNT)]

    def pointer_event(self, x: int, y: int, buttons: int) -> None:
        fb = self.framebuffer
        if fb is None:
            return
        x = min(max(x, 0), fb.width - 1)
        y = min(max(y, 0), fb.height - 1)
        self._send(struct.pack("!BBHH", 5, buttons & 0xFF, x, y))

    def set_desktop_size(self, width: int, height: int) -> bool:
        """Ask the guest to change resolution; False when the server cannot."""
        if not self.extended_desktop:
            return False
        check_size(width, height)
        self._send(struct.pack("!BxHHBxIHHHHI", 251, width, height, 1, self._screen_id,
                               0, 0, width, height, 0))
        return True

    def send_clipboard(self, text: str) -> bool:
        """Offer the desktop's text to the guest; False (and nothing sent) while not sharing."""
        if not self.share_clipboard:
            return False
        self._send(self._clip.outgoing(text))
        return True

    def set_clipboard_sharing(self, on: bool) -> None:
        self.share_clipboard = on
        if not on:
            self._send(self._clip.forget())

    @property
    def extended_clipboard(self) -> bool:
        return self._clip.extended

    async def drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()

    async def wait_update(self, timeout: float = 5.0) -> None:
        self._update_event.clear()
        await asyncio.wait_for(self._update_event.wait(), timeout)

    # ---- receiving -----------------------------------------------------------------------

    async def run(self) -> None:
        """Read server messages until the connection ends; emits ``closed`` once."""
        error: str | None = None
        try:
            while True:
                await self._message()
        except ProtocolError as exc:
            error = exc.message
        except (ConnectionError, OSError) as exc:
            error = f"The connection to the console was lost ({exc})."
        except asyncio.CancelledError:
            error = None
            raise
        finally:
            await self.close()
            self.closed.emit(error)

    async def _message(self) -> None:
        kind = (await self._read(1))[0]
        if kind == 0:
            await self._framebuffer_update()
        elif kind == 1:
            _first, count = struct.unpack("!xHH", await self._read(5))
            await self._read(count * 6)  # colour maps: true colour is asked for
        elif kind == 2:
            self.bell.emit()
        elif kind == 3:
            await self._cut_text()
        elif kind == 255:
            raise ProtocolError("The server sent a QEMU message that was not asked for.")
        else:
            raise ProtocolError(f"Unknown server message type {kind}.")

    async def _cut_text(self) -> None:
        (length,) = struct.unpack("!xxxi", await self._read(7))
        if abs(length) > clip.MAX_TEXT + 64:
            raise ProtocolError("The server's clipboard text is too long.")
        if length >= 0:
            text = (await self._read(length)).decode("latin-1").replace("\r\n", "\n")
            if self.share_clipboard:
                self.clipboard.emit(text)
            return
        if -length < 4:
            raise ProtocolError("The server sent an extended clipboard message without flags.")
        body = await self._read(-length)
        (flags,) = struct.unpack("!I", body[:4])
        reply, text = self._clip.incoming(flags, body[4:], self.share_clipboard)
        if reply:
            self._send(reply)
        if text is not None:
            self.clipboard.emit(text)

    async def _framebuffer_update(self) -> None:
        (count,) = struct.unpack("!xH", await self._read(3))
        self.request_update(incremental=True)  # keep one request in flight
        rects: list[tuple[int, int, int, int]] = []
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack("!HHHHi", await self._read(12))
            if encoding >= 0:
                fb = self.framebuffer
                assert fb is not None
                fb.check_rect(x, y, w, h)
                await self._decode(encoding, fb, x, y, w, h)
                rects.append((x, y, w, h))
            else:
                await self._pseudo(encoding, x, y, w, h)
        self.updates += 1
        if rects:
            self.updated.emit(rects)
        self._update_event.set()

    async def _decode(self, encoding: int, fb: Framebuffer, x: int, y: int, w: int,
                      h: int) -> None:
        read = self._read
        if encoding == dec.ENC_RAW:
            await dec.decode_raw(read, fb, x, y, w, h)
        elif encoding == dec.ENC_ZRLE:
            await dec.decode_zrle(read, fb, x, y, w, h, self._zrle)
        elif encoding == dec.ENC_ZLIB:
            await dec.decode_zlib(read, fb, x, y, w, h, self._zlib)
        elif encoding == dec.ENC_TIGHT:
            await dec.decode_tight(read, fb, x, y, w, h, self._tight, self.jpeg)
        elif encoding == dec.ENC_COPYRECT:
            await dec.decode_copyrect(read, fb, x, y, w, h)
        else:
            raise ProtocolError(f"The server used encoding {encoding}, which was not asked for.")

    async def _pseudo(self, encoding: int, x: int, y: int, w: int, h: int) -> None:
        if encoding == PSEUDO_QEMU_EXT_KEY:
            self.qemu_keys = True
        elif encoding == PSEUDO_LED_STATE:
            self.leds = (await self._read(1))[0]
        elif encoding == PSEUDO_DESKTOP_SIZE:
            self._resize(w, h)
        elif encoding == PSEUDO_EXT_DESKTOP_SIZE:
            count = (await self._read(4))[0]
            screens = await self._read(16 * count)
            if count:
                self._screen_id = struct.unpack("!I", screens[:4])[0]
            if not self.extended_desktop:
                self.extended_desktop = True
                self.desktop_resizable.emit()
            # x says why (0 the server, 1 our request, 2 another client's); y is the
            # request's status, and on success w x h is the screen's size now.
            if y == 0:
                self._resize(w, h)
        elif encoding == PSEUDO_CURSOR:
            await self._cursor(x, y, w, h)
        else:
            raise ProtocolError(f"The server sent pseudo-encoding {encoding}, not asked for.")

    def _resize(self, width: int, height: int) -> None:
        fb = self.framebuffer
        assert fb is not None
        if (width, height) != (fb.width, fb.height):
            fb.resize(width, height)
            self.resized.emit(width, height)
        self.request_update(incremental=False)

    async def _cursor(self, hot_x: int, hot_y: int, w: int, h: int) -> None:
        if w > MAX_CURSOR or h > MAX_CURSOR:
            raise ProtocolError(f"The server's {w}x{h} cursor is refused.")
        pixels = await self._read(w * h * 4)
        mask = await self._read(((w + 7) // 8) * h)
        out = bytearray(pixels)
        row_mask = (w + 7) // 8
        for row in range(h):
            for col in range(w):
                visible = mask[row * row_mask + col // 8] & (0x80 >> (col % 8))
                out[(row * w + col) * 4 + 3] = 255 if visible else 0
        self.cursor = CursorShape(hot_x, hot_y, w, h, bytes(out)) if w and h else None
        self.cursor_changed.emit(self.cursor)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def describe_connection_error(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return exc.message
    if isinstance(exc, TimeoutError):  # an OSError too, but with no words of its own
        return "The console did not answer in time."
    if isinstance(exc, (ConnectionError, OSError)):
        return f"Could not reach the console: {exc}."
    return str(exc)


