"""Sizes written as a number and a unit (``<memory unit='KiB'>``, ``<capacity unit='bytes'>``)."""

from __future__ import annotations

from virtstudio.xml.base import INT, Attr, Node, Text

# libvirt's units: powers of 1024 for the short and *iB forms, 1000 for *B.
_BYTES = {
    "b": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
    "p": 1024**5, "pib": 1024**5, "pb": 1000**5,
    "e": 1024**6, "eib": 1024**6, "eb": 1000**6,
}


class Amount(Node):
    """A number with a ``unit`` attribute; ``default_unit`` is what an absent unit means."""

    DEFAULT_UNIT = "bytes"
    value = Text("", INT)
    unit = Attr("unit")

    def _bytes(self) -> int | None:
        value = self.value
        if value is None:
            return None
        return value * _BYTES.get((self.unit or self.DEFAULT_UNIT).lower(), 1)

    @property
    def bytes(self) -> int | None:
        return self._bytes()

    @bytes.setter
    def bytes(self, count: int) -> None:
        self.value = count
        self.unit = "bytes"

    @property
    def kib(self) -> int | None:
        count = self._bytes()
        return None if count is None else count // 1024

    @kib.setter
    def kib(self, count: int) -> None:
        """Exactly ``count`` KiB: the other attributes (dumpCore, slots) stay."""
        self.value = count
        self.unit = "KiB"


class MemoryAmount(Amount):
    """``<memory>``, ``<currentMemory>``, ``<maxMemory>``: KiB unless a unit says otherwise."""

    DEFAULT_UNIT = "KiB"
    dump_core = Attr("dumpCore")  # on/off
    slots = Attr("slots", int)
