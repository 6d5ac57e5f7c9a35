"""What a test run leaves behind: every ``vstest-*`` object, found, listed and removed.

Everything the suite creates on this machine is named ``vstest-*``: libvirt domains,
pools, volumes and networks on the system daemon, network namespaces, loop devices
(by their backing file), users, files under /var/lib/libvirt/images and polkit rules,
and the UEFI variables libvirt keeps for a vstest-* machine;
plus the private daemons of tests/lab (libvirtd, sshd, NetworkManager and its bus), which
live in temp folders named ``vs-libvirtd-*``, ``vs-sshd-*`` and ``vs-nm-*``.  The
session removes what a killed run left at its start, and at its end fails when anything
of the kind is still there (tests/conftest.py).

Several sessions may share a machine.  A name holding the pid of another live pytest
process belongs to that session and is never touched.  While another session runs, an
object whose name holds no pid could be that session's, so only objects naming a dead
pid are removed at the start, and only our own pid's count at the end.  All libvirt
work goes through the daemon's API: nothing under /run/libvirt is read, and the daemon's
own state under /var/lib/libvirt is only listed (NVRAM files), never changed directly.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt

from tests.lab.daemon import SYSTEM_URI, guest_pids

PREFIX = "vstest-"
IMAGES = Path("/var/lib/libvirt/images")
# Where libvirt keeps a UEFI machine's variables; it removes them only when the machine
# is undefined with VIR_DOMAIN_UNDEFINE_NVRAM (a transient machine's stay behind).
NVRAM = Path("/var/lib/libvirt/qemu/nvram")
POLKIT_RULES = Path("/etc/polkit-1/rules.d")
# The daemon whose vstest-* objects are looked after and whose answering is checked; the
# suite's own test of that check points it at a private daemon it can stop.
CHECKED_URI = os.environ.get("VIRTSTUDIO_TEST_CHECKED_URI", SYSTEM_URI)
# The temp folders of tests/lab's private servers, named in their command lines, and the
# programs that run as those servers.
_PRIVATE_FOLDER = re.compile(r"(/(?:[^/\s=]+/)*(?:vs-libvirtd|vs-sshd|vs-nm)-[^/\s]+)/")
_SERVERS = ("libvirtd", "sshd", "dbus-daemon", "NetworkManager")


@dataclass(frozen=True)
class Leftover:
    kind: str
    name: str
    detail: str = ""  # what removing needs beyond the name: a path, a pid

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


# --- who is running --------------------------------------------------------------------

def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name may hold spaces and parentheses: fields follow the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def _runs_pytest(pid: int) -> bool:
    """Whether ``pid`` is a pytest session itself (a Python running pytest), not a wrapper
    such as timeout or make whose command line names it."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    if not comm.startswith(("python", "pytest", "py.test")):
        return False
    argv = _argv(pid)
    for i, arg in enumerate(argv):
        if os.path.basename(arg) in ("pytest", "py.test"):
            return True
        if arg == "-m" and i + 1 < len(argv) and argv[i + 1] == "pytest":
            return True
    return False


def _descends_from(pid: int, ancestor: int) -> bool:
    seen = set()
    while pid > 1 and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = _parent(pid)
    return False


def other_sessions() -> set[int]:
    """Pids of the other pytest sessions on this machine: not this one nor any it started
    (a session that started this one, as a test of the suite itself, counts)."""
    mine = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _runs_pytest(int(entry.name)) \
                and not _descends_from(int(entry.name), mine):
            found.add(int(entry.name))
    return found


def session_name(tag: str, max_length: int = 64) -> str:
    """A name for something this session makes: ``vstest-<tag>-<pid>-<random>``.  The pid
    is a part of its own so that ``ours`` can tell whose it is; the random part, letters
    only so that it never reads as a pid, tells apart two made with one tag.  Past
    ``max_length`` the tag gives way, never the pid."""
    tail = f"-{os.getpid()}-" + "".join(secrets.choice(string.ascii_lowercase)
                                       for _ in range(4))
    return f"{PREFIX}{tag}"[:max_length - len(tail)] + tail


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def remove_netns(*names: str) -> None:
    """Delete each network namespace, each on its own, until ``ip netns list`` no longer
    shows it: on a loaded machine a process leaving it can keep its file busy a moment."""
    from tests.helpers import wait_for

    def gone(name: str) -> bool:
        if name not in _netns_names():
            return True
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        return name not in _netns_names()

    for name in names:
        wait_for(lambda n=name: gone(n), timeout=60, interval=0.2)


