"""Expected-XML pairs: NAME-in.xml edited must give NAME-out.xml exactly.

Run with REGENERATE_XML=1 to rewrite the expected outputs after a deliberate
change; then read the diff of tests/xml/data before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from virtstudio.xml import Node

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def check_pair(name: str, edit: Callable[[Node], object], cls: type[Node],
               source: str | None = None) -> None:
    """Apply ``edit`` to ``source`` (default ``name``)-in.xml; compare with NAME-out.xml."""
    node = cls.from_xml(read(f"{source or name}-in.xml"))
    edit(node)
    got = node.to_xml() + "\n"
    out = DATA / f"{name}-out.xml"
    if os.environ.get("REGENERATE_XML") == "1":
        out.write_text(got)
    assert got == out.read_text()
