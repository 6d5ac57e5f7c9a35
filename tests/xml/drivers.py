"""libvirt drivers that judge a document without a daemon.

The test driver serves in the test process.  QEMU's driver embedded in a process
(``qemu:///embed``) is a second judge, but only in a process of its own
(tests/xml/corpus_table.py): once loaded, it takes every later ``qemu:///`` URI of
that process, and qemu:///system then fails to open ("Missing URI parameter 'root'")."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from virtstudio.core.events import ensure_event_loop


def accepts(conn: libvirt.virConnect, xml: str) -> bool:
    """Whether ``conn`` defines ``xml``; what it defined is undefined again at once."""
    return refusal(conn, xml) == ""


def refusal(conn: libvirt.virConnect, xml: str) -> str:
    """The driver's reason for refusing ``xml``, or "" when it defines it."""
    try:
        dom = conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        return str(exc)
    dom.undefine()
    return ""


def defined_again(conn: libvirt.virConnect, xml: str) -> str:
    """The document as ``conn`` stores it after defining ``xml`` (then undefined)."""
    dom = conn.defineXML(xml)
    try:
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        dom.undefine()


@pytest.fixture(scope="module")
def test_driver() -> Iterator[libvirt.virConnect]:
    """A test driver of our own with no preloaded objects (test:///default has a
    machine named "test" that clashes with documents of that name)."""
    ensure_event_loop()  # also keeps libvirt from printing each refusal
    folder = Path(tempfile.mkdtemp(prefix="vstest-testdriver-"))
    try:
        node = folder / "node.xml"
        node.write_text("<node/>")
        conn = libvirt.open(f"test://{node}")
        yield conn
        conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
