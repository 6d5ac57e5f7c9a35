"""SPICE images in display messages: bitmaps, LZ4 images and the client's image cache.

Messages are parsed from their body with every offset and length checked
against the bytes actually received, so a lying server gets a ProtocolError,
never an oversized allocation.  Decoded images are BGRX rows, top-down, the
layout of the Framebuffer they are copied into.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from virtstudio.console.framebuffer import ProtocolError, check_size
from virtstudio.console.spice_lz4 import decompress_block_into

IMAGE_BITMAP = 0
IMAGE_QUIC = 1
IMAGE_LZ_PLT = 100
IMAGE_LZ_RGB = 101
IMAGE_GLZ_RGB = 102
IMAGE_FROM_CACHE = 103
IMAGE_SURFACE = 104
IMAGE_JPEG = 105
IMAGE_FROM_CACHE_LOSSLESS = 106
IMAGE_ZLIB_GLZ_RGB = 107
IMAGE_JPEG_ALPHA = 108
IMAGE_LZ4 = 109

IMAGE_FLAG_CACHE_ME = 1
IMAGE_FLAG_CACHE_REPLACE_ME = 4

BITMAP_FMT_24BIT = 7
BITMAP_FMT_32BIT = 8
BITMAP_FMT_RGBA = 9
BITMAP_FLAG_PAL_FROM_CACHE = 2
BITMAP_FLAG_TOP_DOWN = 4

# The image cache size the client announces (in pixels) and holds to.
CACHE_PIXELS = 1 << 23


class UnsupportedImage(Exception):
    """A well-formed image this client cannot draw (e.g. QUIC or GLZ): skipped, not fatal."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Body:
    """Bounds-checked little-endian reads from one message body."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def unpack(self, fmt: str, offset: int) -> tuple:
        size = struct.calcsize("<" + fmt)
        if offset < 0 or offset + size > len(self.data):
            raise ProtocolError("The server sent a message shorter than its contents.")
        return struct.unpack_from("<" + fmt, self.data, offset)

    def view(self, offset: int, size: int) -> memoryview:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise ProtocolError("The server sent a message shorter than its contents.")
        return memoryview(self.data)[offset:offset + size]


@dataclass
class Image:
    width: int
    height: int
    pixels: bytes | memoryview  # BGRX, top-down
    stride: int


class ImageCache:
    """Images the server told the client to keep, by id, within CACHE_PIXELS."""

    def __init__(self, capacity: int = CACHE_PIXELS) -> None:
        self.capacity = capacity
        self.used = 0
        self._images: OrderedDict[int, Image] = OrderedDict()

    def __len__(self) -> int:
        return len(self._images)

    def put(self, image_id: int, image: Image) -> None:
        pixels = image.width * image.height
        if pixels > self.capacity:
            raise ProtocolError("The server asked to cache an image larger than the cache.")
        self.remove(image_id)
        while self.used + pixels > self.capacity and self._images:
            _, old = self._images.popitem(last=False)
            self.used -= old.width * old.height
        tight = Image(image.width, image.height, _tight_rows(image), image.width * 4)
        self._images[image_id] = tight
        self.used += pixels

    def get(self, image_id: int) -> Image:
        image = self._images.get(image_id)
        if image is None:
            raise ProtocolError(f"The server referred to image {image_id}, which it never sent.")
        return image

    def remove(self, image_id: int) -> None:
        old = self._images.pop(image_id, None)
        if old is not None:
            self.used -= old.width * old.height

    def clear(self) -> None:
        self._images.clear()
        self.used = 0


def _tight_rows(image: Image) -> bytes:
    row = image.width * 4
    if image.stride == row:
        return bytes(image.pixels[:row * image.height])
    return b"".join(bytes(image.pixels[y * image.stride:y * image.stride + row])
                    for y in range(image.height))


def read_image(body: Body, offset: int, cache: ImageCache, max_pixels: int) -> Image:
    """Decode the image at ``offset``; keeps it in ``cache`` when the server says so.

    ``max_pixels`` is the largest surface's size: an image is only ever copied
    onto a surface, and a compressed one could otherwise make a few bytes
    decode into the largest screen the client accepts.
    """
    image_id, kind, flags, width, height = body.unpack("QBBII", offset)
    at = offset + 18
    if kind in (IMAGE_FROM_CACHE, IMAGE_FROM_CACHE_LOSSLESS):
        return cache.get(image_id)
    check_size(width, height)
    if width * height > max_pixels:
        raise ProtocolError(f"The server sent a {width}x{height} image, larger than every "
                            "surface it could be drawn on.")
    if kind == IMAGE_BITMAP:
        image = _bitmap(body, at, width, height)
    elif kind == IMAGE_LZ4:
        image = _lz4(body, at, width, height)
    elif kind == IMAGE_SURFACE:
        raise UnsupportedImage("surface source")
    else:
        names = {IMAGE_QUIC: "QUIC", IMAGE_LZ_RGB: "LZ", IMAGE_LZ_PLT: "LZ palette",
                 IMAGE_GLZ_RGB: "GLZ", IMAGE_JPEG: "JPEG", IMAGE_ZLIB_GLZ_RGB: "ZLIB-GLZ",
                 IMAGE_JPEG_ALPHA: "JPEG alpha"}
        if kind not in names:
            raise ProtocolError(f"The server sent an image of unknown type {kind}.")
        raise UnsupportedImage(f"{names[kind]} image")
    if flags & (IMAGE_FLAG_CACHE_ME | IMAGE_FLAG_CACHE_REPLACE_ME):
        cache.put(image_id, image)
    return image


def _bitmap(body: Body, at: int, width: int, height: int) -> Image:
    fmt, flags, x, y, stride = body.unpack("BBIII", at)
    at += 14
    if (x, y) != (width, height):
        raise ProtocolError("The server's bitmap size disagrees with its image size.")
    if flags & BITMAP_FLAG_PAL_FROM_CACHE:
        at += 8
    else:
        (palette,) = body.unpack("I", at)
        at += 4
        if palette:
            raise UnsupportedImage("palette bitmap")
    bpp = {BITMAP_FMT_32BIT: 4, BITMAP_FMT_RGBA: 4, BITMAP_FMT_24BIT: 3}.get(fmt)
    if bpp is None:
        raise UnsupportedImage(f"bitmap format {fmt}")
    if stride < width * bpp:
        raise ProtocolError("The server's bitmap rows are shorter than its width.")
    data = body.view(at, stride * height)
    if bpp == 3:
        return _from_24bit(data, width, height, stride, bool(flags & BITMAP_FLAG_TOP_DOWN))
    if flags & BITMAP_FLAG_TOP_DOWN:
        return Image(width, height, data, stride)
    row = width * 4
    flipped = b"".join(bytes(data[r * stride:r * stride + row])
                       for r in range(height - 1, -1, -1))
    return Image(width, height, flipped, row)


def _from_24bit(data: memoryview, width: int, height: int, stride: int,
                top_down: bool) -> Image:
    rows = range(height) if top_down else range(height - 1, -1, -1)
    packed = b"".join(bytes(data[r * stride:r * stride + width * 3]) for r in rows)
    out = bytearray(width * height * 4)
    out[0::4], out[1::4], out[2::4] = packed[0::3], packed[1::3], packed[2::3]
    return Image(width, height, out, width * 4)


def _lz4(body: Body, at: int, width: int, height: int) -> Image:
    (size,) = body.unpack("I", at)
    data = body.view(at + 4, size)
    if size < 2:
        raise ProtocolError("The server sent a truncated LZ4 image.")
    top_down, fmt = data[0], data[1]
    bpp = {BITMAP_FMT_32BIT: 4, BITMAP_FMT_RGBA: 4, BITMAP_FMT_24BIT: 3}.get(fmt)
    if bpp is None:
        raise UnsupportedImage(f"LZ4 format {fmt}")
    row = width * bpp
    limit = row * height
    out = bytearray()
    i = 2
    while i < size:
        if i + 4 > size:
            raise ProtocolError("The server sent a truncated LZ4 image.")
        (block,) = struct.unpack_from(">I", data, i)
        if block == 0 or i + 4 + block > size:
            raise ProtocolError("An LZ4 block runs past its image.")
        decompress_block_into(data[i + 4:i + 4 + block], out, limit)
        i += 4 + block
    if len(out) != limit:
        raise ProtocolError("The server's LZ4 image holds fewer pixels than its size.")
    if bpp == 3:
        return _from_24bit(memoryview(out), width, height, row, bool(top_down))
    if top_down:
        return Image(width, height, out, row)
    flipped = b"".join(bytes(out[r * row:(r + 1) * row]) for r in range(height - 1, -1, -1))
    return Image(width, height, flipped, row)
