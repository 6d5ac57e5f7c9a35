"""Decoders for the RFB rectangle encodings: Raw, Zlib, ZRLE and Tight.

Each decoder reads exactly what the rectangle holds from ``read`` and writes
pixels into the framebuffer.  Sizes from the server are checked against the
rectangle before anything is allocated or inflated, and every inflate is
bounded, so a hostile server cannot make the client allocate without limit.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

from virtstudio.console.framebuffer import BYTES_PER_PIXEL, Framebuffer, ProtocolError

try:
    # zlib-ng inflates VNC's streams three times faster; same streams, same API.
    from zlib_ng import zlib_ng as zlib
except ImportError:  # pragma: no cover - the stdlib decoder works, only slower
    import zlib  # type: ignore[no-redef]

Read = Callable[[int], Awaitable[bytes]]
JpegDecoder = Callable[[bytes, int, int], bytes]  # jpeg, w, h -> BGRX rows

ENC_RAW = 0
ENC_COPYRECT = 1
ENC_ZLIB = 6
ENC_TIGHT = 7
ENC_ZRLE = 16
# Compressed payloads larger than this are refused outright.
MAX_COMPRESSED = 64 << 20
TILE = 64


def _to_bgrx(src: bytes, order: str) -> bytes:
    """3-byte pixels (``bgr`` or ``rgb``) to 4-byte BGRX, with C-speed slicing."""
    count = len(src) // 3
    out = bytearray(count * 4)
    if order == "bgr":
        out[0::4], out[1::4], out[2::4] = src[0::3], src[1::3], src[2::3]
    else:
        out[0::4], out[1::4], out[2::4] = src[2::3], src[1::3], src[0::3]
    return bytes(out)


class Inflater:
    """One persistent zlib stream, as Zlib, ZRLE and Tight keep across rectangles."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj()

    def reset(self) -> None:
        self._z = zlib.decompressobj()

    def inflate(self, data: bytes, expected: int) -> bytes:
        try:
            out = self._z.decompress(data, expected)
        except zlib.error as exc:
            raise ProtocolError(f"The server sent corrupt compressed data ({exc}).") from None
        if len(out) != expected or self._z.unconsumed_tail:
            raise ProtocolError("The server's compressed data does not match the rectangle.")
        return out

    def inflate_at_most(self, data: bytes, bound: int) -> bytes:
        """Inflate when the exact size is unknown; fail if more than ``bound`` comes out."""
        try:
            out = self._z.decompress(data, bound)
        except zlib.error as exc:
            raise ProtocolError(f"The server sent corrupt compressed data ({exc}).") from None
        if self._z.unconsumed_tail:
            raise ProtocolError("The server's compressed data is larger than the rectangle.")
        return out


async def decode_raw(read: Read, fb: Framebuffer, x: int, y: int, w: int, h: int) -> None:
    fb.put_rows(x, y, w, h, await read(w * h * BYTES_PER_PIXEL))


async def decode_copyrect(read: Read, fb: Framebuffer, x: int, y: int, w: int, h: int) -> None:
    src_x, src_y = struct.unpack("!HH", await read(4))
    fb.check_rect(src_x, src_y, w, h)
    fb.copy_rect(src_x, src_y, x, y, w, h)


async def _compressed(read: Read) -> bytes:
    (length,) = struct.unpack("!I", await read(4))
    if length > MAX_COMPRESSED:
        raise ProtocolError(f"The server announced {length} bytes of compressed data; refused.")
    return await read(length)


async def decode_zlib(read: Read, fb: Framebuffer, x: int, y: int, w: int, h: int,
                      stream: Inflater) -> None:
    data = await _compressed(read)
    fb.put_rows(x, y, w, h, stream.inflate(data, w * h * BYTES_PER_PIXEL))


class _Cursor:
    """Reads from an in-memory buffer, failing cleanly when it runs out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolError("The server's data ended inside a tile.")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ProtocolError("The server's data ended inside a tile.")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def run_length(self, limit: int) -> int:
        """A ZRLE run length; refused as soon as it passes ``limit`` (the pixels left).

        The length is a chain of 255s, so a few compressed bytes can announce
        billions of pixels: it is checked while it is read, before anything is
        multiplied by it.
        """
        length = 1
        while True:
            b = self.byte()
            length += b
            if length > limit:
                raise ProtocolError("A run went past the end of its tile.")
            if b != 255:
                return length


def _packed_rows(cur: _Cursor, palette: list[bytes], w: int, h: int) -> bytes:
    size = len(palette)
    bits = 1 if size <= 2 else 2 if size <= 4 else 4
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    padded = palette + [palette[0]] * ((1 << bits) - size)
    table = [b"".join(padded[(value >> (8 - bits * (i + 1))) & mask] for i in range(per_byte))
             for value in range(256)]
    row_len = (w * bits + 7) // 8
    rows = []
    for _ in range(h):
        row = cur.take(row_len)
        rows.append(b"".join(table[b] for b in row)[:w * 4])
    return b"".join(rows)


def _rle(cur: _Cursor, count: int, palette: list[bytes] | None) -> bytearray:
    """A run-length tile of ``count`` pixels; no run may pass the tile's end."""
    out = bytearray(count * 4)
    done = 0
    while done < count:
        if palette is None:
            pixel = _to_bgrx(cur.take(3), "bgr")
            run = cur.run_length(count - done)
        else:
            index = cur.byte()
            run = 1
            if index & 0x80:
                index &= 0x7F
                run = cur.run_length(count - done)
            if index >= len(palette):
                raise ProtocolError("The server used a palette entry it did not send.")
            pixel = palette[index]
        out[done * 4:(done + run) * 4] = pixel * run
        done += run
    return out


