"""UEFI and a foreign architecture for real: machines made from the New VM wizard's
specification on the real libvirtd boot OVMF (the lab kernel then runs on EFI) and,
on this x86_64 host, an emulated aarch64 machine runs its own UEFI firmware."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import READY_MARKER, SerialConsole
from virtstudio.machines import host_caps
from virtstudio.machines.new_vm import (
    DiskChoice,
    InstallSource,
    NetworkChoice,
    VmSpec,
    to_domain_xml,
)

FIRMWARE_DESCRIPTORS = Path("/usr/share/qemu/firmware")


def _firmware_for(arch: str) -> str:
    """Why no UEFI firmware for ``arch`` is installed here, or ""."""
    if not any(arch in p.name for p in FIRMWARE_DESCRIPTORS.glob("*.json")):
        package = "ovmf" if arch == "x86_64" else "qemu-efi-aarch64"
        return f"no UEFI firmware for {arch} (package {package})"
    return ""


def _run(spec: VmSpec, check) -> object:
    """Start ``spec`` paused, read its serial console from the first byte, run ``check``."""
    def work():
        conn = libvirt.open(SYSTEM_URI)
        # Defined, not transient: undefining with its NVRAM is how libvirt removes the
        # variables file it made for the machine (destroying a transient one keeps it).
        dom = conn.defineXML(to_domain_xml(spec))
        try:
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
            live = ET.fromstring(dom.XMLDesc(0))
            with SerialConsole(dom) as console:
                dom.resume()
                return check(live, console)
        finally:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    # Firmware under TCG on a busy machine: minutes, not seconds.
    return off_gui_thread(work, timeout=600)


def _spec(name: str, **fields) -> VmSpec:
    return VmSpec(name=f"{name}-{os.getpid()}", domain_type="qemu", firmware="uefi", vcpus=1,
                  memory_mib=256, disk=DiskChoice.NONE, network=NetworkChoice.NONE,
                  graphics="vnc", **fields)


def test_uefi_machine_boots_the_lab_kernel_on_efi(system_libvirtd, lab_images):
    if reason := _firmware_for("x86_64"):
        pytest.skip(reason)
    facts = off_gui_thread(lambda: host_caps.discover(libvirt.open(SYSTEM_URI)))
    assert facts.arch("x86_64").uefi  # the wizard offers UEFI because libvirt says so
    spec = _spec("vstest-uefi", source=InstallSource.KERNEL, kernel=str(lab_images.kernel),
                 initrd=str(lab_images.initrd), cmdline="console=tty0 console=ttyS0",
                 arch="x86_64", machine="q35")

    def check(live, console):
        # The kernel says how it was started, before anything could garble typed input:
        # "efi: EFI v2.70 by EDK II" comes only from a kernel that UEFI firmware booted.
        console.wait_for("efi: EFI v", timeout=180)
        console.wait_for(READY_MARKER, timeout=180)
        return live.findtext("os/loader") or ""

    loader = _run(spec, check)
    assert "OVMF" in loader


def test_emulated_aarch64_machine_runs_its_firmware(system_libvirtd):
    if shutil.which("qemu-system-aarch64") is None:
        pytest.skip("qemu-system-aarch64 is not installed (package qemu-system-arm)")
    if reason := _firmware_for("aarch64"):
        pytest.skip(reason)
    facts = off_gui_thread(lambda: host_caps.discover(libvirt.open(SYSTEM_URI)))
    arm = facts.arch("aarch64")
    assert arm is not None and arm.uefi and "virt" in arm.machines
    assert arm.domain_types == ("qemu",)  # emulated: no KVM for a foreign architecture
    spec = _spec("vstest-arm", source=InstallSource.PXE, arch="aarch64", machine="virt")

    def check(live, console):
        # AAVMF announces itself on the serial port, then looks for something to boot.
        console.wait_for("UEFI firmware", timeout=180)
        console.wait_for("BdsDxe", timeout=180)
        return live.findtext("devices/emulator"), live.findtext("os/loader") or ""

    emulator, loader = _run(spec, check)
    assert emulator.endswith("qemu-system-aarch64") and "AAVMF" in loader
