"""VirtStudio's own ``<metadata>`` entries: folders and tags, NIC VLANs.

Read inside a domain they are in VirtStudio's namespaces; written for
``virDomainSetMetadata`` they are plain elements, which libvirt puts into the
namespace it is given.
"""

from __future__ import annotations

from typing import TypeVar

from virtstudio.xml.base import Attr, Children, Node, Text
from virtstudio.xml.domain import Domain

GROUPS_NS = "http://virtstudio.org/xmlns/groups/1.0"
NETWORK_NS = "https://virtstudio.org/xmlns/network/1"

E = TypeVar("E", bound=Node)


class Value(Node):
    """An element that is only its text (``<tag>web</tag>``)."""

    text = Text("")


class Tag(Value):
    TAG = "tag"


class GroupsEntry(Node):
    TAG = "groups"
    ORDER = ("folder", "tag")
    folder = Text("folder")
    tags = Children("tag", Tag)


class NicVlan(Node):
    TAG = "nic"
    mac = Attr("mac")
    vlan = Attr("vlan", int)


class NicsEntry(Node):
    TAG = "nics"
    nics = Children("nic", NicVlan)


def metadata_entry(domain: Domain, namespace: str, cls: type[E]) -> E | None:
    """The entry ``cls`` of ``namespace`` in the domain's metadata, if it has one."""
    metadata = domain.metadata
    if metadata is None:
        return None
    element = metadata.find(namespace, cls.TAG)
    return cls(element) if element is not None else None
