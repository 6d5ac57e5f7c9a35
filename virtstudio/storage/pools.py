"""Storage pools through libvirt: which fields each type needs, checks, XML, discovery.

Everything here is plain data and text; ``pool_jobs`` runs the libvirt calls.
A spec is checked in full before any XML reaches libvirt, so a typo never
leaves a half-defined pool behind.
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from virtstudio.core.errors import VirtStudioError
from virtstudio.storage.lvm import validate_name

POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi", "rbd")
TYPE_LABELS = {
    "dir": "Folder on this host",
    "fs": "Formatted block device (mounted by libvirt)",
    "netfs": "Network share (NFS, CIFS, GlusterFS)",
    "logical": "LVM volume group",
    "disk": "Whole disk (partitions become volumes)",
    "iscsi": "iSCSI target",
    "rbd": "Ceph RBD pool",
}
# Source formats libvirt accepts per type; the first is the default.
SOURCE_FORMATS = {
    "fs": ("auto", "ext4", "ext3", "xfs", "btrfs", "vfat"),
    "netfs": ("nfs", "cifs", "glusterfs"),
    "disk": ("gpt", "dos"),
}
DEFAULT_TARGETS = {"disk": "/dev", "iscsi": "/dev/disk/by-path"}


@dataclass(frozen=True)
class FieldInfo:
    key: str
    label: str
    placeholder: str
    required: bool = True


_FIELDS = {
    "target_path": FieldInfo("target_path", "Folder:", "/var/lib/libvirt/images/pool"),
    "mount_point": FieldInfo("target_path", "Mount point:", "/var/lib/libvirt/mnt/pool"),
    "source_device": FieldInfo("source_device", "Device:", "/dev/sdb1"),
    "whole_disk": FieldInfo("source_device", "Disk:", "/dev/sdb"),
    "source_host": FieldInfo("source_host", "Server:", "nas.example.lan"),
    "source_dir": FieldInfo("source_dir", "Exported folder:", "/export/vm"),
    "source_format": FieldInfo("source_format", "Format:", ""),
    "vg_name": FieldInfo("source_name", "Volume group:", "vg_vms"),
    "pv_devices": FieldInfo("source_device", "Disks to build it on (optional):",
                            "/dev/sdb /dev/sdc", required=False),
    "iqn": FieldInfo("source_device", "Target IQN:", "iqn.2024-01.lan.example:storage"),
    "initiator": FieldInfo("initiator", "Initiator IQN (optional):",
                           "iqn.2024-01.lan.example:virthost", required=False),
    "ceph_pool": FieldInfo("source_name", "Ceph pool:", "rbd"),
    "monitors": FieldInfo("source_host", "Monitors:", "mon1.lan mon2.lan:6789"),
    "auth_user": FieldInfo("auth_user", "Ceph user (optional):", "libvirt", required=False),
    "auth_secret": FieldInfo("auth_secret", "Secret UUID (optional):",
                             "libvirt secret holding the key", required=False),
}
TYPE_FIELDS: dict[str, tuple[FieldInfo, ...]] = {
    "dir": (_FIELDS["target_path"],),
    "fs": (_FIELDS["source_device"], _FIELDS["source_format"], _FIELDS["mount_point"]),
    "netfs": (_FIELDS["source_host"], _FIELDS["source_dir"], _FIELDS["source_format"],
              _FIELDS["mount_point"]),
    "logical": (_FIELDS["vg_name"], _FIELDS["pv_devices"]),
    "disk": (_FIELDS["whole_disk"], _FIELDS["source_format"]),
    "iscsi": (_FIELDS["source_host"], _FIELDS["iqn"], _FIELDS["initiator"]),
    "rbd": (_FIELDS["monitors"], _FIELDS["ceph_pool"], _FIELDS["auth_user"],
            _FIELDS["auth_secret"]),
}
# Types whose sources libvirt can list (virConnectFindStoragePoolSources), and
# whether that needs a server name first.
DISCOVERY = {"logical": False, "netfs": True, "iscsi": True}

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_DEV_RE = re.compile(r"/dev/[A-Za-z0-9._/:+-]+")
_IQN_RE = re.compile(r"(iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[^\s]+)?|eui\.[0-9A-Fa-f]{16})")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_CEPH_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _is_vg_name(name: str) -> bool:
    try:
        validate_name(name, "volume group")
    except VirtStudioError:
        return False
    return True


@dataclass(frozen=True)
class PoolSpec:
    type: str
    name: str
    target_path: str = ""
    source_device: str = ""  # several, space-separated, for a logical pool
    source_host: str = ""  # several, space-separated, for rbd monitors
    source_dir: str = ""
    source_name: str = ""
    source_format: str = ""
    initiator: str = ""
    auth_user: str = ""
    auth_secret: str = ""

    def devices(self) -> list[str]:
        return self.source_device.split()

    def hosts(self) -> list[tuple[str, str]]:
        """(name, port) of every server; port is "" when not given."""
        found = []
        for item in self.source_host.split():
            if item.startswith("["):
                name, _, port = item[1:].partition("]")
                found.append((name, port.lstrip(":")))
            else:
                name, _, port = item.partition(":")
                found.append((name, port))
        return found


def with_defaults(spec: PoolSpec) -> PoolSpec:
    """Fill what the user may leave empty: formats, and targets libvirt expects."""
    changes: dict[str, str] = {}
    if not spec.source_format and spec.type in SOURCE_FORMATS:
        changes["source_format"] = SOURCE_FORMATS[spec.type][0]
    if not spec.target_path:
        if spec.type in DEFAULT_TARGETS:
            changes["target_path"] = DEFAULT_TARGETS[spec.type]
        elif spec.type == "logical" and spec.source_name:
            changes["target_path"] = f"/dev/{spec.source_name}"
    return replace(spec, **changes) if changes else spec


def check_pool_spec(spec: PoolSpec, existing_names: set[str] | frozenset[str] = frozenset()
                    ) -> str:
    """What is wrong with ``spec`` in plain words, or "" when libvirt may have it."""
    if spec.type not in POOL_TYPES:
        return f"Unknown pool type {spec.type!r}."
    if not spec.name:
        return "Enter a name for the pool."
    if not _NAME_RE.fullmatch(spec.name):
        return ("Use a pool name of letters, digits, dots, dashes, underscores or plus signs "
                "(no spaces or slashes), starting with a letter or digit.")
    if spec.name in existing_names:
        return f"This host has a pool called {spec.name} already."
    spec = with_defaults(spec)
    for info in TYPE_FIELDS[spec.type]:
        if info.required and not getattr(spec, info.key).strip():
            return f"Enter the {info.label.rstrip(':').lower()}."
    return _check_type_fields(spec)


def _check_type_fields(spec: PoolSpec) -> str:
    if spec.type in ("dir", "fs", "netfs") and not spec.target_path.startswith("/"):
        return "The folder must be an absolute path, starting with /."
    if spec.target_path and (".." in spec.target_path.split("/")
                             or any(c in spec.target_path for c in "\n\0")):
        return "The folder may not contain “..” or control characters."
    if spec.type in ("fs", "disk", "logical"):
        for device in spec.devices():
            if not _DEV_RE.fullmatch(device):
                return f"{device} is not a device path (they start with /dev/)."
    if spec.type in SOURCE_FORMATS and spec.source_format not in SOURCE_FORMATS[spec.type]:
        allowed = ", ".join(SOURCE_FORMATS[spec.type])
        return f"A {spec.type} pool's format is one of {allowed}."
    if spec.type in ("netfs", "iscsi", "rbd"):
        if spec.type != "rbd" and len(spec.hosts()) > 1:
            return "Enter one server: a host name or address, without spaces."
        for name, port in spec.hosts():
            if not _is_host(name):
                return f"{name} is not a host name or address."
            if port and not (port.isdigit() and 0 < int(port) < 65536):
                return f"{port} is not a port number."
    if spec.type == "netfs" and not spec.source_dir.startswith("/"):
        return "The exported folder must be an absolute path, starting with /."
    if spec.type == "logical" and not _is_vg_name(spec.source_name):
        return f"“{spec.source_name}” is not a volume group name LVM accepts."
    if spec.type == "iscsi":
        if not _IQN_RE.fullmatch(spec.source_device):
            return "The target is an IQN, like iqn.2024-01.lan.example:storage."
        if spec.initiator and not _IQN_RE.fullmatch(spec.initiator):
            return "The initiator is an IQN, like iqn.2024-01.lan.example:host."
    if spec.type == "rbd":
        if not _CEPH_RE.fullmatch(spec.source_name):
            return f"“{spec.source_name}” is not a Ceph pool name."
        if bool(spec.auth_user) != bool(spec.auth_secret):
            return "Give both the Ceph user and the secret UUID, or neither."
        if spec.auth_secret and not _UUID_RE.fullmatch(spec.auth_secret):
            return "The secret is given by its UUID (virsh secret-list shows them)."
    return ""


def _is_host(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return bool(_HOST_RE.fullmatch(name))
    return True


def pool_xml(spec: PoolSpec) -> str:
    """libvirt's pool XML for a checked spec."""
    spec = with_defaults(spec)
    root = ET.Element("pool", type=spec.type)
    ET.SubElement(root, "name").text = spec.name
    source = ET.SubElement(root, "source")
    for name, port in spec.hosts() if spec.type in ("netfs", "iscsi", "rbd") else ():
        host = ET.SubElement(source, "host", name=name)
        if port:
            host.set("port", port)
    if spec.type in ("fs", "disk", "logical"):
        for device in spec.devices():
            ET.SubElement(source, "device", path=device)
    if spec.type == "iscsi":
        ET.SubElement(source, "device", path=spec.source_device)
        if spec.initiator:
            ET.SubElement(ET.SubElement(source, "initiator"), "iqn", name=spec.initiator)
    if spec.type == "netfs":
        ET.SubElement(source, "dir", path=spec.source_dir)
    if spec.type in ("logical", "rbd"):
        ET.SubElement(source, "name").text = spec.source_name
    if spec.type == "rbd" and spec.auth_user:
        auth = ET.SubElement(source, "auth", type="ceph", username=spec.auth_user)
        ET.SubElement(auth, "secret", uuid=spec.auth_secret)
    if spec.source_format:
        ET.SubElement(source, "format", type=spec.source_format)
    elif spec.type == "logical":
        ET.SubElement(source, "format", type="lvm2")
    if spec.type != "rbd" and spec.target_path:
        ET.SubElement(ET.SubElement(root, "target"), "path").text = spec.target_path
    return ET.tostring(root, encoding="unicode")


