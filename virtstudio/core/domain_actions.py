"""Lifecycle actions on a domain, each run as a Job on a pool thread.

What is allowed in which state is decided here from the cached entities, so
the UI can enable buttons without calling libvirt.  Which disks a delete may
remove is worked out fresh on the host's worker (storage/delete_plans.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from concurrent.futures import Future

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain, DomainState
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.io_errors import describe_faults, read_disk_errors
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.storage.delete_plans import DeletePlan, DiskChoice, check_unchanged, plan_machine

__all__ = ["Action", "DiskChoice", "allowed", "ask_delete", "delete_domain", "run_action"]

SHUTDOWN_WAIT_S = 120.0
# After resuming a machine paused on a full disk, QEMU retries the failed writes at
# once: if there is still no room it pauses again within moments.
RESUME_RECHECK_S = 5.0
RESUME_SETTLED_S = 1.5


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


def ask_delete(host: HostConnection, domain: Domain) -> Future[DeletePlan]:
    """Work out on the host's worker which disks may go with the machine, and who keeps
    the others (every machine, running or not, their snapshots and backing chains)."""
    return host.call(plan_machine, domain.uuid)


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


def delete_domain(job: Job, host: HostConnection, uuid: str, plan: DeletePlan) -> None:
    """Delete the machine and the disks ``plan`` names, if that is still all it loses."""
    conn = host.virconn
    fresh = check_unchanged(plan_machine(conn, uuid, plan.chosen), plan)
    dom = conn.lookupByUUIDString(uuid)
    name = dom.name()
    volumes = fresh.volumes_lost()
    steps = 2 + len(volumes)
    if dom.isActive():
        job.report(0.0, f"Forcing off {name}")
        dom.destroy()
    job.report(1 / steps, f"Removing the definition of {name}")
    if dom.isPersistent():
        _undefine(dom)
    for i, (path, pool, vol) in enumerate(volumes, start=2):
        job.report(i / steps, f"Deleting {path}")
        conn.storagePoolLookupByName(pool).storageVolLookupByName(vol).delete(0)
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


def _resume_checked(job: Job, host: HostConnection, domain: Domain,
                    dom: libvirt.virDomain) -> None:
    """Resume; if the machine was stopped by a disk error, fail when it stops again."""
    state, reason = dom.state()
    io_paused = (state == libvirt.VIR_DOMAIN_PAUSED
                 and reason == libvirt.VIR_DOMAIN_PAUSED_IOERROR)
    _resume(dom)
    if not io_paused:
        return
    job.report(None, "Resumed; checking that the disk error is gone")
    # Running for a short while without pausing again means the writes went through.
    waited = 0.0
    running_since: float | None = None
    while waited < RESUME_RECHECK_S:
        state, reason = dom.state()
        if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_IOERROR:
            probe = Domain(host.uri, domain.uuid, dom.XMLDesc(0),
                           state, reason)
            probe.disk_errors = read_disk_errors(dom, state, reason)
            host.refresh_domain(domain.uuid)
            raise VirtStudioError(
                "The machine paused again: the disk error is still there. "
                + describe_faults(probe, list(host.pools.values())),
                f"state {state}, reason {reason}, disk errors {probe.disk_errors}")
        if state == libvirt.VIR_DOMAIN_RUNNING:
            running_since = waited if running_since is None else running_since
            if waited - running_since >= RESUME_SETTLED_S:
                return
        else:
            running_since = None
        job.wait(0.1)
        waited += 0.1


_SIMPLE: dict[Action, Callable[[libvirt.virDomain], object]] = {
    Action.START: lambda dom: dom.create(),
    Action.PAUSE: lambda dom: dom.suspend(),
    Action.RESUME: _resume,
    Action.REBOOT: lambda dom: dom.reboot(0),
    Action.FORCE_OFF: lambda dom: dom.destroy(),
}


def run_action(runner: JobRunner, host: HostConnection, domain: Domain, action: Action,
               delete_plan: DeletePlan | None = None) -> Job:
    """Start ``action`` on ``domain`` as a job and return the job at once.

    A delete needs the plan the user confirmed (``ask_delete``, then ``pick``).
    """
    if action is Action.DELETE and delete_plan is None:
        raise VirtStudioError("A delete needs the list of what is lost, confirmed first.")
    agreed = delete_plan
    uuid, name = domain.uuid, domain.name
    title = f"{action.value} {name}"

    def work(job: Job) -> None:
        if action is Action.DELETE and agreed is not None:
            delete_domain(job, host, uuid, agreed)
        else:
            dom = host.virconn.lookupByUUIDString(uuid)
            if action is Action.SHUTDOWN:
                _shutdown(job, dom)
            elif action is Action.RESUME:
                job.report(None, f"{action.value}: {name}")
                _resume_checked(job, host, domain, dom)
            else:
                job.report(None, f"{action.value}: {name}")
                _SIMPLE[action](dom)
        host.refresh_domain(uuid)

    return runner.submit(title, work, host=host.name, target=name,
                         cancellable=action is Action.SHUTDOWN)
