"""A scripted SPICE server on socket pairs, and builders for the bytes real servers send.

Each channel the client opens gets a fresh socket pair; the server end links
with a real RSA key (so the ticket really is decrypted), sends that channel's
scripted messages, and records everything the client sends.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from virtstudio.console.spice_wire import COMMON_CAP_AUTH_SELECTION, COMMON_CAP_MINI_HEADER

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
PUBKEY = _KEY.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def link_reply(error: int = 0, common: int = (1 << COMMON_CAP_AUTH_SELECTION)
               | (1 << COMMON_CAP_MINI_HEADER), channel: int = 0, magic: bytes = b"REDQ",
               pubkey: bytes = PUBKEY) -> bytes:
    body = struct.pack("<I", error) + pubkey + struct.pack("<IIIII", 1, 1, 178, common, channel)
    return magic + struct.pack("<III", 2, 2, len(body)) + body


def msg(msg_type: int, body: bytes = b"") -> bytes:
    return struct.pack("<HI", msg_type, len(body)) + body


def main_init(session_id: int = 42, modes: int = 1, current: int = 1) -> bytes:
    return msg(103, struct.pack("<IIIIIIII", session_id, 1, modes, current, 0, 0, 0, 0))


def surface_create(width: int, height: int, surface_id: int = 0, fmt: int = 32,
                   flags: int = 1) -> bytes:
    return msg(314, struct.pack("<IIIII", surface_id, width, height, fmt, flags))


def base(x: int, y: int, w: int, h: int, clips: list[tuple[int, int, int, int]] | None = None,
         surface_id: int = 0) -> bytes:
    out = struct.pack("<Iiiii", surface_id, y, x, y + h, x + w)
    if clips is None:
        return out + b"\x00"
    out += b"\x01" + struct.pack("<I", len(clips))
    for cx, cy, cw, ch in clips:
        out += struct.pack("<iiii", cy, cx, cy + ch, cx + cw)
    return out


def bitmap_image(w: int, h: int, bgrx: bytes, *, top_down: bool = True, image_id: int = 0,
                 flags: int = 0) -> bytes:
    stride = w * 4
    rows = [bgrx[r * stride:(r + 1) * stride] for r in range(h)]
    data = b"".join(rows if top_down else reversed(rows))
    return (struct.pack("<QBBII", image_id, 0, flags, w, h)
            + struct.pack("<BBIII", 8, 4 if top_down else 0, w, h, stride)
            + struct.pack("<I", 0) + data)


def image_header(kind: int, w: int, h: int, image_id: int = 0, flags: int = 0) -> bytes:
    return struct.pack("<QBBII", image_id, kind, flags, w, h)


def lz4_image(w: int, h: int, blocks: list[bytes], *, top_down: bool = True,
              image_id: int = 0, flags: int = 0) -> bytes:
    data = bytes((int(top_down), 8)) + b"".join(struct.pack(">I", len(b)) + b for b in blocks)
    return image_header(109, w, h, image_id, flags) + struct.pack("<I", len(data)) + data


def draw_copy(box: bytes, image: bytes, src: tuple[int, int, int, int], rop: int = 8) -> bytes:
    """DRAW_COPY with ``image`` placed after the fixed part, where the offset points."""
    sx, sy, sw, sh = src
    offset = len(box) + 23 + 13  # copy fields, then the (empty) mask
    return msg(304, box + struct.pack("<IiiiiHB", offset, sy, sx, sy + sh, sx + sw, rop, 0)
               + struct.pack("<BiiI", 0, 0, 0, 0) + image)


def draw_fill(box: bytes, bgrx: bytes, rop: int = 8) -> bytes:
    (color,) = struct.unpack("<I", bgrx)
    return msg(302, box + struct.pack("<BIH", 1, color, rop) + struct.pack("<BiiI", 0, 0, 0, 0))


def copy_bits(box: bytes, src_x: int, src_y: int) -> bytes:
    return msg(104, box + struct.pack("<ii", src_x, src_y))


class FakeSpiceServer:
    """Serves scripted channels; ``sent[channel_type]`` holds what the client sent."""

    def __init__(self, scripts: dict[int, bytes], *, reply: bytes | None = None) -> None:
        self.scripts = scripts
        self.reply = reply
        self.links: list[tuple[int, int, int, list[int]]] = []  # conn id, type, id, caps
        self.passwords: list[bytes] = []
        self.sent: dict[int, bytearray] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def opener(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        self._tasks.append(asyncio.ensure_future(self._serve(ours)))
        return theirs

    async def _serve(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            header = await reader.readexactly(16)
            (size,) = struct.unpack_from("<I", header, 12)
            body = await reader.readexactly(size)
            conn_id, ctype, cid, n_common, n_chan, offset = struct.unpack_from("<IBBIII", body)
            caps = list(struct.unpack_from(f"<{n_common + n_chan}I", body, offset))
            self.links.append((conn_id, ctype, cid, caps[n_common:]))
            writer.write(self.reply if self.reply is not None else link_reply())
            await reader.readexactly(4)  # auth mechanism
            self.passwords.append(_KEY.decrypt(await reader.readexactly(128), OAEP))
            writer.write(struct.pack("<I", 0) + self.scripts.get(ctype, b""))
            await writer.drain()
            record = self.sent.setdefault(ctype, bytearray())
            while chunk := await reader.read(65536):
                record += chunk
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def client_messages(data: bytes) -> list[tuple[int, bytes]]:
    """Split what a client sent on a linked channel (after link and ticket) into messages."""
    out = []
    i = 0
    while i + 6 <= len(data):
        msg_type, size = struct.unpack_from("<HI", data, i)
        out.append((msg_type, bytes(data[i + 6:i + 6 + size])))
        i += 6 + size
    return out


class ThreadedFakeSpiceServer:
    """A FakeSpiceServer on its own thread and loop, with a blocking ``opener`` for sessions."""

    def __init__(self, scripts: dict[int, bytes]) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.server = FakeSpiceServer(scripts)
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake spice",
                                        daemon=True)
        self._thread.start()

    def opener(self) -> socket.socket:
        return asyncio.run_coroutine_threadsafe(self.server.opener(), self.loop).result(60)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
