"""Integration fixtures: the real local libvirtd and the lab guest."""

from __future__ import annotations

import os
import subprocess

import libvirt
import pytest

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI, require_libvirtd
from tests.lab.guest import LabImages, build_lab_guest, lab_domain_xml


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.libvirtd)


@pytest.fixture(scope="session")
def system_libvirtd() -> str:
    off_gui_thread(require_libvirtd, timeout=90)
    return SYSTEM_URI


@pytest.fixture(scope="session")
def lab_images(system_libvirtd: str) -> LabImages:
    return off_gui_thread(build_lab_guest)


def virsh(*args: str) -> str:
    """Change the host from outside the app, as an administrator would."""
    result = subprocess.run(["virsh", "-q", "-c", SYSTEM_URI, *args],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _remove_domain(name: str) -> None:
    conn = libvirt.open(SYSTEM_URI)
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    if dom.isPersistent():
        dom.undefine()


@pytest.fixture
def lab_vm(request: pytest.FixtureRequest, lab_images: LabImages):
    """A defined, shut-off lab guest with a name unique to this test."""
    name = f"vstest-{request.node.name[:30].replace('_', '-')}-{os.getpid()}"

    def define() -> None:
        _remove_domain(name)
        libvirt.open(SYSTEM_URI).defineXML(lab_domain_xml(name, lab_images))

    off_gui_thread(define)
    yield name
    off_gui_thread(_remove_domain, name)