def _pids_in(name: str) -> set[int]:
    """The pids a name holds: its parts (between "-", "." and "_") made only of digits;
    a digit inside a word (a hex tag) is no pid."""
    return {int(part) for part in re.split(r"[-._]", name) if part.isdigit()}


# --- finding ---------------------------------------------------------------------------

def _libvirt_objects(conn: libvirt.virConnect) -> Iterator[Leftover]:
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(PREFIX):
            yield Leftover("domain", dom.name())
    for net in conn.listAllNetworks(0):
        if net.name().startswith(PREFIX):
            yield Leftover("network", net.name())
    for pool in conn.listAllStoragePools(0):
        if pool.name().startswith(PREFIX):
            yield Leftover("pool", pool.name())
            continue
        if not pool.isActive():
            continue
        try:
            volumes = pool.listAllVolumes(0)
        except libvirt.libvirtError:
            continue  # the pool went away meanwhile
        for vol in volumes:
            if vol.name().startswith(PREFIX):
                yield Leftover("volume", vol.name(), pool.name())


def _nvram_files() -> Iterator[Leftover]:
    # Only listed here; removed through the daemon (_remove_nvram).
    if NVRAM.is_dir():
        for path in sorted(NVRAM.iterdir()):
            if path.name.startswith(PREFIX):
                yield Leftover("nvram", path.name, str(path))


def _netns() -> Iterator[Leftover]:
    if shutil.which("ip") is None:
        return
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    for line in out.stdout.splitlines():
        name = line.split(" ", 1)[0]
        if name.startswith(PREFIX):
            yield Leftover("network namespace", name)


