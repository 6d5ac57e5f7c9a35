"""The built-in demo host: libvirt's test driver on a fixture the project ships."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from virtstudio.core.errors import VirtStudioError

DEMO_NAME = "Demo host"
_RELATIVE = Path("demo") / "demo-host.xml"


def resources_dir() -> Path:
    """resources/ beside the package in a checkout, else the installed share dir."""
    here = Path(__file__).resolve().parents[2] / "resources"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "virtstudio"


def demo_fixture_path() -> Path:
    return resources_dir() / _RELATIVE


def validate_fixture(path: Path) -> None:
    """Raise VirtStudioError with a plain message when ``path`` is no usable fixture."""
    name = path.name
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise VirtStudioError(f"The host description {name} does not exist.", str(path)) from None
    except OSError as exc:
        raise VirtStudioError(f"The host description {name} cannot be read: {exc.strerror}.",
                              str(path)) from None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise VirtStudioError(
            f"The host description {name} is not valid XML ({exc}).", str(path)) from None
    if root.tag != "node":
        raise VirtStudioError(
            f"The host description {name} must start with <node>, not <{root.tag}>.", str(path))
    domains = root.findall("domain")
    if not domains or any(not (d.findtext("name") or "").strip() for d in domains):
        raise VirtStudioError(
            f"The host description {name} holds no machine with a name.", str(path))


def demo_uri(path: Path | None = None) -> str:
    return f"test://{(path or demo_fixture_path()).resolve()}"
