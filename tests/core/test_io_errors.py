"""Disk-error pauses: labels, the pool of each failing disk, and the advice given."""

from __future__ import annotations

import libvirt

from virtstudio.core.entities import Domain, StoragePool, Volume
from virtstudio.core.io_errors import describe_faults, faults, pool_of, state_label

XML = """<domain type='kvm'><name>web</name><uuid>11111111-2222-3333-4444-555555555555</uuid>
<memory>65536</memory><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/srv/images/web.qcow2'/><target dev='vda'/></disk>
<disk type='block' device='disk'><source dev='/dev/vg0/data'/><target dev='vdb'/></disk>
</devices></domain>"""


def _domain(state: int, reason: int, errors: dict[str, int]) -> Domain:
    dom = Domain("test:///x", "11111111-2222-3333-4444-555555555555", XML, state, reason)
    dom.disk_errors = errors
    return dom


def _pool(name: str, kind: str, path: str, volumes: list[str] = ()) -> StoragePool:
    pool = StoragePool("test:///x", name, f"<pool type='{kind}'><name>{name}</name>"
                       f"<target><path>{path}</path></target></pool>", True, False)
    pool.volumes = [Volume(v.rsplit("/", 1)[-1], v, 1, 1) for v in volumes]
    return pool


PAUSED, IOERROR = libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_IOERROR
NO_SPACE, UNSPEC = libvirt.VIR_DOMAIN_DISK_ERROR_NO_SPACE, libvirt.VIR_DOMAIN_DISK_ERROR_UNSPEC
POOLS = [_pool("images", "dir", "/srv/images"),
         _pool("vg0", "logical", "/dev/vg0", ["/dev/vg0/data"])]


def test_labels_tell_a_full_disk_from_other_pauses():
    assert state_label(_domain(PAUSED, IOERROR, {"vda": NO_SPACE})) == "Paused (disk full)"
    assert state_label(_domain(PAUSED, IOERROR, {"vda": UNSPEC})) == "Paused (I/O error)"
    assert state_label(_domain(PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, {})) == "Paused"
    assert describe_faults(_domain(PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, {}), POOLS) == ""


def test_the_pool_is_found_by_volume_path_or_folder():
    assert pool_of("/dev/vg0/data", POOLS).name == "vg0"
    assert pool_of("/srv/images/web.qcow2", POOLS).name == "images"
    assert pool_of("/elsewhere/disk.img", POOLS) is None
    assert pool_of("", POOLS) is None


def test_advice_names_disk_pool_and_what_to_grow():
    dom = _domain(PAUSED, IOERROR, {"vdb": NO_SPACE})
    (fault,) = faults(dom, POOLS)
    assert (fault.target, fault.source, fault.pool_name) == ("vdb", "/dev/vg0/data", "vg0")
    text = describe_faults(dom, POOLS)
    assert "its disk is full" in text
    assert "disk vdb (/dev/vg0/data) in storage pool vg0" in text
    assert "thin pool" in text and "lvextend" in text

    text = describe_faults(_domain(PAUSED, IOERROR, {"vda": NO_SPACE}), POOLS)
    assert "storage pool images" in text and "Add space to pool images" in text

    text = describe_faults(_domain(PAUSED, IOERROR, {"vda": UNSPEC}), POOLS)
    assert "I/O error" in text and "Add space" not in text

    # The daemon named no disk: the reason alone still gets advice.
    assert "add space" in describe_faults(_domain(PAUSED, IOERROR, {}), POOLS)
