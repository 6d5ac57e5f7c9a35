"""libvirt connection URIs: presets, validation and names to show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from virtstudio.core.errors import VirtStudioError

DRIVERS = ("qemu", "lxc", "xen", "test", "ch", "bhyve", "vbox", "esx", "vz", "openvz")
TRANSPORTS = ("ssh", "libssh", "libssh2", "tcp", "tls", "unix", "ext")
_HOST_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)")
_USER_RE = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    template: str
    needs_host: bool = False


PRESETS = (
    Preset("qemu-system", "QEMU/KVM (system)", "qemu:///system"),
    Preset("qemu-session", "QEMU/KVM (user session)", "qemu:///session"),
    Preset("lxc", "LXC containers", "lxc:///system"),
    Preset("xen", "Xen", "xen:///system"),
    Preset("qemu-ssh", "Remote QEMU/KVM over SSH", "qemu+ssh://{user}@{host}/system", True),
    Preset("custom", "Custom URI", ""),
)


def preset_uri(preset: Preset, user: str = "", host: str = "") -> str:
    """Fill in a preset's template; raise VirtStudioError on a bad user or host."""
    if not preset.needs_host:
        return preset.template
    host = host.strip()
    user = user.strip()
    if not host or not _HOST_RE.fullmatch(host):
        raise VirtStudioError(f"“{host}” is not a valid host name or address.")
    if user and not _USER_RE.fullmatch(user):
        raise VirtStudioError(f"“{user}” is not a valid user name.")
    uri = preset.template.format(user=user, host=host)
    return uri if user else uri.replace("@", "", 1)


@dataclass(frozen=True)
class ParsedUri:
    uri: str
    driver: str
    transport: str
    user: str
    host: str
    port: int | None
    path: str
    params: dict[str, list[str]]

    @property
    def is_remote(self) -> bool:
        return bool(self.host) or self.transport not in ("", "unix")

    @property
    def is_test(self) -> bool:
        return self.driver == "test"


def parse(uri: str) -> ParsedUri:
    """Check that ``uri`` is a libvirt URI this app can open; raise VirtStudioError if not."""
    uri = uri.strip()
    if not uri:
        raise VirtStudioError("Enter a connection URI, for example qemu:///system.")
    if any(c.isspace() for c in uri):
        raise VirtStudioError(f"“{uri}” contains spaces; a connection URI has none.")
    if "://" not in uri:
        raise VirtStudioError(
            f"“{uri}” is not a connection URI: it should look like driver://host/path, "
            "for example qemu:///system."
        )
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise VirtStudioError(f"“{uri}” is not a valid connection URI: {exc}.") from None
    driver, _, transport = parts.scheme.partition("+")
    if driver not in DRIVERS:
        known = ", ".join(DRIVERS)
        raise VirtStudioError(f"Unknown hypervisor driver “{driver}”. Known drivers: {known}.")
    if transport and transport not in TRANSPORTS:
        known = ", ".join(TRANSPORTS)
        raise VirtStudioError(f"Unknown transport “{transport}”. Known transports: {known}.")
    host = parts.hostname or ""
    if host and not _HOST_RE.fullmatch(host if ":" not in host else f"[{host}]"):
        raise VirtStudioError(f"“{host}” is not a valid host name or address.")
    user = parts.username or ""
    if user and not _USER_RE.fullmatch(user):
        raise VirtStudioError(f"“{user}” is not a valid user name.")
    if transport in ("ssh", "libssh", "libssh2", "tcp", "tls") and not host:
        raise VirtStudioError(f"A {transport} connection needs a host name.")
    path = parts.path
    if driver in ("qemu", "lxc", "xen", "ch", "bhyve") and path not in (
        "/system", "/session", "/embed", "/", ""
    ):
        raise VirtStudioError(
            f"“{path}” is not a {driver} connection path; use /system or /session."
        )
    if driver == "test" and not path:
        raise VirtStudioError("A test connection needs a path: test:///default or a fixture file.")
    params: dict[str, list[str]] = {}
    for name, value in query_parameters(uri):
        params.setdefault(name, []).append(value)
    return ParsedUri(uri, driver, transport, user, host, port, path, params)


# Parameters of libvirt's remote driver that run a program, pick a socket, a key or
# certificates, or weaken checks: a URI carrying one is shown and confirmed before
# it is used (see libvirt's remote URI documentation).  Values say what each does.
RISKY_PARAMETERS = {
    "command": "runs this program on this computer to reach the host",
    "netcat": "runs this program on the remote host instead of its own proxy",
    "socket": "connects to this socket instead of libvirt's",
    "keyfile": "logs in with the private key in this file",
    "pkipath": "takes TLS certificates and keys from this folder",
    "known_hosts": "trusts the host keys listed in this file",
    "known_hosts_verify": "changes how the host's SSH key is checked",
    "no_verify": "turns off the check of the server's certificate",
    "sshauth": "chooses how to log in over SSH",
    "mode": "chooses which libvirt daemon answers on the host",
    "proxy": "chooses how the connection reaches the daemon on the host",
    "tls_priority": "changes which TLS versions and ciphers are allowed",
    "root": "runs an embedded hypervisor driver on this folder",
}


@dataclass(frozen=True)
class RiskyParameter:
    name: str
    value: str
    meaning: str


def query_parameters(uri: str) -> list[tuple[str, str]]:
    """The URI's query as libvirt reads it: split at & and ;, names without case."""
    query = urlsplit(uri.strip()).query if "://" in uri else ""
    params = []
    for piece in re.split(r"[&;]", query):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        params.append((unquote(name).strip().lower(), unquote(value)))
    return params


def risky_parameters(uri: str) -> list[RiskyParameter]:
    """What in ``uri`` runs a program, names a socket, key or certificate, or weakens a check.

    A URI with ``ext`` transport always runs a program, named by ``command``.
    """
    return [RiskyParameter(name, value, RISKY_PARAMETERS[name])
            for name, value in query_parameters(uri) if name in RISKY_PARAMETERS]


def demo_uri(fixture: Path) -> str:
    return f"test://{fixture.resolve()}"


def display_name(uri: str, demo_fixture: Path | None = None) -> str:
    """The name of a host as the sidebar shows it."""
    try:
        p = parse(uri)
    except VirtStudioError:
        return uri
    if p.is_test:
        if demo_fixture is not None and p.path == str(demo_fixture.resolve()):
            return "Demo host"
        return f"Test driver ({Path(p.path).name or 'default'})"
    names = {"qemu": "QEMU/KVM", "lxc": "LXC", "xen": "Xen"}
    kind = names.get(p.driver, p.driver)
    if p.path == "/session":
        kind += " user session"
    where = p.host or "localhost"
    return f"{kind} on {where}" if p.host else f"{kind} ({where})"
