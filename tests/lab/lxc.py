"""A private libvirtd serving the LXC driver, in a mount namespace where LXC works here.

On this host (cgroup v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified, the "hybrid" layout) libvirt 9.0's LXC driver fails to
start any container with "Unable to create directory /sys/fs/cgroup/unified":
it bind-mounts the v2 hierarchy into the container before the tmpfs that
would hold its mount point exists.  A daemon started in its own mount
namespace without that cgroup2 mount sees a pure v1 host, and containers
start.  The host's own mounts are not touched.

The system libvirtd loads the LXC driver too and holds its lock on
/run/libvirt/lxc/driver.pid, a path no config setting moves; the private
daemon gets its own empty /run/libvirt (a tmpfs in its namespace), so the
two never share state, locks or sockets.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from tests.lab.daemon import PRIVATE_RUN_SETUP, PrivateLibvirtd

DRIVER = Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_lxc.so")
# Fixed text: the daemon's argv follows as positional arguments, never as shell text.
_PRIVATE_MOUNTS = ('umount /sys/fs/cgroup/unified 2>/dev/null; '
                   f'{PRIVATE_RUN_SETUP} && exec "$@"')


def lxc_unavailable() -> str:
    """Why no private LXC daemon can run here, or "" when one can."""
    if os.geteuid() != 0:
        return "LXC containers need root"
    if not DRIVER.exists():
        return "libvirt's LXC driver is not installed (libvirt-daemon-driver-lxc)"
    for tool in ("unshare", "libvirtd"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return ""


class PrivateLxcDaemon(PrivateLibvirtd):
    """``PrivateLibvirtd``'s private config and sockets, serving only the LXC driver."""

    def __init__(self) -> None:
        super().__init__()
        (self.drivers / DRIVER.name).symlink_to(DRIVER)
        self.uri = f"lxc:///system?socket={quote(str(self.socket))}"

    def argv(self) -> list[str]:
        # unshare and sh exec in place: the pid is the daemon's own.
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                _PRIVATE_MOUNTS, "sh", *self.daemon_argv()]


def container_xml(name: str) -> str:
    """A tiny container sharing the host's filesystem, running busybox as its init."""
    return (f"<domain type='lxc'><name>{name}</name><memory unit='MiB'>64</memory>"
            "<os><type>exe</type><init>/bin/busybox</init><initarg>sleep</initarg>"
            "<initarg>600</initarg></os><devices><console type='pty'/></devices></domain>")
