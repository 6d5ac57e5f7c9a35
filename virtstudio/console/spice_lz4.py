"""LZ4 block decoding for SPICE's LZ4 images, in Python and bounded.

SPICE sends an LZ4 image as a series of blocks compressed in one stream:
later blocks may copy from the output of earlier ones, so all blocks decode
into one growing buffer.  Output never grows past ``limit`` and a match may
only reach back into bytes already produced, whatever the input says.
"""

from __future__ import annotations

from virtstudio.console.framebuffer import ProtocolError

MIN_MATCH = 4


def _bad(why: str) -> ProtocolError:
    return ProtocolError(f"The server sent a damaged LZ4 image ({why}).")


def decompress_block_into(src: bytes | memoryview, out: bytearray, limit: int) -> None:
    """Append the decompressed ``src`` block to ``out``, which never exceeds ``limit`` bytes."""
    # One flat loop with locals only: per-sequence overhead is what a Python decoder costs.
    src = bytes(src)
    n = len(src)
    i = 0
    size = len(out)
    if n == 0:
        raise _bad("an empty block")
    while True:
        token = src[i]
        i += 1
        literals = token >> 4
        if literals == 15:
            while True:
                if i >= n:
                    raise _bad("a length runs past the block")
                byte = src[i]
                i += 1
                literals += byte
                if byte != 255:
                    break
        if literals:
            end = i + literals
            if end > n:
                raise _bad("literals run past the block")
            size += literals
            if size > limit:
                raise _bad("more pixels than the image holds")
            out += src[i:end]
            i = end
        if i == n:
            return  # the last sequence has literals only
        if i + 2 > n:
            raise _bad("a match offset runs past the block")
        offset = src[i] | (src[i + 1] << 8)
        i += 2
        if offset == 0 or offset > size:
            raise _bad("a match reaches before the start")
        match = token & 15
        if match == 15:
            while True:
                if i >= n:
                    raise _bad("a length runs past the block")
                byte = src[i]
                i += 1
                match += byte
                if byte != 255:
                    break
        match += MIN_MATCH
        start = size - offset
        size += match
        if size > limit:
            raise _bad("more pixels than the image holds")
        if match <= offset:
            out += out[start:start + match]
        else:  # the match overlaps what it writes: a repeating pattern
            out += (out[start:] * (match // offset + 1))[:match]
        if i >= n:
            raise _bad("the block ends after a match")