async def decode_zrle(read: Read, fb: Framebuffer, x: int, y: int, w: int, h: int,
                      stream: Inflater) -> None:
    data = await _compressed(read)
    # Upper bound of the uncompressed tiles: 1 subencoding byte + raw CPIXELs each.
    tiles = ((w + TILE - 1) // TILE) * ((h + TILE - 1) // TILE)
    bound = tiles + w * h * 3
    cur = _Cursor(stream.inflate_at_most(data, bound))
    for ty in range(y, y + h, TILE):
        th = min(TILE, y + h - ty)
        for tx in range(x, x + w, TILE):
            tw = min(TILE, x + w - tx)
            sub = cur.byte()
            count = tw * th
            if sub == 0:
                fb.put_rows(tx, ty, tw, th, _to_bgrx(cur.take(count * 3), "bgr"))
            elif sub == 1:
                fb.fill(tx, ty, tw, th, _to_bgrx(cur.take(3), "bgr"))
            elif 2 <= sub <= 16:
                palette = [_to_bgrx(cur.take(3), "bgr") for _ in range(sub)]
                fb.put_rows(tx, ty, tw, th, _packed_rows(cur, palette, tw, th))
            elif sub == 128:
                fb.put_rows(tx, ty, tw, th, _rle(cur, count, None))
            elif sub >= 130:
                palette = [_to_bgrx(cur.take(3), "bgr") for _ in range(sub - 128)]
                fb.put_rows(tx, ty, tw, th, _rle(cur, count, palette))
            else:
                raise ProtocolError(f"Unknown ZRLE tile type {sub}.")
    if cur.pos != len(cur.data):
        raise ProtocolError("The server's ZRLE data has bytes after the last tile.")


# ---- Tight --------------------------------------------------------------------------------

TIGHT_FILL = 0x08
TIGHT_JPEG = 0x09
TIGHT_MIN_TO_COMPRESS = 12


async def _compact_length(read: Read) -> int:
    length = 0
    for shift in (0, 7, 14):
        b = (await read(1))[0]
        length |= (b & (0x7F if shift < 14 else 0xFF)) << shift
        if shift == 14 or not b & 0x80:
            break
    if length > MAX_COMPRESSED:
        raise ProtocolError(f"The server announced {length} bytes of Tight data; refused.")
    return length


def _gradient(data: bytes, w: int, h: int) -> bytes:
    """Undo Tight's gradient filter (RGB triplets, predicted from left, up, up-left)."""
    out = bytearray(len(data))
    stride = w * 3
    for row in range(h):
        base = row * stride
        for col in range(w):
            i = base + col * 3
            for c in range(3):
                left = out[i - 3 + c] if col else 0
                up = out[i - stride + c] if row else 0
                corner = out[i - stride - 3 + c] if row and col else 0
                predicted = min(max(left + up - corner, 0), 255)
                out[i + c] = (data[i + c] + predicted) & 0xFF
    return bytes(out)


async def decode_tight(read: Read, fb: Framebuffer, x: int, y: int, w: int, h: int,
                       streams: list[Inflater], jpeg: JpegDecoder | None) -> None:
    control = (await read(1))[0]
    for i in range(4):
        if control & (1 << i):
            streams[i].reset()
    kind = control >> 4
    if kind == TIGHT_FILL:
        fb.fill(x, y, w, h, _to_bgrx(await read(3), "rgb"))
        return
    if kind == TIGHT_JPEG:
        data = await read(await _compact_length(read))
        if jpeg is None:
            raise ProtocolError("The server sent JPEG, which was not asked for.")
        fb.put_rows(x, y, w, h, jpeg(data, w, h))
        return
    if kind > 7:
        raise ProtocolError(f"Unknown Tight compression type {kind}.")
    stream = streams[kind & 0x03]
    filter_id = (await read(1))[0] if kind & 0x04 else 0
    palette: list[bytes] = []
    if filter_id == 1:
        count = (await read(1))[0] + 1
        palette = [_to_bgrx(await read(3), "rgb") for _ in range(count)]
        size = ((w + 7) // 8) * h if count == 2 else w * h
    elif filter_id in (0, 2):
        size = w * h * 3
    else:
        raise ProtocolError(f"Unknown Tight filter {filter_id}.")
    if size < TIGHT_MIN_TO_COMPRESS:
        data = await read(size)
    else:
        data = stream.inflate(await read(await _compact_length(read)), size)
    if filter_id == 1:
        if len(palette) == 2:
            pixels = _packed_rows(_Cursor(data), palette, w, h)
        else:
            if max(data, default=0) >= len(palette):
                raise ProtocolError("The server used a palette entry it did not send.")
            pixels = b"".join(palette[i] for i in data)
    elif filter_id == 2:
        pixels = _to_bgrx(_gradient(data, w, h), "rgb")
    else:
        pixels = _to_bgrx(data, "rgb")
    fb.put_rows(x, y, w, h, pixels)
