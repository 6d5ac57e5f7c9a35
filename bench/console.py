"""Console benchmark: decode time of full 1920x1080 frames per encoding, and live latency.

Traces are recorded here: a desktop-like frame (gradient wallpaper, windows,
text-like detail) is encoded once per encoding into the exact bytes a server
sends, then decoded through the client's real read path.  With a local
libvirtd, the lab guest is booted and the time from a key press to the
updated pixels is measured.  One JSON object per line.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import struct
import sys
import time
import zlib

from tests.console.fake_server import greeting, rect, update

WIDTH, HEIGHT = 1920, 1080
FRAMES = 5


def desktop_frame(seed: int = 1) -> bytes:
    """BGRX pixels that look like a desktop: smooth wallpaper, flat windows, text rows."""
    rng = random.Random(seed)
    rows = []
    for y in range(HEIGHT):
        shade = 40 + y * 80 // HEIGHT
        rows.append(bytes((shade, shade // 2 + 30, 90, 0)) * WIDTH)
    frame = bytearray(b"".join(rows))
    for _ in range(6):
        x0, y0 = rng.randrange(0, WIDTH - 600), rng.randrange(0, HEIGHT - 400)
        w, h = rng.randrange(300, 600), rng.randrange(200, 400)
        for y in range(y0, y0 + h):
            line = bytearray(b"\xf0\xf0\xf0\x00" * w)
            if y % 18 < 12 and y > y0 + 30:  # text-like runs
                for x in range(10, w - 10, 7):
                    if rng.random() < 0.5:
                        line[x * 4:(x + 3) * 4] = b"\x20\x20\x20\x00" * 3
            frame[(y * WIDTH + x0) * 4:(y * WIDTH + x0 + w) * 4] = line
    return bytes(frame)


def _cpixels(bgrx: bytes) -> bytes:
    out = bytearray(len(bgrx) // 4 * 3)
    out[0::3], out[1::3], out[2::3] = bgrx[0::4], bgrx[1::4], bgrx[2::4]
    return bytes(out)


def encode(encoding: str, frame: bytes, frames: int = FRAMES) -> list[bytes]:
    """``frames`` updates of the full frame, with one compression stream across them."""
    z = zlib.compressobj(6)
    return [_encode_one(encoding, frame, z) for _ in range(frames)]


def _deflate(z: zlib._Compress, data: bytes) -> bytes:
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def _encode_one(encoding: str, frame: bytes, z: zlib._Compress) -> bytes:
    stride = WIDTH * 4
    if encoding == "raw":
        return update(rect(0, 0, WIDTH, HEIGHT, 0, frame))
    if encoding == "zlib":
        body = _deflate(z, frame)
        return update(rect(0, 0, WIDTH, HEIGHT, 6, struct.pack("!I", len(body)) + body))
    if encoding == "zrle":
        tiles = bytearray()
        for ty in range(0, HEIGHT, 64):
            for tx in range(0, WIDTH, 64):
                tw, th = min(64, WIDTH - tx), min(64, HEIGHT - ty)
                tile = b"".join(frame[(ty + r) * stride + tx * 4:(ty + r) * stride + (tx + tw) * 4]
                                for r in range(th))
                first = tile[:4]
                if tile == first * (tw * th):
                    tiles += b"\x01" + first[:3]
                else:
                    tiles += b"\x00" + _cpixels(tile)
        body = _deflate(z, bytes(tiles))
        return update(rect(0, 0, WIDTH, HEIGHT, 16, struct.pack("!I", len(body)) + body))
    if encoding == "tight":
        rects = []
        for y in range(0, HEIGHT, 64):  # Tight rectangles are at most 2048 wide; rows of 64
            h = min(64, HEIGHT - y)
            rgb = bytearray(_cpixels(frame[y * stride:(y + h) * stride]))
            rgb[0::3], rgb[2::3] = rgb[2::3], rgb[0::3]  # TPIXEL is R, G, B
            body = _deflate(z, bytes(rgb))
            length = len(body)
            compact = bytes([length & 0x7F | 0x80, (length >> 7) & 0x7F | 0x80, length >> 14])
            rects.append(rect(0, y, WIDTH, h, 7, b"\x00" + compact + body))
        return update(*rects)
    raise ValueError(encoding)


def decode_ms(frames: list[bytes], encoding: str) -> float:
    """Mean decode time per frame, fed frame by frame as a socket would deliver them."""
    from tests.console.fake_server import FakeWriter
    from virtstudio.console.rfb_client import RfbClient

    async def go() -> float:
        reader = asyncio.StreamReader(limit=64 << 20)
        reader.feed_data(greeting(WIDTH, HEIGHT))
        client = RfbClient(encoding=encoding)
        await client.handshake(reader, FakeWriter())
        loop = asyncio.get_running_loop()
        pending = list(frames)
        done = asyncio.Event()

        def next_frame(_rects: object = None) -> None:
            if pending:
                reader.feed_data(pending.pop(0))
            else:
                loop.call_soon(done.set)

        client.updated.connect(next_frame)
        task = asyncio.create_task(client.run())
        start = time.perf_counter()
        next_frame()
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - start
        task.cancel()
        if client.updates != len(frames):
            raise SystemExit(f"{encoding}: trace did not decode")
        return elapsed * 1000 / len(frames)

    return asyncio.run(go())


def lz4_runs(frame: bytes) -> bytes:
    """One LZ4 block for ``frame``: a row equal to the one above is one match, runs of one
    colour are matches of the pixel before, everything else literals (a valid LZ4 stream)."""
    stride = WIDTH * 4
    out = bytearray()
    literals = bytearray()

    def length(n: int) -> bytes:
        return bytes([255] * (n // 255) + [n % 255])

    def sequence(offset: int, match: int) -> None:
        lit = len(literals)
        token = (min(lit, 15) << 4) | min(match - 4, 15)
        out.append(token)
        if lit >= 15:
            out.extend(length(lit - 15))
        out.extend(literals)
        literals.clear()
        out.extend(struct.pack("<H", offset))
        if match - 4 >= 15:
            out.extend(length(match - 4 - 15))

    for y in range(HEIGHT):
        row = frame[y * stride:(y + 1) * stride]
        if y and row == frame[(y - 1) * stride:y * stride] and y < HEIGHT - 1:
            sequence(stride, stride)
            continue
        x = 0
        while x < WIDTH:
            pixel = row[x * 4:x * 4 + 4]
            run = 1
            while x + run < WIDTH and row[(x + run) * 4:(x + run) * 4 + 4] == pixel:
                run += 1
            literals.extend(pixel)
            if run > 2 and (y < HEIGHT - 1 or x + run < WIDTH):
                sequence(4, (run - 1) * 4)
            else:
                literals.extend(pixel * (run - 1))
            x += run
    token_lit = len(literals)
    out.append(min(token_lit, 15) << 4)
    if token_lit >= 15:
        out.extend(length(token_lit - 15))
    out.extend(literals)
    return bytes(out)


def spice_trace(kind: str, frame: bytes, frames: int = 3) -> list[bytes]:
    """DRAW_COPY messages of the full frame, as QEMU sends them with that compression."""
    from tests.console.spice_fake_server import base, bitmap_image, draw_copy, lz4_image

    if kind == "spice-bitmap":
        image = bitmap_image(WIDTH, HEIGHT, frame)
    else:
        image = lz4_image(WIDTH, HEIGHT, [lz4_runs(frame)])
    return [draw_copy(base(0, 0, WIDTH, HEIGHT), image, (0, 0, WIDTH, HEIGHT))] * frames


def spice_decode_ms(messages: list[bytes]) -> float:
    """Mean time per frame to read each message off a stream and draw it."""
    from tests.console.fake_server import FakeWriter
    from virtstudio.console.spice_display import SpiceDisplay
    from virtstudio.console.spice_wire import SpiceChannel

    async def go() -> float:
        reader = asyncio.StreamReader(limit=64 << 20)
        channel = SpiceChannel(reader, FakeWriter(), 2)
        drawn: list[object] = []
        display = SpiceDisplay(drawn.append, lambda fb: None)
        display.handle(314, struct.pack("<IIIII", 0, WIDTH, HEIGHT, 32, 1))
        start = time.perf_counter()
        for message in messages:
            reader.feed_data(message)
            display.handle(*await channel.receive())
        elapsed = time.perf_counter() - start
        if len(drawn) != len(messages) or display.unsupported:
            raise SystemExit("spice: trace did not decode")
        return elapsed * 1000 / len(messages)

    return asyncio.run(go())


def live_latency() -> dict:
    try:
        import libvirt

        from tests.lab.daemon import SYSTEM_URI
        from tests.lab.guest import build_lab_guest, lab_domain_xml
        from virtstudio.console.local import open_graphics_socket
        from virtstudio.console.rfb_client import RfbClient
        conn = libvirt.open(SYSTEM_URI)
    except Exception as exc:
        return {"encoding": "zrle", "live": False, "reason": f"no local libvirtd: {exc}"}
    name = f"vstest-bench-console-{os.getpid()}"
    dom = conn.createXML(lab_domain_xml(name, build_lab_guest(), graphics=("vnc",)), 0)
    try:
        time.sleep(12)  # boot to the prompt

        async def measure() -> list[float]:
            client = RfbClient(encoding="zrle")
            await client.connect_socket(open_graphics_socket(dom))
            task = asyncio.create_task(client.run())
            await client.wait_update(10)
            await asyncio.sleep(1.0)
            fb = client.framebuffer
            stride = fb.stride

            def prompt_glyphs() -> bytes:
                # The upper 12 pixel rows of the last text row: glyphs, not the underline
                # cursor, so a blink does not count as the key's effect.
                rows = [r for r in range(fb.height // 16)
                        if bytes(fb.data[r * 16 * stride:(r + 1) * 16 * stride]).strip(b"\0")]
                top = rows[-1] * 16 if rows else 0
                return bytes(fb.data[top * stride:(top + 12) * stride])

            def server_glyphs() -> bytes:
                from PySide6.QtGui import QImage

                stream = dom.connect().newStream(0)
                dom.screenshot(stream, 0)
                chunks: list[bytes] = []
                stream.recvAll(lambda _s, d, acc: acc.append(d) or len(d), chunks)
                stream.finish()
                img = QImage.fromData(b"".join(chunks)).convertToFormat(
                    QImage.Format.Format_RGB32)
                data = bytes(img.constBits())[:img.sizeInBytes()]
                rows = [r for r in range(img.height() // 16)
                        if data[r * 16 * stride:(r + 1) * 16 * stride].strip(b"\0\xff")]
                top = rows[-1] * 16 if rows else 0
                return data[top * stride:(top + 12) * stride]

            # The server's own latency: key press until QEMU's display surface changes.
            server = []
            for _ in range(6):
                await asyncio.sleep(0.4)
                before = await asyncio.to_thread(server_glyphs)
                start = time.perf_counter()
                client.key_event(True, 0x61, 0x1E)
                client.key_event(False, 0x61, 0x1E)
                await client.drain()
                while await asyncio.to_thread(server_glyphs) == before:
                    pass
                server.append((time.perf_counter() - start) * 1000)
            self_server.extend(server)

            samples = []
            for _ in range(12):
                await asyncio.sleep(0.4)  # let the server's refresh back off, as when idle
                before = prompt_glyphs()
                start = time.perf_counter()
                client.key_event(True, 0x61, 0x1E)
                client.key_event(False, 0x61, 0x1E)
                await client.drain()
                while prompt_glyphs() == before:
                    await client.wait_update(5)
                samples.append((time.perf_counter() - start) * 1000)
            for _ in range(18):  # erase what was typed
                client.key_event(True, 0xFF08, 0x0E)
                client.key_event(False, 0xFF08, 0x0E)
            await client.drain()
            task.cancel()
            return samples

        self_server: list[float] = []
        samples = asyncio.run(measure())
        client_ms = statistics.median(samples)
        server_ms = statistics.median(self_server)
        return {"encoding": "zrle", "live": True, "latency_ms": round(client_ms, 1),
                "latency_max_ms": round(max(samples), 1),
                "server_latency_ms": round(server_ms, 1),
                "over_server_ms": round(client_ms - server_ms, 1), "qemu_refresh_ms": 30}
    finally:
        dom.destroy()


def main() -> int:
    frame = desktop_frame()
    for encoding in ("raw", "zlib", "zrle", "tight"):
        frames = encode(encoding, frame)
        ms = decode_ms(frames, encoding)
        print(json.dumps({"encoding": encoding, "width": WIDTH, "height": HEIGHT,
                          "ms_per_frame": round(ms, 2),
                          "bytes_per_frame": len(frames[-1])}), flush=True)
    for kind in ("spice-bitmap", "spice-lz4"):
        messages = spice_trace(kind, frame)
        print(json.dumps({"encoding": kind, "width": WIDTH, "height": HEIGHT,
                          "ms_per_frame": round(spice_decode_ms(messages), 2),
                          "bytes_per_frame": len(messages[-1])}), flush=True)
    if "--no-live" not in sys.argv:
        print(json.dumps(live_latency()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
