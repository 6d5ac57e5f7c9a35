"""Pool actions as jobs: create, build, start, stop, refresh, autostart, delete, discovery.

Each job looks its pool up by UUID on the job thread through the host's open
connection, and asks the host to read the pool again afterwards, since build
and autostart changes send no libvirt event.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from concurrent.futures import Future

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.storage.delete_plans import DeletePlan, check_unchanged, plan_pool
from virtstudio.storage.pools import (
    FoundSource,
    PoolSpec,
    check_pool_spec,
    discovery_xml,
    parse_found_sources,
    pool_xml,
)

# A build that would overwrite what is on the device (a partition table, a
# file system) is refused by libvirt with this flag; the user must clear it first.
_SAFE_BUILD = {"disk", "fs", "logical"}


class PoolAction(enum.Enum):
    START = "Start"
    STOP = "Stop"
    REFRESH = "Refresh"
    BUILD = "Build"
    AUTOSTART_ON = "Autostart on"
    AUTOSTART_OFF = "Autostart off"


def allowed_actions(pool: StoragePool) -> set[PoolAction]:
    if pool.active:
        actions = {PoolAction.STOP, PoolAction.REFRESH}
    else:
        actions = {PoolAction.START, PoolAction.BUILD}
    actions.add(PoolAction.AUTOSTART_OFF if pool.autostart else PoolAction.AUTOSTART_ON)
    return actions


def _build_flags(pool_type: str) -> int:
    return libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE if pool_type in _SAFE_BUILD else 0


def create_pool(runner: JobRunner, host: HostConnection, spec: PoolSpec, *, build: bool = True,
                start: bool = True, autostart: bool = False) -> Job:
    """Define the pool, then build, start and mark it autostart as asked.

    When building or starting fails the definition is removed again, so a
    failed attempt leaves nothing behind.
    """
    problem = check_pool_spec(spec, {p.name for p in list(host.pools.values())})
    if problem:
        raise VirtStudioError(problem)
    xml = pool_xml(spec)

    def work(job: Job) -> None:
        job.log(xml)
        conn = host.virconn
        pool = conn.storagePoolDefineXML(xml, 0)
        try:
            if build:
                job.report(0.2, f"Building {spec.name} ({spec.type})")
                pool.build(_build_flags(spec.type))
            if start:
                job.report(0.6, f"Starting {spec.name}")
                pool.create(0)
            if autostart:
                pool.setAutostart(1)
        except Exception:
            job.log("Removing the new definition again")
            if pool.isActive():
                pool.destroy()
            pool.undefine()
            raise
        host.refresh_pool(pool.UUIDString())

    return runner.submit(f"Create pool {spec.name}", work, host=host.name, target=spec.name)


def run_pool_action(runner: JobRunner, host: HostConnection, pool: StoragePool,
                    action: PoolAction) -> Job:
    uuid, name, pool_type = pool.uuid, pool.name, pool.pool_type
    calls: dict[PoolAction, Callable[[libvirt.virStoragePool], object]] = {
        PoolAction.START: lambda p: p.create(0),
        PoolAction.STOP: lambda p: p.destroy(),
        PoolAction.REFRESH: lambda p: p.refresh(0),
        PoolAction.BUILD: lambda p: p.build(_build_flags(pool_type)),
        PoolAction.AUTOSTART_ON: lambda p: p.setAutostart(1),
        PoolAction.AUTOSTART_OFF: lambda p: p.setAutostart(0),
    }

    def work(job: Job) -> None:
        job.report(None, f"{action.value}: {name}")
        calls[action](host.virconn.storagePoolLookupByUUIDString(uuid))
        host.refresh_pool(uuid)

    return runner.submit(f"{action.value} pool {name}", work, host=host.name, target=name)


def ask_delete_pool(host: HostConnection, pool: StoragePool) -> Future[dict[bool, DeletePlan]]:
    """Work out on the host's worker what deleting the pool loses, without and with its data."""
    uuid = pool.uuid
    return host.call(lambda conn: {False: plan_pool(conn, uuid, False),
                                   True: plan_pool(conn, uuid, True)})


def delete_pool(runner: JobRunner, host: HostConnection, pool: StoragePool, plan: DeletePlan,
                *, with_data: bool) -> Job:
    """Forget the pool; with ``with_data`` delete exactly the volumes ``plan`` names first.

    The job works the plan out again before touching anything (and once more after
    starting a stopped pool to delete its volumes) and stops, changing nothing, when
    it would delete something else or something became used.
    """
    if plan.blocked:
        raise VirtStudioError(plan.blocked)
    uuid, name = pool.uuid, pool.name

    def work(job: Job) -> None:
        conn = host.virconn
        check_unchanged(plan_pool(conn, uuid, with_data), plan)
        target = conn.storagePoolLookupByUUIDString(uuid)
        if with_data:
            if not target.isActive():
                job.report(None, f"Starting {name} to delete the volumes listed")
                target.create(0)
                try:
                    check_unchanged(plan_pool(conn, uuid, True), plan)
                except BaseException:
                    job.log(f"Stopping {name} again")
                    target.destroy()
                    raise
            volumes = {os.path.normpath(v.path()): v for v in target.listAllVolumes(0)}
            for loss in plan.lost:  # exactly what was agreed, nothing that came later
                if loss.path not in volumes:
                    job.log(f"{loss.path} is gone already")
                    continue
                job.report(None, f"Deleting volume {loss.path}")
                volumes[loss.path].delete(0)
        if target.isActive():
            job.report(None, f"Stopping {name}")
            target.destroy()
        if with_data:
            job.report(None, f"Removing the storage of {name}")
            try:
                target.delete(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                job.log("This pool type keeps its storage when deleted")
        if target.isPersistent():
            target.undefine()
        host.refresh_pool(uuid)

    return runner.submit(f"Delete pool {name}", work, host=host.name, target=name)


def find_sources(host: HostConnection, pool_type: str, server: str = ""
                 ) -> Future[list[FoundSource]]:
    """Ask libvirt which sources of ``pool_type`` it can see (on ``server``)."""
    spec = discovery_xml(pool_type, server)

    def ask(conn: libvirt.virConnect) -> list[FoundSource]:
        return parse_found_sources(pool_type, conn.findStoragePoolSources(pool_type, spec, 0))

    return host.call(ask)
