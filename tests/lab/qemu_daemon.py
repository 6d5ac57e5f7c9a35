"""A second QEMU libvirtd on this machine, so that a real migration has somewhere to go.

The daemon runs in its own mount namespace with an empty tmpfs over
/run/libvirt (its own driver.pid locks and identity token: it can never lock or
remove the system daemon's sockets or pid files), its running guests' state in a
private folder over /run/libvirt/qemu that outlives a kill, and with QEMU's
configuration, state, cache and log folders as private empty folders bound over
the system daemon's, so it neither sees nor touches the system daemon's machines.  It
has a host UUID of its own (libvirt refuses to migrate to the same host),
serves only the QEMU driver on its own socket, keeps cgroups out (the two
daemons would pick the same cgroup names) and writes QEMU's output to plain
files instead of the shared virtlogd.  Disk images and kernels under
/var/lib/libvirt/images stay shared, like storage shared between two hosts.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

from tests.lab.daemon import PRIVATE_RUN_SETUP, PrivateLibvirtd

DRIVER = Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so")
STORAGE_DRIVER = DRIVER.with_name("libvirt_driver_storage.so")
PRIVATE = {  # folder in the daemon's directory -> the system path it hides
    "etc-qemu": "/etc/libvirt/qemu",
    "lib-qemu": "/var/lib/libvirt/qemu",
    "cache-qemu": "/var/cache/libvirt/qemu",
    "log-qemu": "/var/log/libvirt/qemu",
}
# Display ports of its own: each daemon only knows the ports it handed out itself.
QEMU_CONF = ('cgroup_controllers = [ ]\nstdio_handler = "file"\n'
             "remote_display_port_min = 6900\nremote_display_port_max = 6999\n"
             "migration_port_min = 49400\nmigration_port_max = 49500\n")
# Fixed text: the folders come as positional arguments, never as shell text.
_BIND_THEN_EXEC = (
    f'set -e; {PRIVATE_RUN_SETUP}; '
    'conf="$1"; shift; mount --bind "$conf" /etc/libvirt/qemu.conf; '
    'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"')


def qemu_daemon_unavailable() -> str:
    """Why no second QEMU daemon can run here, or "" when one can."""
    if os.geteuid() != 0:
        return "a second system libvirtd needs root"
    if not DRIVER.exists():
        return "libvirt's QEMU driver is not installed"
    for tool in ("unshare", "libvirtd", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    missing = [p for p in [*PRIVATE.values(), "/etc/libvirt/qemu.conf"] if not Path(p).exists()]
    return f"{missing[0]} is missing" if missing else ""


class PrivateQemuDaemon(PrivateLibvirtd):
    """``PrivateLibvirtd``'s private socket and config, serving the QEMU driver.

    ``storage=True`` adds the storage driver, with an empty private folder over
    /etc/libvirt/storage: it sees and keeps only the pools its test defines."""

    def __init__(self, storage: bool = False) -> None:
        super().__init__()
        self.private = dict(PRIVATE)
        (self.drivers / DRIVER.name).symlink_to(DRIVER)
        if storage:
            self.private["etc-storage"] = "/etc/libvirt/storage"
            (self.drivers / STORAGE_DRIVER.name).symlink_to(STORAGE_DRIVER)
        # Its running guests' state outlives the tmpfs of one run: started again after a
        # kill, it finds them and takes them over, as the system daemon does.
        self.private["run-qemu"] = "/run/libvirt/qemu"
        self.host_uuid = str(uuid.uuid4())
        with open(self.config, "a", encoding="utf-8") as conf:
            conf.write(f'host_uuid = "{self.host_uuid}"\n')
        self.qemu_conf = self.dir / "qemu.conf"
        self.qemu_conf.write_text(QEMU_CONF)
        self.qemu_conf.chmod(0o600)
        for folder in self.private:
            (self.dir / folder).mkdir()
        (self.dir / "run-qemu" / "autostarted").touch()  # as PRIVATE_RUN_SETUP has it
        self.uri = f"qemu:///system?socket={quote(str(self.socket))}"

    def argv(self) -> list[str]:
        binds = [arg for folder, target in self.private.items()
                 for arg in (str(self.dir / folder), target)]
        # unshare and sh exec in place: the pid is the daemon's own.
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                _BIND_THEN_EXEC, "sh", str(self.qemu_conf), *binds, "--", *self.daemon_argv()]
