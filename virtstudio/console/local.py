"""Reach a VM's console: a socket straight from libvirt for local hosts."""

from __future__ import annotations

import socket

import libvirt


def open_graphics_socket(dom: libvirt.virDomain, index: int = 0) -> socket.socket:
    """A connected socket to the domain's graphics ``index`` (no TCP port, no password).

    libvirt hands over a socket pair end that QEMU has already authenticated;
    a blocking libvirt call, so run it off the GUI thread.
    """
    fd = dom.openGraphicsFD(index, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
    return socket.socket(fileno=fd)


def graphics_index(domain_xml_kinds: list[str], kind: str) -> int:
    """Position of the first ``kind`` ("vnc" or "spice") among the domain's graphics."""
    try:
        return domain_xml_kinds.index(kind)
    except ValueError:
        raise LookupError(f"the machine has no {kind.upper()} display") from None
