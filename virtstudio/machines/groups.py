"""Tags and folders that group machines, kept in the domain's own metadata.

They live under VirtStudio's XML namespace in ``<metadata>``, written with
``virDomainSetMetadata``, so virsh, other managers and migrations keep them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.xml import Domain as DomainXML
from virtstudio.xml import XMLError, make
from virtstudio.xml.metadata import GROUPS_NS, GroupsEntry, Tag, metadata_entry

NAMESPACE = GROUPS_NS
PREFIX = "virtstudio"
_TAG_RE = re.compile(r"[\w.+-]{1,40}")
_FOLDER_RE = re.compile(r"[\w.+-]+(/[\w.+-]+)*")


@dataclass(frozen=True)
class Groups:
    folder: str = ""
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the machine list shows them: ``prod/eu  #web #db``."""
        return "  ".join(x for x in (self.folder, " ".join(f"#{t}" for t in self.tags)) if x)

    @property
    def empty(self) -> bool:
        return not self.folder and not self.tags

    def matches(self, token: str) -> bool | None:
        """Whether a ``tag:x`` or ``folder:x`` filter token matches; None for other tokens."""
        kind, sep, value = token.partition(":")
        if not sep or kind not in ("tag", "folder"):
            return None
        value = value.casefold()
        if kind == "tag":
            return any(t.casefold() == value for t in self.tags)
        folder = self.folder.casefold()
        # A folder filter also finds what is filed in its sub-folders.
        return bool(value) and (folder == value or folder.startswith(value.rstrip("/") + "/"))


    def in_folder(self, folder: str) -> bool:
        """Whether the machine is filed in ``folder`` or one of its sub-folders."""
        return self.folder == folder or self.folder.startswith(folder + "/")


NO_GROUPS = Groups()


@dataclass(frozen=True)
class FolderTree:
    """The folders machines are filed in, as a tree: ``children[""]`` are the top ones."""

    children: dict[str, list[str]]
    counts: dict[str, int]  # machines in a folder and its sub-folders

    @staticmethod
    def name(path: str) -> str:
        return path.rpartition("/")[2]

    @staticmethod
    def parent(path: str) -> str:
        return path.rpartition("/")[0]


def folder_tree(domains: Iterable[Domain]) -> FolderTree:
    """Every folder and its ancestors, children sorted by name, with machine counts."""
    counts: dict[str, int] = {}
    for domain in domains:
        folder = groups_of(domain).folder
        while folder:
            counts[folder] = counts.get(folder, 0) + 1
            folder = FolderTree.parent(folder)
    children: dict[str, list[str]] = {"": []}
    for path in counts:
        children.setdefault(path, [])
        children.setdefault(FolderTree.parent(path), []).append(path)
    for paths in children.values():
        paths.sort(key=lambda p: (FolderTree.name(p).casefold(), p))
    return FolderTree(children, counts)


@functools.lru_cache(maxsize=16384)
def _parse(xml: str) -> Groups:
    if NAMESPACE not in xml:
        return NO_GROUPS  # most machines: no parse at all
    try:
        entry = metadata_entry(DomainXML.from_xml(xml), NAMESPACE, GroupsEntry)
    except XMLError:
        return NO_GROUPS
    if entry is None:
        return NO_GROUPS
    folder = (entry.folder or "").strip()
    tags = tuple(t.text.strip() for t in entry.tags if t.text and t.text.strip())
    return Groups(folder, tags)


def groups_in_xml(xml: str) -> Groups:
    """The tags and folder a domain document holds."""
    return _parse(xml)


def groups_of(domain: Domain) -> Groups:
    """The domain's tags and folder, from its cached XML (no libvirt call)."""
    return _parse(domain.xml)


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags as typed: separated by commas or spaces, duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for part in re.split(r"[,\s]+", text.strip()):
        if part:
            seen.setdefault(part, None)
    return tuple(seen)


def check_groups(folder: str, tags_text: str) -> str:
    """What is wrong with a folder and tags as typed, in plain words; "" when nothing is."""
    folder = folder.strip()
    if folder and not _FOLDER_RE.fullmatch(folder):
        return ("A folder is made of letters, digits, dots, dashes or underscores, "
                "with / between levels (for example prod/web).")
    for tag in parse_tags(tags_text):
        if not _TAG_RE.fullmatch(tag):
            return (f"“{tag}” is not a tag: use up to 40 letters, digits, dots, dashes or "
                    "underscores; separate tags with commas or spaces.")
    return ""


def groups_xml(groups: Groups) -> str:
    """The metadata entry for ``groups``; libvirt puts it into ``NAMESPACE``."""
    entry = make(GroupsEntry, folder=groups.folder or None)
    for tag in groups.tags:
        entry.tags.add(make(Tag, text=tag))
    return entry.to_xml()


def _affect(dom: libvirt.virDomain) -> int:
    flags = 0
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if dom.isPersistent():
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def write_groups(dom: libvirt.virDomain, groups: Groups) -> None:
    """Store ``groups`` in the domain's metadata, live and in its saved config."""
    if groups.empty:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, NAMESPACE,
                        _affect(dom))
    else:
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, groups_xml(groups), PREFIX,
                        NAMESPACE, _affect(dom))


def save_groups(runner: JobRunner, host: HostConnection, domain: Domain,
                groups: Groups) -> Job:
    uuid, name = domain.uuid, domain.name

    def work(job: Job) -> None:
        job.report(None, f"Filing {name} in folder “{groups.folder or '(none)'}” with tags "
                         f"{', '.join(groups.tags) or '(none)'}")
        write_groups(host.virconn.lookupByUUIDString(uuid), groups)
        # Not every driver sends a metadata event: read the machine again.
        host.refresh_domain(uuid)

    return runner.submit(f"Set tags of {name}", work, host=host.name, target=name)
