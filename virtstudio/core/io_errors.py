"""Machines that QEMU paused because a disk write failed, and what to tell the user.

QEMU's default error policy stops the guest when a write fails with ENOSPC
(and on other errors where configured) instead of handing the error to the
guest: no data is lost, but the guest stays paused until there is room again.
libvirt reports this as the pause reason ``IOERROR`` and names the failing
disks through ``virDomainGetDiskErrors``.  Everything here works on cached
entities, so the GUI thread may call it without touching libvirt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import libvirt

from virtstudio.core.entities import Domain, DomainState, StoragePool

NO_SPACE = libvirt.VIR_DOMAIN_DISK_ERROR_NO_SPACE


@dataclass(frozen=True)
class DiskFault:
    """One disk QEMU stopped on: its target (vdb), source path and storage pool."""

    target: str
    source: str
    no_space: bool
    pool: StoragePool | None = None

    @property
    def pool_name(self) -> str:
        return self.pool.name if self.pool is not None else ""


def read_disk_errors(dom: libvirt.virDomain, state: int, reason: int) -> dict[str, int]:
    """Which disks a machine paused on an I/O error is stuck on (target -> error code)."""
    if state != libvirt.VIR_DOMAIN_PAUSED or reason != libvirt.VIR_DOMAIN_PAUSED_IOERROR:
        return {}
    try:
        return {str(k): int(v) for k, v in (dom.diskErrors(0) or {}).items()
                if v != libvirt.VIR_DOMAIN_DISK_ERROR_NONE}
    except libvirt.libvirtError:
        return {}  # the pause reason alone still tells the user


def paused_on_io_error(domain: Domain) -> bool:
    return (domain.state is DomainState.PAUSED
            and domain.reason == libvirt.VIR_DOMAIN_PAUSED_IOERROR)


def state_label(domain: Domain) -> str:
    """The state as the machine list shows it: 'Paused (disk full)' rather than 'Paused'."""
    if not paused_on_io_error(domain):
        return domain.state.label
    if any(code == NO_SPACE for code in domain.disk_errors.values()):
        return "Paused (disk full)"
    return "Paused (I/O error)"


def pool_of(path: str, pools: Iterable[StoragePool]) -> StoragePool | None:
    """The pool holding ``path``: a volume with that path, else the pool whose folder has it."""
    if not path:
        return None
    pools = list(pools)
    for pool in pools:
        if any(vol.path == path for vol in pool.volumes):
            return pool
    folder = os.path.dirname(path)
    for pool in pools:
        if pool.target_path and os.path.normpath(pool.target_path) == os.path.normpath(folder):
            return pool
    return None


def faults(domain: Domain, pools: Iterable[StoragePool]) -> list[DiskFault]:
    """The disks ``domain`` is paused on, each with its pool when the host lists one."""
    if not paused_on_io_error(domain):
        return []
    pools = list(pools)
    sources = {d.target: d.source for d in domain.summary.disks}
    return [DiskFault(target, sources.get(target, ""), code == NO_SPACE,
                      pool_of(sources.get(target, ""), pools))
            for target, code in sorted(domain.disk_errors.items())]


def _where(fault: DiskFault) -> str:
    text = f"disk {fault.target}"
    if fault.source:
        text += f" ({fault.source})"
    if fault.pool is not None:
        text += f" in storage pool {fault.pool.name}"
    return text


def _guidance(fault: DiskFault) -> str:
    if not fault.no_space:
        return ("Check the host's storage for errors (dmesg, the disk's health), "
                "fix the cause, then resume the machine.")
    pool = fault.pool
    if pool is not None and pool.pool_type == "logical":
        return (f"Add space to pool {pool.name}: extend its volume group or thin pool "
                "(lvextend), or free space in it, then resume the machine.")
    if pool is not None:
        return (f"Add space to pool {pool.name}: free space on the file system that holds it, "
                "or grow that file system or thin pool, then resume the machine.")
    return ("Add space where the disk image lives: free space or grow the file system "
            "(or extend the thin pool under it), then resume the machine.")


def describe_faults(domain: Domain, pools: Iterable[StoragePool]) -> str:
    """One paragraph naming each failing disk and its pool, and what to do about it."""
    found = faults(domain, pools)
    if not paused_on_io_error(domain):
        return ""
    if not found:
        return (f"{domain.name} was paused after a disk I/O error. Check the host's storage, "
                "add space if a disk is full, then resume the machine.")
    full = [f for f in found if f.no_space]
    what = "its disk is full" if full else "a disk reported an I/O error"
    disks = "; ".join(_where(f) for f in found)
    return f"{domain.name} was paused because {what}: {disks}. {_guidance((full or found)[0])}"
