"""The built-in demo host: libvirt's test driver on a fixture the project ships."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

DEMO_NAME = "Demo host"
_RELATIVE = Path("demo") / "demo-host.xml"


def resources_dir() -> Path:
    """The package's resources (demo fixture, icons), wherever the package is installed.

    A real directory, not just a Traversable: libvirt's test driver opens the
    fixture by its path.  Wheels and the Debian package install unzipped.
    """
    found = resources.files("virtstudio") / "resources"
    if not isinstance(found, Path):
        raise VirtStudioError("VirtStudio's resources are not in a directory on disk; "
                              "install the package unzipped.")
    return found


def demo_fixture_path() -> Path:
    return resources_dir() / _RELATIVE


_FULL_CHECK_LIMIT = 1 << 20
_CHUNK = 1 << 16


def _local(tag: str) -> str:
    """An element's name without its namespace, as libvirt compares root elements."""
    return tag.rpartition("}")[2]


def validate_fixture(path: Path) -> None:
    """Raise VirtStudioError with a plain message when ``path`` is no usable fixture.

    Only what libvirt's test driver itself refuses is refused here, in plainer
    words: a missing or empty file, XML that is not well-formed, a root other
    than <node>, a machine written inline without a name.  Machines are the
    <domain> children of <node> only (a network's <domain name=...> or an
    element of that name inside metadata is no machine), and one given as
    <domain file=...> is read by libvirt from its own file.

    Files up to 1 MiB (the demo host) are checked whole; larger generated hosts
    only for their start, leaving the rest to libvirt: one long parse here would
    hold the GIL and stall the window.
    """
    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(_FULL_CHECK_LIMIT + 1)
    except FileNotFoundError:
        raise VirtStudioError(f"The host description {name} does not exist.", str(path)) from None
    except OSError as exc:
        raise VirtStudioError(f"The host description {name} cannot be read: {exc.strerror}.",
                              str(path)) from None
    if not head.strip():
        raise VirtStudioError(f"The host description {name} is empty.", str(path))
    whole = len(head) <= _FULL_CHECK_LIMIT
    if not whole:
        head = head[:_CHUNK]
    parser = ET.XMLPullParser(events=("start", "end"))
    root_tag = ""
    depth = 0
    try:
        for start in range(0, len(head), _CHUNK):
            parser.feed(head[start:start + _CHUNK])
        if whole:
            parser.close()
        for event, element in parser.read_events():
            if event == "start":
                depth += 1
                if not root_tag:
                    root_tag = _local(element.tag)
                continue
            depth -= 1
            # libvirt reads machines from /node/domain: direct children, no namespace.
            if depth == 1 and element.tag == "domain" and element.get("file") is None:
                name_element = element.find("name")
                # libvirt takes the name as written (spaces too); only none at all is refused.
                if name_element is None or not name_element.text:
                    raise VirtStudioError(
                        f"The host description {name} has a machine without a name.",
                        str(path))
    except ET.ParseError as exc:
        raise VirtStudioError(
            f"The host description {name} is not valid XML ({exc}).", str(path)) from None
    if root_tag != "node":
        found = f"<{root_tag}>" if root_tag else "nothing"
        raise VirtStudioError(
            f"The host description {name} must start with <node>, not {found}.", str(path))


def demo_uri(path: Path | None = None) -> str:
    return f"test://{(path or demo_fixture_path()).resolve()}"
