"""Create a machine as one job: the new volume, the definition, and the first start."""

from __future__ import annotations

import contextlib

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.machines.host_caps import HostFacts
from virtstudio.machines.new_vm import HostContext, VmSpec, require_valid, to_domain_xml
from virtstudio.storage.volumes import VolumeSpec, volume_xml


def host_context(host: HostConnection, facts: HostFacts) -> HostContext:
    """The checks' view of ``host``, from what its connection has already read."""
    return HostContext(
        name=host.name,
        facts=facts,
        domain_names=frozenset(d.name for d in list(host.domains.values())),
        pools={p.name: p for p in list(host.pools.values())},
        networks={n.name: n.active for n in list(host.networks.values())},
        local=not uri_mod.parse(host.uri).is_remote,
    )


def _create_volume(job: Job, conn: libvirt.virConnect, spec: VmSpec) -> libvirt.virStorageVol:
    pool = conn.storagePoolLookupByName(spec.disk_pool)
    job.report(0.1, f"Creating {spec.volume_name} ({format_bytes(spec.disk_size)}, thin qcow2) "
                    f"in {spec.disk_pool}")
    volume = pool.createXML(volume_xml(VolumeSpec(spec.volume_name, spec.disk_size)), 0)
    with contextlib.suppress(libvirt.libvirtError):
        pool.refresh(0)  # so the pool's free space shows the new volume
    return volume


def _remove_volume(job: Job, volume: libvirt.virStorageVol) -> None:
    try:
        pool = volume.storagePoolLookupByVolume()
        volume.delete(0)
        pool.refresh(0)
        job.log(f"Removed {volume.name()} again")
    except libvirt.libvirtError as exc:
        job.log(f"Could not remove {volume.name()}: {exc.get_error_message()}")


def _define(conn: libvirt.virConnect, xml: str) -> libvirt.virDomain:
    """Define ``xml``, checked against libvirt's schema where the driver can do that."""
    try:
        return conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
            raise
    return conn.defineXML(xml)


def create_vm(runner: JobRunner, host: HostConnection, spec: VmSpec, ctx: HostContext) -> Job:
    """Queue the creation of ``spec`` on ``host``; raises VirtStudioError if it is not valid."""
    require_valid(spec, ctx)

    def work(job: Job) -> None:
        conn = host.virconn
        volume = _create_volume(job, conn, spec) if spec.has_new_volume else None
        try:
            xml = to_domain_xml(spec, volume.path() if volume is not None else "")
            job.report(0.5, f"Defining {spec.name}")
            job.log(xml)
            dom = _define(conn, xml)
        except Exception:
            # Nothing half made stays behind: the new disk goes when the definition fails.
            if volume is not None:
                _remove_volume(job, volume)
            raise
        if spec.customize:
            job.report(1.0, f"{spec.name} is defined and not started: customize it, then start it")
            return
        job.report(0.8, f"Starting {spec.name}")
        dom.create()
        job.report(1.0, f"{spec.name} is running")

    return runner.submit(f"Create machine {spec.name}", work, host=host.name, target=spec.name)
