"""Create a machine as one job: the new volume, the definition, and the first start.

An imported or existing image comes with the backing chain the user was
shown and the backing files outside the pools they named; the job reads the
chain again and refuses when it changed or needs a file nobody named.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection

import libvirt

from virtstudio.core import uri as uri_mod
from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError, connection_lost, lost_connection_error
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.units import format_bytes
from virtstudio.machines import import_image
from virtstudio.machines.host_caps import HostFacts
from virtstudio.machines.new_vm import (
    HostContext,
    VmSpec,
    checked_image_chain,
    require_valid,
    to_domain_xml,
)
from virtstudio.storage.backing_chains import ChainReview
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


def _create_volume(conn: libvirt.virConnect, spec: VmSpec) -> libvirt.virStorageVol:
    pool = conn.storagePoolLookupByName(spec.disk_pool)
    volume = pool.createXML(volume_xml(VolumeSpec(spec.volume_name, spec.disk_size)), 0)
    with contextlib.suppress(libvirt.libvirtError):
        pool.refresh(0)  # so the pool's free space shows the new volume
    return volume


def _remove_volume(job: Job, volume: libvirt.virStorageVol) -> bool:
    try:
        pool = volume.storagePoolLookupByVolume()
        volume.delete(0)
        pool.refresh(0)
        job.log(f"Removed {volume.name()} again")
    except libvirt.libvirtError as exc:
        job.log(f"Could not remove {volume.name()}: {exc.get_error_message()}")
        return False
    return True


def _define(conn: libvirt.virConnect, xml: str) -> libvirt.virDomain:
    """Define ``xml``, checked against libvirt's schema where the driver can do that."""
    try:
        return conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
            raise
    return conn.defineXML(xml)


def _check_image(spec: VmSpec, chain: ChainReview | None, confirmed: Collection[str]) -> None:
    """Refuse an image whose shown chain is missing, another image's, or not confirmed."""
    if checked_image_chain(spec, chain) is None:
        path = (spec.existing_image or ("the image", ""))[0]
        raise VirtStudioError(f"The backing chain of {path} was not read; nothing was created.")
    problem = import_image.chain_problem(chain, confirmed)
    if problem:
        raise VirtStudioError(problem)


class _CreateSteps:
    """What a create job has sent so far, to say what is left when the daemon goes away."""

    def __init__(self, job: Job, host: str, spec: VmSpec) -> None:
        self.job, self.host, self.spec = job, host, spec
        self.step = "preparation"
        self.done: list[str] = []
        self.volume: str | None = None  # sent to the pool; it may have arrived
        self.volume_path = ""  # known once the pool answered
        self.defined = False  # sent; it may have arrived
        self.volume_removed = False

    def begin(self, step: str, progress: float) -> None:
        self.step = step
        self.job.report(progress, step[0].upper() + step[1:])

    def lost(self, exc: BaseException) -> VirtStudioError:
        spec = self.spec
        image = spec.existing_image[0] if spec.existing_image is not None else ""
        keep = f" (keep {image}: it was not changed)" if image else ""
        left: list[str] = []
        if self.defined:
            started = self.step.startswith("starting")
            machine = (f"the machine {spec.name}, defined and perhaps not running: start it, or "
                       if started else f"the machine {spec.name}, if it is listed: ")
            with_disk = f" with its disk {self.volume}" if self.volume else ""
            left.append(f"{machine}delete it{with_disk} before creating it again{keep}")
        if self.volume and not self.volume_removed:
            where = f" ({self.volume_path})" if self.volume_path else ""
            listed = "" if self.volume_path else ", if it is listed"
            left.append(f"the volume {self.volume}{where} in {spec.disk_pool}{listed}: "
                        "delete it" + (f" together with {spec.name}" if self.defined else ""))
        not_done = [self.step]
        if not self.step.startswith("starting") and not spec.customize:
            not_done.append(f"starting {spec.name}")
        if image and not left:
            not_done.append(f"{image} was not changed")
        return lost_connection_error(exc, self.host, self.step, self.done, not_done, left)


def _create_and_start(job: Job, conn: libvirt.virConnect, spec: VmSpec,
                      fresh: ChainReview | None, steps: _CreateSteps) -> None:
    volume = None
    job.check_cancelled()
    if spec.has_new_volume:
        steps.begin(f"creating {spec.volume_name} ({format_bytes(spec.disk_size)}, thin qcow2) "
                    f"in {spec.disk_pool}", 0.1)
        steps.volume = spec.volume_name
        volume = _create_volume(conn, spec)
        steps.volume_path = volume.path()
        steps.done.append(f"created {steps.volume_path}")
    try:
        xml = to_domain_xml(spec, volume.path() if volume is not None else "",
                            image_chain=fresh)
        job.check_cancelled()
        # A definition sent cannot be taken back, and a start cut short is a machine
        # half booted: from here the job runs to its end.
        job.refuse_cancel(f"{spec.name} is being defined"
                          + ("" if spec.customize else " and started")
                          + f"; delete {spec.name} afterwards to undo it")
        job.check_cancelled()  # a cancel that came just before still counts
        steps.begin(f"defining {spec.name}", 0.5)
        job.log(xml)
        steps.defined = True
        dom = _define(conn, xml)
        steps.done.append(f"defined {spec.name}")
    except Exception as exc:
        # Nothing half made stays behind: the new disk goes when the definition fails
        # or the job is cancelled before it.
        if volume is not None and not connection_lost(exc):
            steps.volume_removed = _remove_volume(job, volume)
        raise
    if spec.customize:
        job.report(1.0, f"{spec.name} is defined and not started: customize it, then start it")
        return
    steps.begin(f"starting {spec.name}", 0.8)
    dom.create()
    job.report(1.0, f"{spec.name} is running")


def create_vm(runner: JobRunner, host: HostConnection, spec: VmSpec, ctx: HostContext,
              image_chain: ChainReview | None = None, confirmed: Collection[str] = ()) -> Job:
    """Queue the creation of ``spec`` on ``host``; raises VirtStudioError if it is not valid.

    An imported or existing image needs ``image_chain``, its backing chain as the
    user saw it (``import_image.review_import``), and in ``confirmed`` each backing
    file outside the pools whose name they typed.
    """
    require_valid(spec, ctx)
    if spec.existing_image is not None:
        _check_image(spec, image_chain, confirmed)
    confirmed = frozenset(confirmed)

    def work(job: Job) -> None:
        conn = host.virconn
        fresh = None
        if image_chain is not None and spec.existing_image is not None:
            job.report(0.05, f"Reading the backing chain of {image_chain.top.path} again")
            site = import_image.import_site(host.uri, list(host.pools.values()))
            fresh = import_image.recheck(image_chain, site, confirmed)
            job.check_cancelled()
        steps = _CreateSteps(job, host.name, spec)
        try:
            _create_and_start(job, conn, spec, fresh, steps)
        except Exception as exc:
            if not connection_lost(exc):
                raise
            raise steps.lost(exc) from exc

    return runner.submit(f"Create machine {spec.name}", work, host=host.name, target=spec.name,
                         cancellable=True)
