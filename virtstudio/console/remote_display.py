"""Open a remote host's display through the host's SSH tunnel.

The display's address, port and password come from the domain's live XML,
read on the host's worker thread; the socket then comes from the host's one
SSH connection (``ssh_tunnel``), since virDomainOpenGraphicsFD cannot pass a
file descriptor over an SSH transport.
"""

from __future__ import annotations

import socket

import libvirt

from virtstudio.console.remote_viewer import graphics_password
from virtstudio.console.ssh_tunnel import TunnelPool
from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_xml import parse_domain_xml

LOOKUP_TIMEOUT = 30.0


def display_endpoint(dom: libvirt.virDomain, index: int) -> tuple[str, int, str | None]:
    """(listen address, port, password) of the domain's graphics ``index``; blocking."""
    secure = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    summary = parse_domain_xml(secure)
    if index >= len(summary.graphics):
        raise LookupError(f"{summary.name} has no display number {index + 1}.")
    graphics = summary.graphics[index]
    if graphics.port is None:
        raise LookupError(f"The {graphics.kind.upper()} display of {summary.name} has no TCP "
                          "port, so it cannot be reached from another computer.")
    if graphics.listen.startswith("/"):
        raise LookupError(f"The {graphics.kind.upper()} display of {summary.name} listens on a "
                          "Unix socket, which VirtStudio cannot reach over SSH.")
    return graphics.listen, graphics.port, graphics_password(secure, index)


class TunneledDisplay:
    """A ConsoleSession opener for a remote domain; ``password`` is known after a call."""

    def __init__(self, host: HostConnection, uuid: str, index: int, pool: TunnelPool) -> None:
        self.host = host
        self.uuid = uuid
        self.index = index
        self.pool = pool
        self.password: str | None = None

    def __call__(self) -> socket.socket:
        index = self.index
        future = self.host.call(
            lambda c: display_endpoint(c.lookupByUUIDString(self.uuid), index))
        listen, port, password = future.result(timeout=LOOKUP_TIMEOUT)
        self.password = password
        return self.pool.channel(self.host.uri, listen, port)
