"""The SPICE display channel's drawing: surfaces, DRAW_COPY, DRAW_FILL, COPY_BITS, the cache.

QEMU's non-QXL displays (VGA, bochs, virtio-gpu without GL) send only these;
QXL guests with QXL drivers use more commands, which are skipped and counted
in ``unsupported`` so the UI can say the picture may be incomplete.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from virtstudio.console.framebuffer import MAX_PIXELS, Framebuffer, ProtocolError, check_size
from virtstudio.console.spice_images import Body, ImageCache, UnsupportedImage, read_image

MSG_MODE = 101
MSG_MARK = 102
MSG_RESET = 103
MSG_COPY_BITS = 104
MSG_INVAL_LIST = 105
MSG_INVAL_ALL_PIXMAPS = 106
MSG_INVAL_PALETTE = 107
MSG_INVAL_ALL_PALETTES = 108
MSG_STREAM_CREATE = 122
MSG_STREAM_DESTROY_ALL = 126
MSG_DRAW_FILL = 302
MSG_DRAW_COPY = 304
MSG_DRAW_ALPHA_BLEND = 313
MSG_SURFACE_CREATE = 314
MSG_SURFACE_DESTROY = 315
MSG_MONITORS_CONFIG = 317
MSG_DRAW_COMPOSITE = 318
MSG_STREAM_ACTIVATE_REPORT = 319
MSG_GL_SCANOUT_UNIX = 320
MSG_GL_DRAW = 321

MSGC_INIT = 101
MSGC_PREFERRED_COMPRESSION = 103

CAP_LZ4_COMPRESSION = 5
CAP_PREF_COMPRESSION = 6

COMPRESSION = {"off": 1, "lz4": 7}

SURFACE_FMT_32_XRGB = 32
SURFACE_FMT_32_ARGB = 96
SURFACE_FLAG_PRIMARY = 1
MAX_SURFACES = 64
# All surfaces together: the largest screen twice (a primary and its off-screen copies).
MAX_SURFACE_PIXELS = 2 * MAX_PIXELS

CLIP_RECTS = 1
BRUSH_NONE = 0
BRUSH_SOLID = 1
ROPD_OP_PUT = 1 << 3
RES_TYPE_PIXMAP = 1

Rect = tuple[int, int, int, int]  # x, y, w, h


def init_message(cache_pixels: int) -> bytes:
    """DISPLAY_INIT: our image cache size; a GLZ window of 0, so GLZ is never used."""
    return struct.pack("<BqBi", 1, cache_pixels, 1, 0)


class SpiceDisplay:
    """Applies display messages to surfaces; the primary surface is what the user sees."""

    def __init__(self, on_draw: Callable[[list[Rect]], None],
                 on_primary: Callable[[Framebuffer], None],
                 on_skip: Callable[[str], None] | None = None) -> None:
        self.surfaces: dict[int, Framebuffer] = {}
        self.primary_id: int | None = None
        self.cache = ImageCache()
        self.unsupported: dict[str, int] = {}
        self.marks = 0
        self._on_draw = on_draw
        self._on_primary = on_primary
        self._on_skip = on_skip

    @property
    def primary(self) -> Framebuffer | None:
        return self.surfaces.get(self.primary_id) if self.primary_id is not None else None

    def _skip(self, what: str) -> None:
        first = what not in self.unsupported
        self.unsupported[what] = self.unsupported.get(what, 0) + 1
        if first and self._on_skip is not None:
            self._on_skip(what)

    def handle(self, msg_type: int, data: bytes) -> None:
        body = Body(data)
        handler = _HANDLERS.get(msg_type)
        if handler is not None:
            handler(self, body)
        elif msg_type in (MSG_GL_SCANOUT_UNIX, MSG_GL_DRAW):
            raise ProtocolError("The display uses OpenGL scan-out, which VirtStudio's SPICE "
                                "client cannot show; open it in remote-viewer.")
        elif msg_type in (MSG_MODE, MSG_MONITORS_CONFIG, MSG_INVAL_PALETTE,
                          MSG_INVAL_ALL_PALETTES):
            return
        elif 122 <= msg_type <= 126 or msg_type in (316, MSG_STREAM_ACTIVATE_REPORT):
            self._skip("video stream")
        elif 302 <= msg_type <= MSG_DRAW_COMPOSITE:
            self._skip(f"drawing command {msg_type}")
        else:
            raise ProtocolError(f"Unknown SPICE display message {msg_type}.")

    # ---- surfaces ------------------------------------------------------------------------

    def _surface_create(self, body: Body) -> None:
        surface_id, width, height, fmt, flags = body.unpack("IIIII", 0)
        check_size(width, height)
        if fmt not in (SURFACE_FMT_32_XRGB, SURFACE_FMT_32_ARGB):
            raise ProtocolError(f"The server's surface format {fmt} is not supported.")
        if surface_id not in self.surfaces and len(self.surfaces) >= MAX_SURFACES:
            raise ProtocolError(f"The server created more than {MAX_SURFACES} surfaces.")
        primary = bool(flags & SURFACE_FLAG_PRIMARY)
        current = self.surfaces.get(surface_id)
        others = sum(fb.width * fb.height for sid, fb in self.surfaces.items()
                     if sid != surface_id)
        if others + width * height > MAX_SURFACE_PIXELS:
            raise ProtocolError(f"The server's surfaces would exceed {MAX_SURFACE_PIXELS} "
                                "pixels, which is refused.")
        if current is not None and (current.width, current.height) == (width, height):
            current.data[:] = bytes(len(current.data))
        else:
            self.surfaces[surface_id] = Framebuffer(width, height)
        if primary:
            self.primary_id = surface_id
            self._on_primary(self.surfaces[surface_id])

    def _surface_destroy(self, body: Body) -> None:
        (surface_id,) = body.unpack("I", 0)
        # The primary stays on screen until its successor exists: no black flash.
        if surface_id != self.primary_id:
            self.surfaces.pop(surface_id, None)

    def _reset(self, _body: Body) -> None:
        keep = self.primary
        self.surfaces = {} if keep is None else {self.primary_id: keep}  # type: ignore[dict-item]

    def _mark(self, _body: Body) -> None:
        self.marks += 1
        primary = self.primary
        if primary is not None:
            self._on_draw([(0, 0, primary.width, primary.height)])

    def _inval_list(self, body: Body) -> None:
        (count,) = body.unpack("H", 0)
        for i in range(count):
            kind, image_id = body.unpack("BQ", 2 + 9 * i)
            if kind == RES_TYPE_PIXMAP:
                self.cache.remove(image_id)

    def _inval_all(self, _body: Body) -> None:
        self.cache.clear()

    # ---- drawing -------------------------------------------------------------------------

    def _base(self, body: Body) -> tuple[int, Framebuffer, Rect, list[Rect], int]:
        """DisplayBase: the target surface, the box and its clip (as rectangles), end offset."""
        surface_id, top, left, bottom, right, clip_type = body.unpack("IiiiiB", 0)
        surface = self.surfaces.get(surface_id)
        if surface is None:
            raise ProtocolError(f"The server drew on surface {surface_id}, which does not exist.")
        box = (left, top, right - left, bottom - top)
        surface.check_rect(*box)
        at = 21
        clips = [box]
        if clip_type == CLIP_RECTS:
            (count,) = body.unpack("I", at)
            body.view(at + 4, 16 * count)  # present in full before anything is drawn
            clips = []
            for i in range(count):
                ctop, cleft, cbottom, cright = body.unpack("iiii", at + 4 + 16 * i)
                clipped = _intersect(box, (cleft, ctop, cright - cleft, cbottom - ctop))
                if clipped is not None:
                    clips.append(clipped)
            at += 4 + 16 * count
        return surface_id, surface, box, clips, at

    def _drawn(self, surface_id: int, clips: list[Rect]) -> None:
        if surface_id == self.primary_id and clips:
            self._on_draw(clips)

    def _draw_copy(self, body: Body) -> None:
        surface_id, surface, box, clips, at = self._base(body)
        image_at, stop, sleft, sbottom, sright, rop, _scale = body.unpack("IiiiiHB", at)
        if rop != ROPD_OP_PUT:
            self._skip(f"raster operation {rop}")
            return
        if not image_at:
            return
        try:
            largest = max(fb.width * fb.height for fb in self.surfaces.values())
            image = read_image(body, image_at, self.cache, largest)
        except UnsupportedImage as exc:
            self._skip(exc.kind)
            return
        src = (sleft, stop, sright - sleft, sbottom - stop)
        if src[2:] != box[2:]:
            self._skip("scaled copy")
            return
        if (min(src[0], src[1]) < 0 or src[0] + src[2] > image.width
                or src[1] + src[3] > image.height):
            raise ProtocolError("The server copied from outside its image.")
        for x, y, w, h in clips:
            sx, sy = src[0] + x - box[0], src[1] + y - box[1]
            start = sy * image.stride + sx * 4
            surface.put_rows(x, y, w, h, memoryview(image.pixels)[start:], image.stride)
        self._drawn(surface_id, clips)

    def _draw_fill(self, body: Body) -> None:
        surface_id, surface, _box, clips, at = self._base(body)
        (brush,) = body.unpack("B", at)
        if brush == BRUSH_NONE:
            return
        if brush != BRUSH_SOLID:
            self._skip("pattern fill")
            return
        color, rop = body.unpack("IH", at + 1)
        if rop != ROPD_OP_PUT:
            self._skip(f"raster operation {rop}")
            return
        pixel = struct.pack("<I", color & 0xFFFFFF)
        for rect in clips:
            surface.fill(*rect, pixel)
        self._drawn(surface_id, clips)

    def _copy_bits(self, body: Body) -> None:
        surface_id, surface, box, clips, at = self._base(body)
        src_x, src_y = body.unpack("ii", at)
        surface.check_rect(src_x, src_y, box[2], box[3])
        for x, y, w, h in clips:
            surface.copy_rect(src_x + x - box[0], src_y + y - box[1], x, y, w, h)
        self._drawn(surface_id, clips)


def _intersect(a: Rect, b: Rect) -> Rect | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


_HANDLERS: dict[int, Callable[[SpiceDisplay, Body], None]] = {
    MSG_SURFACE_CREATE: SpiceDisplay._surface_create,
    MSG_SURFACE_DESTROY: SpiceDisplay._surface_destroy,
    MSG_RESET: SpiceDisplay._reset,
    MSG_MARK: SpiceDisplay._mark,
    MSG_INVAL_LIST: SpiceDisplay._inval_list,
    MSG_INVAL_ALL_PIXMAPS: SpiceDisplay._inval_all,
    MSG_DRAW_COPY: SpiceDisplay._draw_copy,
    MSG_DRAW_FILL: SpiceDisplay._draw_fill,
    MSG_COPY_BITS: SpiceDisplay._copy_bits,
}
