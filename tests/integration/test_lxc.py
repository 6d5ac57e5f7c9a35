"""A libvirt LXC container started for real and listed like a VM (see tests/lab/lxc.py)."""

from __future__ import annotations

import os

import libvirt
import pytest

from tests.helpers import off_gui_thread
from tests.lab.lxc import PrivateLxcDaemon, container_xml, lxc_unavailable
from virtstudio.core.connection import ConnectionState
from virtstudio.core.entities import DomainState
from virtstudio.core.inventory import Inventory
from virtstudio.ui.vm_model import VmColumn


@pytest.fixture
def lxc_daemon():
    reason = lxc_unavailable()
    if reason:
        pytest.skip(reason)
    daemon = PrivateLxcDaemon()
    off_gui_thread(daemon.start)
    yield daemon
    off_gui_thread(daemon.close)


@pytest.fixture
def container(lxc_daemon):
    name = f"vstest-lxc-{os.getpid()}"

    def start() -> None:
        conn = libvirt.open(lxc_daemon.uri)
        conn.defineXML(container_xml(name)).create()

    def remove() -> None:
        conn = libvirt.open(lxc_daemon.uri)
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            return
        if dom.isActive():
            dom.destroy()
        # What libvirt leaves under /run/libvirt/lxc goes with the daemon's private tmpfs.
        dom.undefine()

    off_gui_thread(start)
    yield name
    off_gui_thread(remove)


def test_a_running_container_shows_in_the_machine_list(make_main_window, qtbot, lxc_daemon,
                                                       container):
    window = make_main_window(Inventory(stats_interval=0.5))
    host = window.inventory.add(lxc_daemon.uri)
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.select_domain(container), timeout=60000)
    dom = host.find_domain_by_name(container)
    assert dom.state is DomainState.RUNNING and dom.summary.domain_type == "lxc"
    row = window.vm_model.row_of(host.uri, dom.uuid)
    assert window.vm_model.index(row, VmColumn.STATE).data() == "Running"
    assert window.vm_model.index(row, VmColumn.MEMORY).data() == "64.0 MiB"
    # Stopped from outside, the list follows.
    off_gui_thread(lambda: libvirt.open(lxc_daemon.uri).lookupByName(container).destroy())
    qtbot.waitUntil(lambda: window.vm_model.index(row, VmColumn.STATE).data() == "Shut off",
                    timeout=60000)
