"""Sizes as people type them ("20G", "512 MiB", "1.5T") and back."""

from __future__ import annotations

import re

from virtstudio.core.errors import VirtStudioError

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*", re.IGNORECASE)
MAX_IMAGE_BYTES = 1024**5  # qemu-img's own limits are lower for most formats


def parse_size(text: str) -> int:
    """Bytes in ``text``; raise VirtStudioError with a plain message otherwise."""
    match = _SIZE_RE.fullmatch(text or "")
    if not match:
        raise VirtStudioError(f"“{text}” is not a size; write it like 20G, 512M or 1.5T.")
    number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise VirtStudioError("A disk needs a size above zero.")
    if size > MAX_IMAGE_BYTES:
        raise VirtStudioError(f"{text} is larger than any disk image can be.")
    return size
