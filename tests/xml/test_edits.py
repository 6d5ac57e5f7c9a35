"""Each hardware change of the editor, as expected XML: it touches only its target.

The inputs are what ``domain_edit`` reads (the saved configuration with its
secrets); the outputs are exactly what it defines.
"""

from __future__ import annotations

import pytest

from tests.xml.pairs import check_pair
from virtstudio.core.errors import VirtStudioError
from virtstudio.machines import config_edits as ce
from virtstudio.machines import domain_edit as de
from virtstudio.network.vm_nics import move_interface, moved_interface_xml, new_interface_xml
from virtstudio.xml import Domain
from virtstudio.xml.domain import boot_order


def change(*changes: de.Change):
    def edit(domain: Domain) -> None:
        for one in changes:
            de.edit_config(one, domain)
    return edit


EDITS = [
    # vCPUs below the hot-plug maximum: only ``current`` moves.
    ("edit-vcpus-current", "edit", change(de.SetVcpus(3))),
    # A new maximum: ``current`` goes and the topology multiplies to it.
    ("edit-vcpus-maximum", "edit", change(de.SetVcpus(8))),
    ("edit-vcpus-topology", "edit-vcpus", change(de.SetVcpus(6))),
    # Raising the maximum keeps the current size to the KiB, and dumpCore.
    ("edit-memory-maximum", "edit", change(de.SetMemory(3072, 8192))),
    ("edit-memory-current", "edit", change(de.SetMemory(2048, 4096))),
    ("edit-memory-new", "edit-bare", change(de.SetMemory(512, 2048))),
    ("edit-boot-global", "edit-bare", change(de.SetBootOrder(("cdrom", "hd")))),
    ("edit-boot-global-again", "os-boot", change(de.SetBootOrder(("network",)))),
    # Per-device boot orders stay per device (libvirt refuses both kinds at once).
    ("edit-boot-per-device", "edit-boot-devices",
     change(de.SetBootOrder(("hd", "cdrom", "network")))),
    # SPICE to VNC in place: other displays, listen, port, keymap, password stay;
    # SPICE's channels, USB redirection and audio backend go.
    ("edit-graphics-vnc", "edit", change(de.SetGraphics("vnc"))),
    ("edit-graphics-spice", "edit-vnc", change(de.SetGraphics("spice"))),
    ("edit-graphics-none", "edit", change(de.SetGraphics("none"))),
    ("edit-graphics-new", "edit-bare", change(de.SetGraphics("vnc"))),
    ("edit-password-set", "edit", change(de.SetDisplayPassword("n3w&<pw>"))),
    ("edit-password-remove", "edit", change(de.SetDisplayPassword(""))),
    # The primary card changes model; its address and the second card stay.
    ("edit-video", "edit", change(de.SetVideo("virtio"))),
    ("edit-video-none", "edit", change(de.SetVideo("none"))),
    ("edit-video-new", "edit-bare", change(de.SetVideo("vga"))),
    # A new bus keeps the cache mode; a cache change keeps the bus (fdc too).
    ("edit-disk-bus", "edit", change(de.ChangeDisk("sda", "virtio", None))),
    ("edit-disk-cache", "edit", change(de.ChangeDisk("fda", None, "none"),
                                       de.ChangeDisk("sda", "sata", "default"))),
    ("edit-disk-remove", "edit", change(de.RemoveDisk("fda"))),
    # A cdrom changes the first boot order number on a machine that orders devices.
    ("edit-boot-nic-first", "edit", change(de.SetBootOrder(("network", "hd")))),
    # A new source keeps address, boot order, driver, virtualport, model, link, mtu, rom.
    ("edit-nic-source", "edit", change(de.SetNic("bridge", "br0", "ne2k_pci",
                                                 "52:54:00:11:22:33", "52:54:00:11:22:33"))),
    ("edit-nic-model", "edit", change(de.SetNic("network", "default", "e1000e", "",
                                                "52:54:00:11:22:33"))),
    ("edit-nic-add", "edit", change(de.SetNic("network", "it's <&> net"))),
    ("edit-nic-remove", "edit", change(de.RemoveNic("52:54:00:44:55:66"))),
    # The Networks page's "connect to": the card keeps all but its connection.
    ("edit-nic-connect", "edit",
     lambda d: move_interface(d, "52:54:00:11:22:33", "network", "it's <&>")),
]


@pytest.mark.parametrize(("name", "source", "edit"), EDITS, ids=[e[0] for e in EDITS])
def test_edit(name, source, edit):
    check_pair(name, edit, Domain, source)


def test_a_passed_through_card_is_not_moved():
    from tests.xml.pairs import read

    domain = Domain.from_xml(read("edit-in.xml"))
    before = domain.to_xml()
    with pytest.raises(VirtStudioError, match="hostdev card"):
        de.edit_config(de.SetNic("network", "default", "virtio", "",
                                 "52:54:00:44:55:66"), domain)
    assert domain.to_xml() == before


def test_a_new_disk_is_written_whole():
    disk = ce.new_disk("vdc", "virtio", "/img/it's <&>.qcow2", "qcow2", "none")
    assert disk.to_xml() == ('<disk type="file" device="disk"><driver name="qemu" '
                             'type="qcow2" cache="none"/><source file="/img/it\'s &lt;&amp;'
                             '&gt;.qcow2"/><target dev="vdc" bus="virtio"/></disk>')


def test_boot_order_reads_per_device_orders():
    from tests.xml.pairs import read

    domain = Domain.from_xml(read("edit-boot-devices-in.xml"))
    assert boot_order(domain) == ("network", "hd")


@pytest.mark.parametrize(("sockets", "dies", "cores", "threads", "count", "expect"), [
    (1, None, 2, 2, 8, (1, None, 4, 2)),
    (2, 1, 2, 1, 6, (2, 1, 3, 1)),
    (2, None, 2, 2, 6, (1, None, 3, 2)),
    (1, 1, 2, 2, 5, (1, 1, 5, 1)),
])
def test_topology_follows_the_vcpus(sockets, dies, cores, threads, count, expect):
    from virtstudio.xml import Topology, make

    topology = make(Topology, sockets=sockets, dies=dies, cores=cores, threads=threads)
    ce.fit_topology(topology, count)
    assert (topology.sockets, topology.dies, topology.cores, topology.threads) == expect
    assert topology.total == count


def test_live_and_new_cards_for_connect():
    from tests.xml.pairs import read

    live = read("edit-in.xml").replace(
        "<link state=", '<target dev="vnet3"/><alias name="net0"/><link state=')
    moved = moved_interface_xml(live, "52:54:00:11:22:33", "bridge", "br0")
    assert "vnet3" not in moved and "net0" not in moved
    assert '<source bridge="br0"/>' in moved and '<boot order="1"/>' in moved
    assert new_interface_xml("network", "a'b&<c>") == (
        '<interface type="network"><source network="a\'b&amp;&lt;c&gt;"/>'
        '<model type="virtio"/></interface>')
