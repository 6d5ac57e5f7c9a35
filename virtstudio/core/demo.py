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


def validate_fixture(path: Path) -> None:
    """Raise VirtStudioError with a plain message when ``path`` is no usable fixture.

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
    domains = 0
    try:
        for start in range(0, len(head), _CHUNK):
            parser.feed(head[start:start + _CHUNK])
        if whole:
            parser.close()
        for event, element in parser.read_events():
            if event == "start" and not root_tag:
                root_tag = element.tag
            elif event == "end" and element.tag == "domain":
                if not (element.findtext("name") or "").strip():
                    raise VirtStudioError(
                        f"The host description {name} has a machine without a name.",
                        str(path))
                domains += 1
    except ET.ParseError as exc:
        raise VirtStudioError(
            f"The host description {name} is not valid XML ({exc}).", str(path)) from None
    if root_tag != "node":
        found = f"<{root_tag}>" if root_tag else "nothing"
        raise VirtStudioError(
            f"The host description {name} must start with <node>, not {found}.", str(path))
    if whole and not domains:
        raise VirtStudioError(f"The host description {name} holds no machine.", str(path))


def demo_uri(path: Path | None = None) -> str:
    return f"test://{(path or demo_fixture_path()).resolve()}"
