"""Libvirt XML, declared once: parse, change only what was asked, write back.

One node class per document and device kind wraps an lxml element; fields are
descriptors (``Attr``, ``Text``, ``Flag``, ``Child``, ``Children``).  Anything a
class does not declare is kept untouched, in place.
"""

from virtstudio.xml.amount import Amount, MemoryAmount
from virtstudio.xml.base import (
    INT,
    ONOFF,
    STR,
    YESNO,
    Attr,
    Child,
    Children,
    Flag,
    Node,
    Text,
    XMLError,
    canonical,
    make,
    parse_element,
    to_text,
)
from virtstudio.xml.capabilities import DomainCapabilities
from virtstudio.xml.devices import (
    Address,
    Audio,
    Channel,
    Console,
    Controller,
    Device,
    Devices,
    Disk,
    Filesystem,
    Graphics,
    Hostdev,
    Input,
    Interface,
    Listen,
    Memballoon,
    Redirdev,
    Rng,
    Serial,
    Sound,
    Tpm,
    Video,
    Watchdog,
)
from virtstudio.xml.domain import Boot, Cpu, Domain, Metadata, Os, Topology, Vcpu, namespaced
from virtstudio.xml.network import Network
from virtstudio.xml.storage import Pool, Volume

__all__ = ["INT", "ONOFF", "STR", "YESNO", "Address", "Amount", "Attr", "Audio", "Boot", "Channel",
           "Child", "Children", "Console", "Controller", "Cpu", "Device", "Devices", "Disk",
           "Domain", "DomainCapabilities", "Filesystem", "Flag", "Graphics", "Hostdev", "Input",
           "Interface", "Listen", "Memballoon", "MemoryAmount", "Metadata", "Network", "Node",
           "Os", "Pool", "Redirdev", "Rng", "Serial", "Sound", "Text", "Topology", "Tpm", "Vcpu",
           "Video", "Volume", "Watchdog", "XMLError", "canonical", "make", "namespaced",
           "parse_element", "to_text"]
