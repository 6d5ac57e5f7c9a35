"""Hand a console to remote-viewer when VirtStudio's own clients cannot show it.

The connection settings go to ``remote-viewer -`` as a .vv file on its
standard input, so the console password is never written to disk.  The
libvirt part (reading the live XML with its password) runs on the host's
worker thread.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.domain_xml import parse_domain_xml

PROGRAM = "remote-viewer"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_ANY = ("", "0.0.0.0", "::")


def remote_viewer_path() -> str | None:
    """Where remote-viewer is installed, or None."""
    return shutil.which(PROGRAM)


def vv_file(*, kind: str, host: str, port: int, password: str | None, title: str) -> str:
    """The text of a .vv file; refuses values that would break its line format."""
    if kind not in ("vnc", "spice"):
        raise ValueError(f"remote-viewer cannot open a {kind!r} display.")
    if not 0 < port < 65536:
        raise ValueError(f"The display's port {port} is not a valid port.")
    fields = {"type": kind, "host": host, "port": str(port), "title": title}
    if password:
        fields["password"] = password
    for key, value in fields.items():
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError(f"The display's {key} contains a line break, which a .vv "
                             "file cannot hold.")
    lines = ["[virt-viewer]", *(f"{k}={v}" for k, v in fields.items()),
             "delete-this-file=1", "fullscreen=0"]
    return "\n".join(lines) + "\n"


def viewer_address(host_uri: str, listen: str) -> str:
    """The address at which remote-viewer here reaches a display listening on ``listen``."""
    parsed = uri_mod.parse(host_uri)
    if not parsed.is_remote:
        return "127.0.0.1" if listen in _ANY else listen
    if listen in _LOOPBACK:
        raise LookupError("The display listens only on the host's own loopback address, "
                          "which remote-viewer on this computer cannot reach.")
    return parsed.host if listen in _ANY else listen


def graphics_password(secure_xml: str, index: int) -> str | None:
    graphics = ET.fromstring(secure_xml).findall("devices/graphics")
    return graphics[index].get("passwd") if index < len(graphics) else None


def launch(vv: str, program: str) -> subprocess.Popen[bytes]:
    """Start ``program -`` and write ``vv`` to its standard input (argv list, no shell)."""
    proc = subprocess.Popen([program, "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdin is not None
    try:
        proc.stdin.write(vv.encode())
    finally:
        proc.stdin.close()
    # Reap it when it ends, so no zombie stays behind.
    threading.Thread(target=proc.wait, name="remote-viewer reaper", daemon=True).start()
    return proc


def open_in_remote_viewer(conn: libvirt.virConnect, uuid: str, host_uri: str,
                          kind: str) -> subprocess.Popen[bytes]:
    """Open the domain's ``kind`` display in remote-viewer; blocking libvirt calls."""
    program = remote_viewer_path()
    if program is None:
        raise LookupError("remote-viewer is not installed.")
    dom = conn.lookupByUUIDString(uuid)
    secure = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    summary = parse_domain_xml(secure)
    kinds = [g.kind for g in summary.graphics]
    if kind not in kinds:
        raise LookupError(f"{summary.name} has no {kind.upper()} display.")
    index = kinds.index(kind)
    graphics = summary.graphics[index]
    if graphics.port is None:
        raise LookupError(f"The {kind.upper()} display of {summary.name} has no TCP port.")
    vv = vv_file(kind=kind, host=viewer_address(host_uri, graphics.listen), port=graphics.port,
                 password=graphics_password(secure, index), title=summary.name)
    return launch(vv, program)
