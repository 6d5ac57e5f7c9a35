"""Create and delete volumes in a libvirt pool, thin by default, with checks first."""

from __future__ import annotations

import re
from concurrent.futures import Future
from dataclasses import dataclass
from xml.sax.saxutils import escape

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.storage.delete_plans import DeletePlan, check_unchanged, plan_volume

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
PREALLOCATION = ("off", "metadata", "falloc", "full")


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    size: int
    format: str = "qcow2"
    preallocation: str = "off"
    backing_path: str = ""  # a linked clone: an overlay on this volume
    backing_format: str = ""


def check_spec(spec: VolumeSpec, pool: StoragePool) -> str:
    """What is wrong with ``spec`` for ``pool`` in plain words; "" when nothing is.

    Thin volumes may promise more than the pool holds (that is the point), but a
    fully allocated one must fit in what is free now.
    """
    if not _NAME_RE.fullmatch(spec.name):
        return ("Use a name of letters, digits, dots, dashes, underscores or plus signs "
                "(no spaces or slashes), starting with a letter or digit.")
    if any(v.name == spec.name for v in pool.volumes):
        return f"The pool {pool.name} has a volume called {spec.name} already."
    if spec.format not in ("qcow2", "raw"):
        return f"Unknown format {spec.format}."
    if spec.preallocation not in PREALLOCATION:
        return f"Unknown preallocation {spec.preallocation}."
    if spec.backing_path and spec.format != "qcow2":
        return "A linked clone is a qcow2 overlay: choose the qcow2 format."
    if spec.size <= 0:
        return "A volume needs a size above zero."
    if spec.preallocation in ("falloc", "full") and spec.size > pool.available:
        return (f"A fully allocated {format_bytes(spec.size)} volume does not fit: the pool "
                f"has {format_bytes(pool.available)} free. Thin provisioning (off) would.")
    return ""


def volume_xml(spec: VolumeSpec) -> str:
    full = spec.preallocation in ("falloc", "full")
    backing = ""
    if spec.backing_path:
        backing = (f"<backingStore><path>{escape(spec.backing_path)}</path>"
                   f"<format type='{escape(spec.backing_format or 'qcow2')}'/></backingStore>")
    return (f"<volume><name>{escape(spec.name)}</name>"
            f"<capacity unit='bytes'>{spec.size}</capacity>"
            f"<allocation unit='bytes'>{spec.size if full else 0}</allocation>"
            f"<target><format type='{spec.format}'/></target>{backing}</volume>")


def _pool(host: HostConnection, uuid: str) -> libvirt.virStoragePool:
    return host.virconn.storagePoolLookupByUUIDString(uuid)


def create_volume(runner: JobRunner, host: HostConnection, pool: StoragePool,
                  spec: VolumeSpec) -> Job:
    problem = check_spec(spec, pool)
    if problem:
        raise VirtStudioError(problem)
    uuid = pool.uuid

    def work(job: Job) -> None:
        job.report(None, f"Creating {spec.name} ({format_bytes(spec.size)}, {spec.format}, "
                         f"preallocation {spec.preallocation})")
        flags = 0
        if spec.preallocation == "metadata" and spec.format == "qcow2":
            flags |= libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
        target = _pool(host, uuid)
        target.createXML(volume_xml(spec), flags)
        target.refresh(0)

    return runner.submit(f"Create volume {spec.name}", work, host=host.name, target=spec.name)


def volume_users(host: HostConnection, pool: StoragePool, name: str) -> list[str]:
    """Machines whose listed disks are the volume itself, from the cache (for display).

    Deleting asks the full usage graph instead (delete_plans.plan_volume).
    """
    volume = next((v for v in pool.volumes if v.name == name), None)
    if volume is None:
        return []
    sources = {volume.path, f"{pool.name}/{name}"}
    return sorted(d.name for d in list(host.domains.values())
                  if any(disk.source in sources for disk in d.summary.disks))


def ask_delete_volume(host: HostConnection, pool: StoragePool, name: str) -> Future[DeletePlan]:
    """Work out on the host's worker what deleting the volume loses, or who uses it."""
    return host.call(plan_volume, pool.uuid, name)


def delete_volume(runner: JobRunner, host: HostConnection, pool: StoragePool,
                  plan: DeletePlan) -> Job:
    """Delete the volume the user agreed to in ``plan``, if that is still all it loses."""
    if plan.blocked:
        raise VirtStudioError(plan.blocked)
    uuid = pool.uuid
    ((_path, _pool_name, name),) = plan.volumes_lost()

    def work(job: Job) -> None:
        # Work it out again: a machine may have been given the volume meanwhile.
        fresh = check_unchanged(plan_volume(host.virconn, uuid, name), plan)
        for path, _pool_name, vol_name in fresh.volumes_lost():
            target = _pool(host, uuid)
            job.report(None, f"Deleting {path}")
            target.storageVolLookupByName(vol_name).delete(0)
            target.refresh(0)

    return runner.submit(f"Delete volume {name}", work, host=host.name, target=name)
