"""Real libvirt documents written by others, to check that our edits keep what they hold.

Two published source archives supply them: libvirt 9.0's own expected outputs
(tests/qemuxml2xmloutdata, the version Debian 12 ships) and virt-manager's
tests/data/xmlparse documents.  Both come from the Debian archive, are checked
against their published SHA-256, and are cached under ``.cache/xml-corpus`` in the
checkout; nothing of them is committed.

Only regular ``*.xml`` members under the named folder are read, each at most
``MAX_DOCUMENT`` bytes; member names never become paths (the cache holds one file per
archive, written by us).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("VIRTSTUDIO_XML_CORPUS", REPO / ".cache" / "xml-corpus"))
MAX_DOCUMENT = 1 << 20  # the largest corpus document is about 20 KiB
MAX_ARCHIVE = 64 << 20
_DEBIAN = "http://deb.debian.org/debian/pool/main"


@dataclass(frozen=True)
class CorpusSource:
    name: str
    url: str
    sha256: str
    folder: str  # the archive member folder whose *.xml files are the documents


SOURCES = (
    CorpusSource("libvirt-9.0.0",
                 f"{_DEBIAN}/libv/libvirt/libvirt_9.0.0.orig.tar.xz",
                 "deca5cff1b7baac297bca9663907c61f71a47183371dc7ac019c107806d5435a",
                 "libvirt-9.0.0/tests/qemuxml2xmloutdata/"),
    CorpusSource("virt-manager-5.0.0",
                 f"{_DEBIAN}/v/virt-manager/virt-manager_5.0.0.orig.tar.xz",
                 "bc89ae46e0c997bd754ed62a419ca39c6aadec27e3d8b850cea5282f0083f84a",
                 "virt-manager-5.0.0/tests/data/xmlparse/"),
)


@dataclass(frozen=True)
class CorpusDocument:
    source: str
    name: str  # the file name inside the source's folder
    kind: str  # the root element: domain, pool, volume, network, ...
    xml: str

    @property
    def label(self) -> str:
        return f"{self.source}/{self.name}"


class CorpusUnavailable(RuntimeError):
    """The archives could not be fetched or failed their checksum."""


def _download(source: CorpusSource) -> bytes:
    try:
        with urllib.request.urlopen(source.url, timeout=120) as reply:
            data = reply.read(MAX_ARCHIVE + 1)
    except OSError as exc:
        raise CorpusUnavailable(f"could not fetch {source.url}: {exc}") from exc
    if len(data) > MAX_ARCHIVE:
        raise CorpusUnavailable(f"{source.url} is larger than {MAX_ARCHIVE} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise CorpusUnavailable(f"{source.url} has SHA-256 {digest}, expected {source.sha256}")
    return data


def _members(archive: bytes, folder: str) -> dict[str, str]:
    documents: dict[str, str] = {}
    with tarfile.open(fileobj=lzma.LZMAFile(_BytesReader(archive)), mode="r|") as tar:
        for member in tar:
            if not (member.isfile() and member.name.startswith(folder)
                    and member.name.endswith(".xml")):
                continue
            name = member.name[len(folder):]
            if "/" in name or member.size > MAX_DOCUMENT:
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                documents[name] = handle.read(MAX_DOCUMENT).decode()
    return documents


class _BytesReader:
    """A minimal readable file over bytes (what lzma.LZMAFile needs)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._at + size)
        chunk = self._data[self._at:end].tobytes()
        self._at = end
        return chunk

    def readable(self) -> bool:
        return True


def _cached(source: CorpusSource) -> dict[str, str]:
    """The source's documents by file name, from the cache or fetched once."""
    path = CACHE / f"{source.name}-{source.sha256[:12]}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    documents = _members(_download(source), source.folder)
    if not documents:
        raise CorpusUnavailable(f"{source.url} holds no documents under {source.folder}")
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_text(json.dumps(documents, sort_keys=True))
    partial.replace(path)
    return documents


def _root_kind(xml: str) -> str:
    try:
        root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False,
                                                             no_network=True))
    except etree.XMLSyntaxError:
        return ""
    return etree.QName(root).localname if isinstance(root.tag, str) else ""


def documents(kind: str | None = None) -> list[CorpusDocument]:
    """Every corpus document (of one root kind when ``kind`` is given), in a stable order."""
    found = [CorpusDocument(source.name, name, _root_kind(xml), xml)
             for source in SOURCES for name, xml in sorted(_cached(source).items())]
    return [d for d in found if d.kind and (kind is None or d.kind == kind)]


# ---- comparing two documents -----------------------------------------------------------

def _steps(element: etree._Element) -> Iterator[tuple[str, etree._Element]]:
    """Each child element with a path step that names it by tag and position among its
    same-tag siblings, e.g. ``disk[2]``: position, not content, so a changed attribute
    shows as a change of that element rather than as one lost and one new."""
    seen: dict[str, int] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        seen[child.tag] = seen.get(child.tag, 0) + 1
        yield f"{_tag(child.tag)}[{seen[child.tag]}]", child


def _tag(tag: str) -> str:
    qname = etree.QName(tag)
    return f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname


def flatten(xml: str | bytes) -> dict[str, str]:
    """Every element, attribute and text of a document as path -> value.

    Paths look like ``/domain/devices/disk[2]/driver/@cache``; element paths map to
    their stripped text, attribute paths to the attribute's value; each element's
    namespace prefix is recorded as ``path/#prefix`` so a rewritten prefix counts."""
    data = xml.encode() if isinstance(xml, str) else xml
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    flat: dict[str, str] = {}

    def walk(path: str, element: etree._Element) -> None:
        flat[path] = (element.text or "").strip()
        if element.prefix:
            flat[f"{path}/#prefix"] = element.prefix
        for name, value in element.attrib.items():
            flat[f"{path}/@{_tag(name)}"] = value
        for step, child in _steps(element):
            walk(f"{path}/{step}", child)

    walk(f"/{_tag(root.tag)}", root)
    return flat


@dataclass(frozen=True)
class Difference:
    path: str
    before: str | None  # None: not there before
    after: str | None  # None: gone after

    def __str__(self) -> str:
        return f"{self.path}: {self.before!r} -> {self.after!r}"


def differences(before: str | bytes, after: str | bytes) -> list[Difference]:
    """What changed between two documents, path by path (see ``flatten``)."""
    old, new = flatten(before), flatten(after)
    return [Difference(p, old.get(p), new.get(p)) for p in sorted(old.keys() | new.keys())
            if old.get(p) != new.get(p)]


def _step_matches(pattern: str, step: str) -> bool:
    if pattern == "*":
        return not step.startswith(("@", "#"))
    if "[" in pattern:
        return pattern == step
    return step.split("[", 1)[0] == pattern


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` is the element or attribute ``pattern`` names, or lies inside it.

    Steps are compared one by one: a step without an index (``disk``) matches every
    index (``disk[2]``), ``*`` matches any element, ``@name`` one attribute."""
    wanted, steps = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(steps) >= len(wanted) and all(
        _step_matches(w, s) for w, s in zip(wanted, steps, strict=False))


def outside(changes: list[Difference], *allowed: str) -> list[Difference]:
    """The changes that lie outside every ``allowed`` pattern (see ``matches``)."""
    return [c for c in changes if not any(matches(p, c.path) for p in allowed)]
