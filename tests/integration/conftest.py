"""Integration fixtures: the real local libvirtd and the lab guest."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import libvirt
import pytest

from tests.helpers import off_gui_thread
from tests.lab.daemon import SYSTEM_URI, require_libvirtd
from tests.lab.guest import LabImages, build_lab_guest, lab_domain_xml
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.jobs import JobRunner


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


@contextmanager
def connected_host(uri: str) -> Iterator[tuple[HostConnection, JobRunner]]:
    """A connected HostConnection to ``uri`` and a JobRunner, both shut down after."""
    conn = HostConnection(uri, stats_interval=0)
    conn.open().result(timeout=60)
    assert conn.state is ConnectionState.CONNECTED
    runner = JobRunner()
    try:
        yield conn, runner
    finally:
        runner.shutdown(wait=True)
        conn.shutdown()


@pytest.fixture
def host(system_libvirtd):
    """(connection, job runner) on the system daemon; a module may define its own."""
    with connected_host(system_libvirtd) as pair:
        yield pair