def discovery_xml(pool_type: str, host: str = "") -> str | None:
    """The source description ``findStoragePoolSources`` wants, None when it needs none."""
    if not DISCOVERY.get(pool_type):
        return None
    root = ET.Element("source")
    name, _, port = host.partition(":")
    element = ET.SubElement(root, "host", name=name)
    if port:
        element.set("port", port)
    if pool_type == "netfs":
        ET.SubElement(root, "format", type="nfs")
    return ET.tostring(root, encoding="unicode")


@dataclass(frozen=True)
class FoundSource:
    """One source libvirt found, as the values it fills into a spec."""

    label: str
    values: dict[str, str]


def parse_found_sources(pool_type: str, xml: str) -> list[FoundSource]:
    """Turn ``findStoragePoolSources``'s answer into choices for the dialog."""
    found = []
    for source in ET.fromstring(xml).findall("source"):
        host = source.find("host")
        host_name = host.get("name", "") if host is not None else ""
        devices = [d.get("path", "") for d in source.findall("device")]
        if pool_type == "logical":
            vg = source.findtext("name", "")
            found.append(FoundSource(f"{vg} on {', '.join(devices) or 'no disks'}",
                                     {"source_name": vg}))
        elif pool_type == "netfs":
            folder = source.find("dir")
            path = folder.get("path", "") if folder is not None else ""
            found.append(FoundSource(f"{host_name}:{path}",
                                     {"source_host": host_name, "source_dir": path}))
        elif pool_type == "iscsi":
            for device in devices:
                found.append(FoundSource(f"{device} on {host_name}",
                                         {"source_host": host_name, "source_device": device}))
    return found
