"""Generated hosts for libvirt's test driver, for benchmarks and tests at scale."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt

# Mostly running and shut off, as on a real host, with every other state present.
_STATE_MIX = (
    [libvirt.VIR_DOMAIN_RUNNING] * 10
    + [libvirt.VIR_DOMAIN_SHUTOFF] * 6
    + [libvirt.VIR_DOMAIN_PAUSED] * 2
    + [libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_SHUTDOWN,
       libvirt.VIR_DOMAIN_CRASHED, libvirt.VIR_DOMAIN_PMSUSPENDED]
)
_ROLES = ("web", "db", "cache", "build", "ci", "mail", "proxy", "queue", "search", "desk")
_NS = "http://libvirt.org/schemas/domain/test/1.0"


def _domain(index: int, rng: random.Random, networks: int) -> str:
    name = f"{_ROLES[index % len(_ROLES)]}-{index:05d}"
    state = _STATE_MIX[index % len(_STATE_MIX)]
    vcpus = rng.choice((1, 1, 2, 2, 4, 8))
    memory_mib = rng.choice((256, 512, 1024, 2048, 4096, 8192))
    net = f"net{index % networks}" if networks else ""
    nic = (f"<interface type='network'><source network='{net}'/>"
           f"<mac address='52:54:00:{index >> 16 & 255:02x}:{index >> 8 & 255:02x}:"
           f"{index & 255:02x}'/></interface>") if net else ""
    return (
        f"<domain type='test'><name>{escape(name)}</name>"
        f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><source file='/images/{name}.qcow2'/>"
        f"<target dev='vda' bus='virtio'/></disk>{nic}</devices>"
        f"<test:runstate>{state}</test:runstate></domain>"
    )


def generate_fixture(domains: int, *, pools: int = 3, networks: int = 3, seed: int = 0) -> str:
    """Test-driver XML for a host with ``domains`` machines in a fixed mix of states."""
    rng = random.Random(seed)
    parts = [f"<node xmlns:test='{_NS}'>"]
    parts.extend(_domain(i, rng, networks) for i in range(domains))
    for p in range(pools):
        volumes = "".join(
            f"<volume type='file'><name>vol{v}.qcow2</name>"
            f"<capacity unit='GiB'>{10 * (v + 1)}</capacity>"
            f"<allocation unit='MiB'>{256 * (v + 1)}</allocation></volume>"
            for v in range(3))
        parts.append(f"<pool type='dir'><name>pool{p}</name>"
                     f"<target><path>/images/pool{p}</path></target>{volumes}</pool>")
    for n in range(networks):
        parts.append(f"<network><name>net{n}</name><forward mode='nat'/>"
                     f"<bridge name='vsbr{n}'/>"
                     f"<ip address='10.{n}.0.1' netmask='255.255.255.0'/></network>")
    parts.append("</node>")
    return "\n".join(parts)


def write_fixture(path: Path, domains: int, **kwargs: int) -> Path:
    path.write_text(generate_fixture(domains, **kwargs), encoding="utf-8")
    return path
