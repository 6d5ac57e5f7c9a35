"""Feeding crafted server bytes to the RFB client without a network."""

from __future__ import annotations

import asyncio
import struct
import zlib

from virtstudio.console.framebuffer import Framebuffer
from virtstudio.console.rfb_client import PIXEL_FORMAT, RfbClient


class FakeWriter:
    """Collects what the client sends."""

    def __init__(self) -> None:
        self.sent = bytearray()
        self._closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    async def wait_closed(self) -> None:
        return None

    async def drain(self) -> None:
        return None


def server_init(width: int, height: int, name: bytes = b"fake") -> bytes:
    return (struct.pack("!HH", width, height) + PIXEL_FORMAT
            + struct.pack("!I", len(name)) + name)


def greeting(width: int = 64, height: int = 48, security: bytes = b"\x01\x01") -> bytes:
    return b"RFB 003.008\n" + security + b"\x00\x00\x00\x00" + server_init(width, height)


def update(*rects: bytes) -> bytes:
    return struct.pack("!BxH", 0, len(rects)) + b"".join(rects)


def rect(x: int, y: int, w: int, h: int, encoding: int, payload: bytes) -> bytes:
    return struct.pack("!HHHHi", x, y, w, h, encoding) + payload


def zlib_payload(stream: zlib._Compress, data: bytes) -> bytes:
    body = stream.compress(data) + stream.flush(zlib.Z_SYNC_FLUSH)
    return struct.pack("!I", len(body)) + body


async def run_client(data: bytes, *, handshake: bool = True, width: int = 64, height: int = 48,
                     timeout: float = 5.0, **kwargs) -> tuple[RfbClient, FakeWriter, list]:
    """Run a client over ``data``; returns it, what it sent, and its close reasons."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    writer = FakeWriter()
    client = RfbClient(**kwargs)
    closed: list = []
    client.closed.connect(closed.append)
    if handshake:
        await asyncio.wait_for(client.handshake(reader, writer), timeout)
    else:
        client._reader, client._writer = reader, writer
        client.framebuffer = Framebuffer(width, height)
    await asyncio.wait_for(client.run(), timeout)
    return client, writer, closed
