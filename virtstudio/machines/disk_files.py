"""Which image files a host's machines use, backing chains included.

Snapshot and clone operations must never write to, merge into or remove a
file that another machine (or another snapshot) still reads.  Who reads what
comes from the host's usage graph (storage/usage_graph.py), read fresh on a
job or worker thread.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import qemu_img, usage_graph
from virtstudio.xml import Domain as DomainXML
from virtstudio.xml.base import remove_element

# Names the app gives to new machines and snapshots: safe as file name parts too.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = ("Use letters, digits, dots, dashes or underscores (no spaces or slashes), "
             "starting with a letter or digit, at most 64 characters.")


def name_problem(name: str, what: str) -> str:
    """What is wrong with ``name`` for a new ``what``; "" when nothing is."""
    if not name:
        return f"Enter a name for the {what}."
    if "/" in name or any(c.isspace() for c in name):
        return f"A {what} name cannot contain spaces or slashes."
    if not NAME_RE.fullmatch(name):
        return NAME_RULE
    return ""


def require_local(host_uri: str, what: str) -> None:
    """Image files are handled with qemu-img on this computer: refuse remote hosts."""
    parsed = uri_mod.parse(host_uri)
    if parsed.is_remote:
        raise VirtStudioError(f"{what} works for machines on this computer only; "
                              f"{parsed.host or host_uri} is a remote host.")


def disk_chain_from_xml(disk: ET.Element) -> list[str]:
    """A <disk>'s source file, then its backing files as libvirt reports them."""
    files: list[str] = []
    node: ET.Element | None = disk
    while node is not None:
        src = node.find("source")
        if src is not None and src.get("file"):
            files.append(src.get("file", ""))
        node = node.find("backingStore")
    return files


def disk_format(disk: ET.Element) -> str:
    """The format a <disk> declares (its <driver type>); raw when it declares none."""
    driver = disk.find("driver")
    return (driver.get("type") if driver is not None else None) or "raw"


def image_chain(path: str, fmt: str) -> list[str]:
    """``path`` read as ``fmt`` and every backing file below it; just ``path`` when unreadable."""
    try:
        return [item.path for item in qemu_img.chain(Path(path), fmt or "raw")] or [path]
    except (VirtStudioError, ValueError):
        return [path]


def files_of_other_domains(conn: libvirt.virConnect, exclude_uuid: str) -> dict[str, list[str]]:
    """Map each file other machines read (backing files too, running or shut off, and
    the files their snapshots need) to those machines' names: the host's usage graph."""
    return usage_graph.build(conn).files_of_machines(exclude_uuid)


def unique_path(path: Path) -> Path:
    """``path``, or the first ``stem-N.suffix`` beside it that does not exist yet."""
    if not path.exists():
        return path
    for n in range(1, 1000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise VirtStudioError(f"No free file name like {path.name} in {path.parent}.")


def repoint_disks(xml: str, new_sources: dict[str, str],
                  formats: dict[str, str] | None = None) -> str:
    """``xml`` with each named disk target reading the given file (qcow2 unless told)."""
    domain = DomainXML.from_xml(xml)
    for disk in domain.devices.disks if domain.devices is not None else ():
        dev = disk.target_dev or ""
        if dev not in new_sources:
            continue
        source = disk.path_element("source", create=True)
        assert source is not None
        source.attrib.clear()  # the old file's, pool's or host's: none of them applies
        disk.source_file = new_sources[dev]
        disk.type = "file"
        if disk.driver_name is None:
            disk.driver_name = "qemu"
        disk.driver_type = (formats or {}).get(dev, "qcow2")
        for backing in disk.element.findall("backingStore"):
            remove_element(backing)
    return domain.to_xml()
