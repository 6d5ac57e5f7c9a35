"""Every class edited in place: only the asked fields change (expected-XML pairs)."""

from __future__ import annotations

import pytest

from tests.xml.pairs import DATA, check_pair
from virtstudio.xml import (
    Disk,
    Domain,
    Interface,
    Network,
    Pool,
    Volume,
    make,
    namespaced,
    parse_element,
    to_text,
)
from virtstudio.xml.network import DhcpHost


@pytest.mark.parametrize("path", sorted(DATA.glob("*-in.xml")), ids=lambda p: p.stem)
def test_parse_and_write_back_unchanged(path):
    text = path.read_text()
    assert to_text(parse_element(text)) + "\n" == text


def edit_domain(d: Domain) -> None:
    d.title = "Web & <friends>"
    d.description = "edited"
    d.on_poweroff = "destroy"
    entry = namespaced("http://virtstudio.org/xmlns/groups/1.0", "virtstudio", "groups")
    d.metadata.put(entry)
    d.ensure("current_memory").kib = 1048576


def edit_cpu(d: Domain) -> None:
    d.vcpu.count = 8
    d.vcpu.current = None
    topology = d.cpu.ensure("topology")
    topology.sockets, topology.cores, topology.threads = 1, 4, 2
    d.cpu.mode = "host-passthrough"
    d.cpu.check = None


def edit_memory(d: Domain) -> None:
    d.memory.kib = 8 * 1024 * 1024
    d.current_memory.kib = 4 * 1024 * 1024
    d.max_memory = None


def edit_boot(d: Domain) -> None:
    d.os.boot_devices = ["hd", "network"]
    d.os.bootmenu = True


def edit_disk(d: Domain) -> None:
    first, _network, cdrom = d.devices.disks
    first.target_bus, first.target_dev = "virtio", "vda"
    first.address = None
    first.cache = "none"
    cdrom.source_file = "/iso/debian.iso"
    d.devices.add(make(Disk, type="file", device="disk", driver_name="qemu",
                       driver_type="raw", source_file="/img/new & <odd>.raw",
                       target_dev="vdc", target_bus="virtio"))


def edit_interface(d: Domain) -> None:
    nic = d.devices.interfaces[0]
    nic.plug("bridge", "br0")
    d.devices.add(make(Interface, type="network", source_network="it's <&>",
                       model="virtio"))


def edit_graphics(d: Domain) -> None:
    spice, vnc, egl = d.devices.graphics
    spice.set_password("s3cret")
    vnc.set_password("")
    d.devices.graphics.remove(egl)


def edit_video(d: Domain) -> None:
    first, second = d.devices.videos
    first.heads = 2
    second.accel3d = None


def edit_sound(d: Domain) -> None:
    d.devices.sounds[0].model = "ich6"


def edit_hostdev(d: Domain) -> None:
    usb, pci = d.devices.hostdevs
    usb.managed = False
    d.devices.hostdevs.remove(pci)
    d.devices.redirdevs[0].remove()


def edit_small(d: Domain) -> None:
    dev = d.devices
    dev.controllers[0].ports = 4
    dev.filesystems[0].readonly = True
    dev.serials[0].target_port = 1
    dev.consoles[0].target_port = 1
    dev.channels[0].source_mode = "bind"
    dev.channels[0].source_path = "/run/agent.sock"
    dev.inputs[0].bus = "usb"
    dev.tpms[0].backend_version = "1.2"
    dev.redirdevs[0].remove()
    dev.watchdogs[0].action = "poweroff"
    dev.memballoons[0].stats_period = 5
    dev.rngs[0].rate_bytes = 1024
    dev.rngs[0].rate_period = 1000


def edit_pool(p: Pool) -> None:
    p.target_path = "/srv/pool"
    p.permissions.mode = "0755"
    p.capacity = None
    p.allocation = None
    p.available = None


def edit_volume(v: Volume) -> None:
    v.capacity_bytes = 20 * 1024**3
    v.format = "raw"
    v.allocation = None


def edit_network(n: Network) -> None:
    n.forward_mode = "route"
    n.bridge_stp = "off"
    n.domain_name = "lab.example"
    ip = n.ips[0]
    ip.ranges[0].end = "192.168.150.100"
    ip.hosts.add(make(DhcpHost, mac="52:54:00:00:00:01", name="web", ip="192.168.150.5"))


PAIRS = [
    ("domain", edit_domain, Domain),
    ("cpu", edit_cpu, Domain),
    ("memory", edit_memory, Domain),
    ("os-boot", edit_boot, Domain),
    ("disk", edit_disk, Domain),
    ("interface", edit_interface, Domain),
    ("graphics", edit_graphics, Domain),
    ("video", edit_video, Domain),
    ("sound", edit_sound, Domain),
    ("hostdev", edit_hostdev, Domain),
    ("small-devices", edit_small, Domain),
    ("pool", edit_pool, Pool),
    ("volume", edit_volume, Volume),
    ("network", edit_network, Network),
]


@pytest.mark.parametrize(("name", "edit", "cls"), PAIRS, ids=[p[0] for p in PAIRS])
def test_edit_changes_only_its_target(name, edit, cls):
    check_pair(name, edit, cls)

