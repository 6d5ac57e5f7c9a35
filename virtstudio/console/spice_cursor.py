"""The SPICE cursor channel's shapes, as the same CursorShape the VNC client produces."""

from __future__ import annotations

from collections import OrderedDict

from virtstudio.console.framebuffer import ProtocolError
from virtstudio.console.rfb_client import MAX_CURSOR, CursorShape
from virtstudio.console.spice_images import Body

MSG_INIT = 101
MSG_RESET = 102
MSG_SET = 103
MSG_MOVE = 104
MSG_HIDE = 105
MSG_TRAIL = 106
MSG_INVAL_ONE = 107
MSG_INVAL_ALL = 108

FLAG_NONE = 1
FLAG_CACHE_ME = 2
FLAG_FROM_CACHE = 4

TYPE_ALPHA = 0
TYPE_MONO = 1
TYPE_COLOR32 = 6
MAX_CACHED = 64


class CursorState:
    """Follows the server's cursor; ``shape`` is None when the cursor is hidden."""

    def __init__(self) -> None:
        self.shape: CursorShape | None = None
        self.visible = False
        self._cache: OrderedDict[int, CursorShape | None] = OrderedDict()

    def handle(self, msg_type: int, data: bytes) -> bool:
        """Apply one message; True when what the user should see changed."""
        body = Body(data)
        if msg_type == MSG_INIT:
            (visible,) = body.unpack("B", 8)
            return self._set(body, 9, bool(visible))
        if msg_type == MSG_SET:
            (visible,) = body.unpack("B", 4)
            return self._set(body, 5, bool(visible))
        if msg_type in (MSG_HIDE, MSG_RESET):
            changed = self.visible
            self.visible = False
            if msg_type == MSG_RESET:
                self._cache.clear()
            return changed
        if msg_type == MSG_INVAL_ONE:
            (unique,) = body.unpack("Q", 0)
            self._cache.pop(unique, None)
            return False
        if msg_type == MSG_INVAL_ALL:
            self._cache.clear()
            return False
        if msg_type in (MSG_MOVE, MSG_TRAIL):
            return False
        raise ProtocolError(f"Unknown SPICE cursor message {msg_type}.")

    def _set(self, body: Body, at: int, visible: bool) -> bool:
        (flags,) = body.unpack("H", at)
        self.visible = visible
        if flags & FLAG_NONE:
            self.shape = None
            return True
        unique, kind, width, height, hot_x, hot_y = body.unpack("QBHHHH", at + 2)
        if flags & FLAG_FROM_CACHE:
            if unique not in self._cache:
                raise ProtocolError("The server referred to a cursor it never sent.")
            self.shape = self._cache[unique]
            return True
        if width > MAX_CURSOR or height > MAX_CURSOR:
            raise ProtocolError(f"The server's {width}x{height} cursor is refused.")
        pixels = body.data[at + 19:]
        self.shape = _decode(kind, width, height, hot_x, hot_y, pixels)
        if flags & FLAG_CACHE_ME:
            self._cache[unique] = self.shape
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return True


def _decode(kind: int, width: int, height: int, hot_x: int, hot_y: int,
            data: bytes) -> CursorShape | None:
    if not width or not height:
        return None
    count = width * height
    mask_row = (width + 7) // 8
    if kind == TYPE_ALPHA:
        if len(data) < count * 4:
            raise ProtocolError("The server's cursor is shorter than its size.")
        return CursorShape(hot_x, hot_y, width, height, bytes(data[:count * 4]))
    if kind == TYPE_COLOR32:
        if len(data) < count * 4 + mask_row * height:
            raise ProtocolError("The server's cursor is shorter than its size.")
        out = bytearray(data[:count * 4])
        and_mask = data[count * 4:]
        for i in range(count):
            y, x = divmod(i, width)
            hidden = and_mask[y * mask_row + x // 8] & (0x80 >> (x % 8))
            out[i * 4 + 3] = 0 if hidden else 255
        return CursorShape(hot_x, hot_y, width, height, bytes(out))
    if kind == TYPE_MONO:
        if len(data) < 2 * mask_row * height:
            raise ProtocolError("The server's cursor is shorter than its size.")
        and_mask, xor_mask = data[:mask_row * height], data[mask_row * height:]
        out = bytearray(count * 4)
        for i in range(count):
            y, x = divmod(i, width)
            bit = 0x80 >> (x % 8)
            a = and_mask[y * mask_row + x // 8] & bit
            xr = xor_mask[y * mask_row + x // 8] & bit
            if a and not xr:
                continue  # transparent
            value = 255 if (xr and not a) else 0
            out[i * 4:i * 4 + 4] = bytes((value, value, value, 255))
        return CursorShape(hot_x, hot_y, width, height, bytes(out))
    return None  # colour-table cursors: the host's default cursor shows instead