def _loop_devices() -> Iterator[Leftover]:
    if shutil.which("losetup") is None:
        return
    out = subprocess.run(["losetup", "--json", "--list"], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        return
    for dev in json.loads(out.stdout).get("loopdevices", []):
        backing = dev.get("back-file") or ""
        if PREFIX in backing:
            yield Leftover("loop device", dev["name"], backing)


def _users() -> Iterator[Leftover]:
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(PREFIX):
            yield Leftover("user", entry.pw_name)


def _files() -> Iterator[Leftover]:
    for folder in (IMAGES, POLKIT_RULES):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.name.startswith(PREFIX) or (folder == POLKIT_RULES
                                                    and PREFIX in path.name):
                    yield Leftover("file", path.name, str(path))


def _started_by_python(pid: int) -> bool:
    """Whether ``pid`` is a live Python process: a session, or a script using tests/lab."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith(
            ("python", "pytest", "py.test"))
    except OSError:
        return False


def _orphan_servers() -> Iterator[Leftover]:
    """tests/lab's private daemons (libvirtd, sshd, NetworkManager and its bus) whose
    session died: the Python process that started one is gone (the daemon passed to
    init).  A daemon that a live script started belongs to that script."""
    temp_dirs = {Path("/tmp"), Path(tempfile.gettempdir())}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm not in _SERVERS:
            continue
        found = next((m for m in map(_PRIVATE_FOLDER.search, _argv(pid)) if m), None)
        if found is None or Path(found.group(1)).parent not in temp_dirs \
                or _started_by_python(_parent(pid)):
            continue
        yield Leftover("private server", f"{comm} {pid}", f"{pid}:{found.group(1)}")


# --- removing --------------------------------------------------------------------------

def _remove_domain(conn: libvirt.virConnect, item: Leftover) -> None:
    dom = conn.lookupByName(item.name)
    if dom.isActive():
        dom.destroy()
    if dom.isPersistent():
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                 | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        dom.undefineFlags(flags)


def _remove_network(conn: libvirt.virConnect, item: Leftover) -> None:
    net = conn.networkLookupByName(item.name)
    if net.isActive():
        net.destroy()
    if net.isPersistent():
        net.undefine()


def _remove_pool(conn: libvirt.virConnect, item: Leftover) -> None:
    pool = conn.storagePoolLookupByName(item.name)
    if pool.isActive():
        pool.destroy()
    if pool.isPersistent():
        pool.undefine()


def _remove_nvram(conn: libvirt.virConnect, item: Leftover) -> None:
    """Through the daemon: a stand-in machine that names the file, undefined with it."""
    name = f"{PREFIX}nvram-{os.getpid()}"
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="q35").text = "hvm"
    # Never started: the loader only has to make the definition valid.
    ET.SubElement(os_el, "loader", readonly="yes", type="pflash").text = \
        "/usr/share/OVMF/OVMF_CODE_4M.fd"
    ET.SubElement(os_el, "nvram").text = item.detail
    ET.SubElement(ET.SubElement(root, "features"), "acpi")
    conn.defineXML(ET.tostring(root, encoding="unicode")).undefineFlags(
        libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def _remove_volume(conn: libvirt.virConnect, item: Leftover) -> None:
    conn.storagePoolLookupByName(item.detail).storageVolLookupByName(item.name).delete(0)


_LIBVIRT_REMOVERS: dict[str, Callable[[libvirt.virConnect, Leftover], None]] = {
    "domain": _remove_domain,
    "network": _remove_network,
    "pool": _remove_pool,
    "volume": _remove_volume,
    "nvram": _remove_nvram,
}


def _run(*argv: str) -> None:
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"{argv[0]} failed ({out.returncode})")


def _remove_file(item: Leftover) -> None:
    path = Path(item.detail)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_private_server(item: Leftover) -> None:
    pid_text, folder = item.detail.split(":", 1)
    pid = int(pid_text)
    # Its guests first (by the pid files in its own /run/libvirt), then the server itself:
    # each by pid, and only processes this suite started.
    for child in [*guest_pids(pid), pid]:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


_HOST_REMOVERS: dict[str, Callable[[Leftover], None]] = {
    "network namespace": lambda item: _run("ip", "netns", "del", item.name),
    "loop device": lambda item: _run("losetup", "--detach", item.name),
    "user": lambda item: _run("userdel", "--remove", item.name),
    "file": _remove_file,
    "private server": _remove_private_server,
}
# Servers first (they hold guests and files), loop devices before their backing files.
_HOST_ORDER = ("private server", "network namespace", "loop device", "user", "file")


# --- the session's view ------------------------------------------------------------------

def _open_system() -> libvirt.virConnect | None:
    try:
        return libvirt.open(CHECKED_URI)
    except libvirt.libvirtError:
        return None


def system_daemon_answers() -> bool:
    conn = _open_system()
    if conn is None:
        return False
    try:
        conn.getLibVersion()
        return True
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()


def find_all() -> list[Leftover]:
    """Every vstest-* object on this machine, whoever made it."""
    found: list[Leftover] = []
    conn = _open_system()
    if conn is not None:
        try:
            found.extend(_libvirt_objects(conn))
        finally:
            conn.close()
        found.extend(_nvram_files())
    for finder in (_orphan_servers, _netns, _loop_devices, _users, _files):
        found.extend(finder())
    return found


def ours(found: list[Leftover], *, at_start: bool) -> list[Leftover]:
    """The part of ``found`` this session may remove (see the module doc)."""
    others = other_sessions()
    mine = os.getpid()
    kept = []
    for item in found:
        pids = _pids_in(item.name)
        if item.kind == "loop device":
            pids |= _pids_in(Path(item.detail).name)  # /dev/loopN names none: its file does
        if item.kind == "private server":
            kept.append(item)  # an orphan by construction: its session is gone
        elif pids & others:
            continue  # another live session's
        elif not others:
            kept.append(item)
        elif at_start and pids and mine not in pids:
            kept.append(item)  # names a pid no session runs under
        elif not at_start and mine in pids:
            kept.append(item)
    return kept


def remove(items: list[Leftover]) -> list[str]:
    """Remove ``items``; returns what could not be removed, with libvirt's or the tool's
    reason."""
    problems = []
    libvirt_items = [i for i in items if i.kind in _LIBVIRT_REMOVERS]
    if libvirt_items:
        conn = _open_system()
        if conn is None:
            problems.extend(f"{i}: {CHECKED_URI} does not answer" for i in libvirt_items)
        else:
            try:
                for kind in ("domain", "nvram", "network", "volume", "pool"):
                    for item in (i for i in libvirt_items if i.kind == kind):
                        try:
                            _LIBVIRT_REMOVERS[kind](conn, item)
                        except libvirt.libvirtError as exc:
                            if exc.get_error_code() not in _GONE:
                                problems.append(f"{item}: {exc.get_error_message()}")
            finally:
                conn.close()
    for kind in _HOST_ORDER:
        for item in (i for i in items if i.kind == kind):
            try:
                _HOST_REMOVERS[kind](item)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{item}: {exc}")
    return problems


# Already gone by the time we got to it (a pool taking its volume along, a racing test).
_GONE = {libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_NETWORK,
         libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL}
