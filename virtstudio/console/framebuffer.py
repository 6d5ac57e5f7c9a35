"""The guest's screen as 32-bit pixels in memory, in the layout Qt paints directly.

Pixels are stored little-endian B, G, R, X: what QImage.Format_RGB32 reads on
x86 and what the client asks VNC servers to send, so decoded rows are copied
in whole slices, never pixel by pixel.
"""

from __future__ import annotations

from virtstudio.core.errors import VirtStudioError

BYTES_PER_PIXEL = 4
# A hostile server may announce any size; refuse what no real screen needs.
MAX_WIDTH = 8192
MAX_HEIGHT = 8192
MAX_PIXELS = 8192 * 4608


class ProtocolError(VirtStudioError):
    """The server sent something the protocol does not allow."""


def check_size(width: int, height: int) -> None:
    if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT
            and width * height <= MAX_PIXELS):
        raise ProtocolError(f"The server asked for a {width}x{height} screen, which is "
                            f"refused (at most {MAX_WIDTH}x{MAX_HEIGHT}).")


class Framebuffer:
    def __init__(self, width: int, height: int) -> None:
        check_size(width, height)
        self.width = width
        self.height = height
        self.stride = width * BYTES_PER_PIXEL
        self.data = bytearray(self.stride * height)

    def resize(self, width: int, height: int) -> None:
        check_size(width, height)
        self.width = width
        self.height = height
        self.stride = width * BYTES_PER_PIXEL
        self.data = bytearray(self.stride * height)

    def check_rect(self, x: int, y: int, w: int, h: int) -> None:
        if x < 0 or y < 0 or w < 0 or h < 0 or x + w > self.width or y + h > self.height:
            raise ProtocolError(f"The server sent a rectangle {w}x{h}+{x}+{y} outside the "
                                f"{self.width}x{self.height} screen.")

    def put_rows(self, x: int, y: int, w: int, h: int, pixels: bytes | memoryview,
                 src_stride: int | None = None) -> None:
        """Copy ``h`` rows of ``w`` BGRX pixels into the rectangle at (x, y)."""
        row_bytes = w * BYTES_PER_PIXEL
        src_stride = src_stride or row_bytes
        view = memoryview(pixels)
        if len(view) < src_stride * (h - 1) + row_bytes and h:
            raise ProtocolError("The server sent fewer pixels than the rectangle needs.")
        data = self.data
        offset = y * self.stride + x * BYTES_PER_PIXEL
        if x == 0 and w == self.width and src_stride == row_bytes:
            data[offset:offset + row_bytes * h] = view[:row_bytes * h]
            return
        for row in range(h):
            start = row * src_stride
            data[offset:offset + row_bytes] = view[start:start + row_bytes]
            offset += self.stride

    def fill(self, x: int, y: int, w: int, h: int, pixel: bytes) -> None:
        """Fill a rectangle with one 4-byte BGRX pixel."""
        row = pixel * w
        offset = y * self.stride + x * BYTES_PER_PIXEL
        for _ in range(h):
            self.data[offset:offset + len(row)] = row
            offset += self.stride

    def copy_rect(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        rows = [bytes(self.data[(src_y + r) * self.stride + src_x * 4:
                                (src_y + r) * self.stride + (src_x + w) * 4]) for r in range(h)]
        for r, line in enumerate(rows):
            start = (y + r) * self.stride + x * 4
            self.data[start:start + len(line)] = line

    def rect_bytes(self, x: int, y: int, w: int, h: int) -> bytes:
        return b"".join(bytes(self.data[(y + r) * self.stride + x * 4:
                                        (y + r) * self.stride + (x + w) * 4]) for r in range(h))
