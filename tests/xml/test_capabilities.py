"""DomainCapabilities over real documents from QEMU 7.2 and libvirt 9.0 (virsh domcapabilities)."""

from __future__ import annotations

from pathlib import Path

from virtstudio.machines.device_choices import DISK_BUSES, GRAPHICS, VIDEO_MODELS, choices
from virtstudio.machines.host_caps import (
    DeviceKinds,
    parse_device_kinds,
    parse_domain_capabilities,
)
from virtstudio.xml import DomainCapabilities

DATA = Path(__file__).parent / "data"
Q35 = (DATA / "domcaps-q35.xml").read_text()  # --machine q35 --virttype kvm
PC = (DATA / "domcaps-pc.xml").read_text()  # the default: i440fx


def test_what_the_document_is_about():
    caps = DomainCapabilities.from_xml(Q35)
    assert (caps.emulator, caps.domain_type, caps.machine, caps.arch) == (
        "/usr/bin/qemu-system-x86_64", "kvm", "pc-q35-7.2", "x86_64")
    assert caps.max_vcpus == 288
    assert caps.firmware == ("efi",)
    assert any("OVMF" in p for p in caps.loaders)


def test_device_enums():
    caps = DomainCapabilities.from_xml(Q35)
    assert caps.device_enum("disk", "bus") == ("fdc", "scsi", "virtio", "usb", "sata")
    assert caps.device_enum("disk", "diskDevice") == ("disk", "cdrom", "floppy", "lun")
    assert caps.device_enum("graphics", "type") == ("sdl", "vnc", "spice", "egl-headless",
                                                    "dbus")
    assert caps.device_enum("video", "modelType") == (
        "vga", "cirrus", "vmvga", "qxl", "virtio", "none", "bochs", "ramfb")
    # i440fx has the IDE controller q35 lacks.
    assert "ide" in DomainCapabilities.from_xml(PC).device_enum("disk", "bus")


def test_what_the_document_does_not_say_is_none_and_unsupported_is_empty():
    caps = DomainCapabilities.from_xml(Q35)
    assert caps.device_enum("sound", "model") is None  # no such device kind listed
    assert caps.device_enum("disk", "cache") is None  # no such enum
    empty = caps.device_enum("hostdev", "capsType")
    assert empty == ()
    off = DomainCapabilities.from_xml(
        "<domainCapabilities><devices><graphics supported='no'/></devices>"
        "</domainCapabilities>")
    assert off.device_enum("graphics", "type") == ()
    bare = DomainCapabilities.from_xml("<domainCapabilities/>")
    assert bare.max_vcpus == 0 and bare.firmware == () and bare.device_enum("disk", "bus") \
        is None


def test_uefi_vcpus_and_displays_for_the_new_machine_wizard():
    assert parse_domain_capabilities(Q35) == (
        True, 288, ("sdl", "vnc", "spice", "egl-headless", "dbus"))


def test_editor_lists_familiar_kinds_first_then_the_hosts_others():
    kinds = parse_device_kinds(Q35)
    assert kinds == DeviceKinds(("sdl", "vnc", "spice", "egl-headless", "dbus"),
                                ("vga", "cirrus", "vmvga", "qxl", "virtio", "none", "bochs",
                                 "ramfb"),
                                ("fdc", "scsi", "virtio", "usb", "sata"))
    offered = choices(kinds)
    assert offered.graphics == ("vnc", "spice", "sdl", "egl-headless", "dbus", "none")
    assert offered.video == ("vga", "virtio", "qxl", "bochs", "cirrus", "none", "vmvga",
                             "ramfb")
    assert offered.buses_for("disk") == ("virtio", "sata", "scsi", "usb")
    assert offered.buses_for("cdrom") == ("virtio", "sata", "scsi", "usb")
    assert offered.buses_for("floppy") == ("fdc",)
    assert choices(parse_device_kinds(PC)).buses_for("disk") == (
        "virtio", "sata", "scsi", "usb", "ide")


def test_without_capabilities_the_usual_lists_stand():
    usual = choices(None)
    assert (usual.graphics, usual.video, usual.disk_buses) == (GRAPHICS, VIDEO_MODELS,
                                                               DISK_BUSES)
    assert not usual.from_host
    # An older libvirt that lists no video enum: that list stays the usual one.
    partial = choices(DeviceKinds(graphics=("vnc",)))
    assert partial.graphics == ("vnc", "none") and partial.video == VIDEO_MODELS
