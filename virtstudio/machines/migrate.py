"""Move a machine from one open connection to another, live while it runs.

The job calls virDomainMigrate3 with both connections (the client drives
the migration), samples virDomainGetJobStats for progress on its own thread,
and cancels with virDomainAbortJob.

When a daemon dies mid-move the job asks each side where the machine is
now and says so: libvirt itself ends an unfinished migration when a daemon
starts again (the destination drops its half-received copy, the source lets
the machine run on), so what is left is named from what each side answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError, connection_lost, lost_connection_error
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


_STATES = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused"}


def _state_of(conn: libvirt.virConnect, uuid: str) -> str | None:
    """"running", "paused", "stopped" or "absent" on ``conn``; None when it cannot answer."""
    try:
        state = conn.lookupByUUIDString(uuid).state()[0]
    except libvirt.libvirtError as exc:
        return None if connection_lost(exc) else "absent"
    return _STATES.get(state, "stopped")


def _lost_during_move(exc: libvirt.libvirtError, src: libvirt.virConnect,
                      dest: libvirt.virConnect, source: str, destination: str, uuid: str,
                      name: str) -> VirtStudioError:
    """Where the machine is after a daemon died mid-move, as done / not done / left."""
    there, here = _state_of(dest, uuid), _state_of(src, uuid)
    lost = source if here is None else destination
    step = f"moving {name} to {destination}"
    done: list[str] = []
    not_done: list[str] = []
    left: list[str] = []
    if there in ("running", "paused"):
        done.append(f"{name} {'runs' if there == 'running' else 'is paused'} on {destination}")
        if here is None:
            left.append(f"{name} on {source}, if it is listed there once its daemon is back: "
                        "it was not told the move finished; stop it there and delete its "
                        "definition without its disks, which the moved machine uses")
        elif here != "absent":
            left.append(f"{name}'s old definition on {source}: delete it without its disks, "
                        "which the moved machine uses")
    elif here is None and there is None:
        not_done.append(f"whether {name} moved cannot be read while both daemons are away")
        left.append(f"{name} runs on one of {source} and {destination} once their daemons "
                    "are back: look on both")
    else:
        not_done.append(step)
        if here is None:
            not_done.append(f"{name} stays on {source}, whose daemon ends any unfinished move "
                            "when it starts again")
        else:
            not_done.append(f"{name} is still {here} on {source}")
            if here == "paused":
                left.append(f"{name} is paused on {source}: resume it there")
        if there is None:
            left.append(f"any unfinished copy on {destination}: its daemon discards it when "
                        "it starts again")
    return lost_connection_error(exc, lost, step, done, not_done, left)


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
        # Held: a daemon that dies mid-move must not have its connection closed under
        # migrate3, which uses both.
        with source.held() as src_conn, destination.held() as dest_conn:
            _move(job, src_conn, dest_conn)
        job.report(1.0, f"{name} now runs on {destination.name}" if mode != "offline"
                   else f"{name} is now defined on {destination.name}")
        source.refresh_domain(uuid)
        destination.refresh_domain(uuid)

    def _move(job: Job, src_conn: libvirt.virConnect, dest_conn: libvirt.virConnect) -> None:
        dom = src_conn.lookupByUUIDString(uuid)
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
            if connection_lost(exc):
                raise _lost_during_move(exc, src_conn, dest_conn, source.name,
                                        destination.name, uuid, name) from exc
            raise
        finally:
            done.set()
            watcher.join(5)
            job.on_cancel(None)

    return runner.submit(f"Move {name} to {destination.name}", work, host=source.name,
                         target=name, cancellable=True)
