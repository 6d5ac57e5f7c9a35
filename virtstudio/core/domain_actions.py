"""Lifecycle actions on a domain, each run as a Job on a pool thread.

What is allowed in which state, and which disks a delete may remove, is
decided here from the cached entities, so the UI can enable buttons and fill
dialogs without calling libvirt.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain, DomainState
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner

SHUTDOWN_WAIT_S = 120.0


class Action(enum.Enum):
    START = "Start"
    PAUSE = "Pause"
    RESUME = "Resume"
    SHUTDOWN = "Shut down"
    REBOOT = "Reboot"
    FORCE_OFF = "Force off"
    DELETE = "Delete"


_ALLOWED = {
    Action.START: {DomainState.SHUTOFF, DomainState.CRASHED},
    Action.PAUSE: {DomainState.RUNNING, DomainState.BLOCKED},
    Action.RESUME: {DomainState.PAUSED, DomainState.PMSUSPENDED},
    Action.SHUTDOWN: {DomainState.RUNNING, DomainState.BLOCKED},
    Action.REBOOT: {DomainState.RUNNING, DomainState.BLOCKED},
    Action.FORCE_OFF: {DomainState.RUNNING, DomainState.BLOCKED, DomainState.PAUSED,
                       DomainState.SHUTDOWN, DomainState.PMSUSPENDED, DomainState.CRASHED},
    Action.DELETE: set(DomainState),
}


def allowed(action: Action, domain: Domain) -> bool:
    if action is Action.START and not domain.persistent:
        return False  # a transient domain that stopped is gone
    if action is Action.DELETE and not domain.persistent:
        return domain.state.is_active
    return domain.state in _ALLOWED[action]


# ---- delete: which disks may go ----------------------------------------------------


@dataclass(frozen=True)
class DiskChoice:
    target: str
    source: str
    removable: bool
    why_not: str = ""
    checked: bool = False


def _disk_users(host: HostConnection, exclude_uuid: str) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for dom in list(host.domains.values()):
        if dom.uuid == exclude_uuid:
            continue
        for disk in dom.summary.disks:
            if disk.source:
                users.setdefault(disk.source, []).append(dom.name)
    return users


def plan_disk_removal(host: HostConnection, domain: Domain) -> list[DiskChoice]:
    """Say for each disk of ``domain`` whether deleting it is safe, from the cache."""
    users = _disk_users(host, domain.uuid)
    choices = []
    for disk in domain.summary.disks:
        if not disk.source:
            continue
        others = users.get(disk.source, [])
        if others:
            names = ", ".join(sorted(set(others)))
            choices.append(DiskChoice(disk.target, disk.source, False, f"also used by {names}"))
        elif disk.device == "cdrom" or disk.readonly or disk.shareable:
            choices.append(DiskChoice(disk.target, disk.source, True, "", False))
        elif disk.source_type == "network":
            choices.append(DiskChoice(disk.target, disk.source, False, "network disk"))
        else:
            choices.append(DiskChoice(disk.target, disk.source, True, "", True))
    return choices


def _sources_in_use(conn: libvirt.virConnect, exclude_uuid: str) -> set[str]:
    """Disk sources of every other domain, read fresh from libvirt."""
    used: set[str] = set()
    for dom in conn.listAllDomains(0):
        if dom.UUIDString() == exclude_uuid:
            continue
        try:
            root = ET.fromstring(dom.XMLDesc(0))
        except libvirt.libvirtError:
            continue
        for src in root.findall("devices/disk/source"):
            pool, vol = src.get("pool"), src.get("volume")
            for value in (src.get("file"), src.get("dev"), f"{pool}/{vol}" if pool else None):
                if value:
                    used.add(value)
    return used


def _lookup_volume(conn: libvirt.virConnect, source: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(source)
    except libvirt.libvirtError:
        pass
    pool_name, _, vol_name = source.partition("/")
    if pool_name and vol_name and not source.startswith("/"):
        try:
            return conn.storagePoolLookupByName(pool_name).storageVolLookupByName(vol_name)
        except libvirt.libvirtError:
            return None
    return None


def _undefine(dom: libvirt.virDomain) -> None:
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
             | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
             | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
             | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        # Older or simpler drivers reject flags they do not know.
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG,
                                        libvirt.VIR_ERR_NO_SUPPORT,
                                        libvirt.VIR_ERR_OPERATION_UNSUPPORTED):
            raise
        dom.undefine()


def delete_domain(job: Job, host: HostConnection, uuid: str, remove: list[str]) -> None:
    conn = host.virconn
    dom = conn.lookupByUUIDString(uuid)
    name = dom.name()
    steps = 2 + len(remove)
    if dom.isActive():
        job.report(0.0, f"Forcing off {name}")
        dom.destroy()
    # Check again right before removing anything: the cache may be out of date.
    in_use = _sources_in_use(conn, uuid)
    volumes = []
    for source in remove:
        if source in in_use:
            job.log(f"Keeping {source}: another virtual machine uses it")
            continue
        vol = _lookup_volume(conn, source)
        if vol is None:
            job.log(f"Keeping {source}: it is not a storage volume libvirt manages")
            continue
        volumes.append((source, vol))
    job.report(1 / steps, f"Removing the definition of {name}")
    if dom.isPersistent():
        _undefine(dom)
    for i, (source, vol) in enumerate(volumes, start=2):
        job.report(i / steps, f"Deleting {source}")
        vol.delete(0)
    job.report(1.0, f"Deleted {name}")


# ---- lifecycle -------------------------------------------------------------------------


def _shutdown(job: Job, dom: libvirt.virDomain) -> None:
    dom.shutdown()
    job.report(None, "Asked the guest to shut down; waiting for it to stop")
    deadline = SHUTDOWN_WAIT_S
    while deadline > 0:
        if not dom.isActive():
            job.report(1.0, "The guest has shut down")
            return
        job.wait(0.5)
        deadline -= 0.5
    raise VirtStudioError(
        f"The guest did not shut down within {int(SHUTDOWN_WAIT_S)} s. "
        "It may ignore the request; use Force off to stop it.")


def _resume(dom: libvirt.virDomain) -> None:
    state, _ = dom.state()
    if state == libvirt.VIR_DOMAIN_PMSUSPENDED:
        dom.pMWakeup(0)
    else:
        dom.resume()


_SIMPLE: dict[Action, Callable[[libvirt.virDomain], object]] = {
    Action.START: lambda dom: dom.create(),
    Action.PAUSE: lambda dom: dom.suspend(),
    Action.RESUME: _resume,
    Action.REBOOT: lambda dom: dom.reboot(0),
    Action.FORCE_OFF: lambda dom: dom.destroy(),
}


def run_action(runner: JobRunner, host: HostConnection, domain: Domain, action: Action,
               remove_disks: list[str] | None = None) -> Job:
    """Start ``action`` on ``domain`` as a job and return the job at once."""
    uuid, name = domain.uuid, domain.name
    title = f"{action.value} {name}"

    def work(job: Job) -> None:
        if action is Action.DELETE:
            delete_domain(job, host, uuid, list(remove_disks or []))
        else:
            dom = host.virconn.lookupByUUIDString(uuid)
            if action is Action.SHUTDOWN:
                _shutdown(job, dom)
            else:
                job.report(None, f"{action.value}: {name}")
                _SIMPLE[action](dom)
        host.refresh_domain(uuid)

    return runner.submit(title, work, host=host.name, target=name,
                         cancellable=action is Action.SHUTDOWN)
