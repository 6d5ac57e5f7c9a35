"""Move a machine from one open connection to another, live while it runs.

The job calls virDomainMigrate3 with both connections (the client drives
the migration), samples virDomainGetJobStats for progress on its own thread,
and cancels with virDomainAbortJob.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner

PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class MigrateOptions:
    live: bool = True  # keep the guest running while its memory is copied
    undefine_source: bool = True  # the definition moves too, rather than being copied
    copy_storage: bool = False  # copy the disks as well (hosts without shared storage)
    address: str = ""  # where the destination listens, e.g. tcp://10.0.0.2 (else its name)


def _is_test_driver(uri: str) -> bool:
    try:
        return uri_mod.parse(uri).is_test
    except VirtStudioError:
        return False


def check_migration(source: HostConnection, domain: Domain,
                    destination: HostConnection | None) -> str:
    """What stops ``domain`` moving to ``destination``; "" when nothing does (cache only)."""
    if destination is None:
        return "Choose the host to move the machine to."
    if destination is source or destination.uri == source.uri:
        return "The machine is on that host already; choose another connection."
    if destination.state is not ConnectionState.CONNECTED:
        return f"{destination.name} is not connected."
    if not (_is_test_driver(source.uri) and _is_test_driver(destination.uri)):
        # libvirt tells hosts apart by their UUID; the name only when a UUID is unknown.
        same = (destination.host_uuid == source.host_uuid
                if destination.host_uuid and source.host_uuid
                else bool(destination.hostname) and destination.hostname == source.hostname)
        if same:
            return (f"Both connections reach the same host ({source.hostname or source.name});"
                    " a machine cannot move to where it already is.")
    if destination.hypervisor and source.hypervisor \
            and destination.hypervisor != source.hypervisor:
        return (f"{destination.name} runs {destination.hypervisor}, not {source.hypervisor}; "
                "the machine cannot run there.")
    for other in list(destination.domains.values()):
        if other.name == domain.name:
            return f"{destination.name} has a machine called {domain.name} already."
        if other.uuid == domain.uuid:
            return f"{destination.name} has this machine already (as {other.name})."
    if not domain.state.is_active and not domain.persistent:
        return "A stopped transient machine no longer exists; there is nothing to move."
    return ""


def address_problem(address: str) -> str:
    """What is wrong with a migration address; "" when it is empty or fine."""
    if not address:
        return ""
    if any(c.isspace() for c in address):
        return "The migration address cannot contain spaces."
    if not address.startswith(("tcp://", "rdma://", "unix://")):
        return "Write the migration address as tcp://host or tcp://host:port."
    return ""


def migration_flags(domain: Domain, options: MigrateOptions) -> int:
    flags = libvirt.VIR_MIGRATE_PERSIST_DEST
    if domain.state.is_active:
        if options.live:
            flags |= libvirt.VIR_MIGRATE_LIVE
        if options.copy_storage:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    else:
        flags |= libvirt.VIR_MIGRATE_OFFLINE
    if options.undefine_source:
        flags |= libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    return flags


def _watch_progress(job: Job, dom: libvirt.virDomain, done: threading.Event) -> None:
    while not done.wait(PROGRESS_INTERVAL_S):
        try:
            stats = dom.jobStats(0)
        except libvirt.libvirtError:
            continue  # no job yet, or it just ended
        total = stats.get("data_total") or stats.get("memory_total") or 0
        processed = stats.get("data_processed") or stats.get("memory_processed") or 0
        if total:
            left = stats.get("data_remaining", total - processed)
            job.report(min(processed / total, 0.99),
                       f"{processed >> 20} of {total >> 20} MiB sent, {left >> 20} MiB left")


def migrate_domain(runner: JobRunner, source: HostConnection, domain: Domain,
                   destination: HostConnection, options: MigrateOptions) -> Job:
    problem = check_migration(source, domain, destination) or address_problem(options.address)
    if problem:
        raise VirtStudioError(problem)
    uuid, name = domain.uuid, domain.name
    params = {libvirt.VIR_MIGRATE_PARAM_URI: options.address} if options.address else {}
    flags = migration_flags(domain, options)
    mode = "live" if flags & libvirt.VIR_MIGRATE_LIVE else (
        "offline" if flags & libvirt.VIR_MIGRATE_OFFLINE else "paused")

    def work(job: Job) -> None:
        dom = source.virconn.lookupByUUIDString(uuid)
        dest_conn = destination.virconn
        job.report(0.0, f"Moving {name} to {destination.name} ({mode})")
        job.on_cancel(lambda: dom.abortJob())
        done = threading.Event()
        watcher = threading.Thread(target=_watch_progress, args=(job, dom, done),
                                   name="migration progress", daemon=True)
        watcher.start()
        try:
            dom.migrate3(dest_conn, params, flags)
        except libvirt.libvirtError as exc:
            if job.cancel_requested:
                job.log(f"Stopped: {exc.get_error_message()}")
                job.check_cancelled()
            raise
        finally:
            done.set()
            watcher.join(5)
            job.on_cancel(None)
        job.report(1.0, f"{name} now runs on {destination.name}" if mode != "offline"
                   else f"{name} is now defined on {destination.name}")
        source.refresh_domain(uuid)
        destination.refresh_domain(uuid)

    return runner.submit(f"Move {name} to {destination.name}", work, host=source.name,
                         target=name, cancellable=True)
