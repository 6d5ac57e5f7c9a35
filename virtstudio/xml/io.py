"""Reading libvirt objects into nodes: secure whenever the result may be written back.

Without VIR_DOMAIN_XML_SECURE libvirt leaves out display passwords and disk
secrets; defining such a text would silently erase them.
"""

from __future__ import annotations

import libvirt

from virtstudio.xml.domain import Domain


def domain_for_edit(dom: libvirt.virDomain) -> Domain:
    """The saved configuration (the live one of a transient machine), secrets included."""
    flags = libvirt.VIR_DOMAIN_XML_SECURE
    if dom.isPersistent():
        flags |= libvirt.VIR_DOMAIN_XML_INACTIVE
    return Domain.from_xml(dom.XMLDesc(flags))


def running_domain(dom: libvirt.virDomain, secure: bool = False) -> Domain:
    """The running configuration (live device names and aliases)."""
    return Domain.from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE if secure else 0))


def define(conn: libvirt.virConnect, domain: Domain) -> libvirt.virDomain:
    return conn.defineXML(domain.to_xml())
