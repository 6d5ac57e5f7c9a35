"""libvirt virtual networks on the real daemon: NAT and isolated, a guest's tap on the bridge."""

from __future__ import annotations

import os
import random
from pathlib import Path

import libvirt
import pytest

from tests.helpers import wait_for
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.network.virtual_networks import NetworkSpec, create_network, delete_network


@pytest.fixture
def host(system_libvirtd):
    conn = HostConnection(SYSTEM_URI, stats_interval=0)
    conn.open().result(60)
    wait_for(lambda: conn.state is ConnectionState.CONNECTED)
    runner = JobRunner()
    made: list[str] = []
    yield conn, runner, made
    raw = libvirt.open(SYSTEM_URI)
    for name in made:
        try:
            net = raw.networkLookupByName(name)
        except libvirt.libvirtError:
            continue
        if net.isActive():
            net.destroy()
        net.undefine()
    runner.shutdown(wait=True)
    conn.shutdown()


def run(job):
    wait_for(lambda: job.state.finished, timeout=60)
    assert job.state is JobState.DONE, job.log_text()


def test_nat_and_isolated_networks_and_a_guest_on_one(host, lab_images):
    conn, runner, made = host
    tag = os.getpid() % 1000
    subnet = random.Random(tag).randrange(200, 250)
    nat = NetworkSpec(f"vstest-nat-{os.getpid()}", "nat", f"192.168.{subnet}.1/24",
                      bridge=f"vsnat{tag}")
    isolated = NetworkSpec(f"vstest-iso-{os.getpid()}", "isolated", f"192.168.{subnet + 1}.1/24",
                           bridge=f"vsiso{tag}")
    made += [nat.name, isolated.name]
    run(create_network(runner, conn, nat))
    run(create_network(runner, conn, isolated))
    wait_for(lambda: {nat.name, isolated.name} <= {n.name for n in conn.networks.values()},
             timeout=60)
    by_name = {n.name: n for n in conn.networks.values()}
    assert by_name[nat.name].active and by_name[nat.name].forward_mode == "nat"
    assert by_name[isolated.name].forward_mode == "isolated"

    # Bad input changes nothing.
    with pytest.raises(VirtStudioError, match="exists already"):
        create_network(runner, conn, nat)
    with pytest.raises(VirtStudioError, match="overlaps"):
        create_network(runner, conn, NetworkSpec(f"vstest-ovl-{os.getpid()}", "nat",
                                                 f"192.168.{subnet}.7/25"))
    with pytest.raises(VirtStudioError, match="not a usable interface name"):
        create_network(runner, conn, NetworkSpec(f"vstest-long-{os.getpid()}", "nat",
                                                 "192.168.251.1/24",
                                                 bridge="a-bridge-name-too-long"))

    name = f"vstest-netguest-{os.getpid()}"
    raw = libvirt.open(SYSTEM_URI)
    dom = raw.createXML(lab_domain_xml(name, lab_images, graphics=(), networks=(nat.name,)), 0)
    try:
        wait_for(lambda: conn.find_domain_by_name(name) is not None, timeout=60)
        guest = conn.find_domain_by_name(name)
        tap = wait_for(lambda: guest.summary.nics and guest.summary.nics[0].target_dev, timeout=60)
        master = Path(f"/sys/class/net/{tap}/master").resolve().name
        assert master == nat.bridge
        with pytest.raises(VirtStudioError, match=f"in use by {name}"):
            delete_network(runner, conn, nat.name)
        assert raw.networkLookupByName(nat.name).isActive()
    finally:
        dom.destroy()
    wait_for(lambda: conn.find_domain_by_name(name) is None, timeout=60)
    run(delete_network(runner, conn, nat.name))
    run(delete_network(runner, conn, isolated.name))
    wait_for(lambda: not {nat.name, isolated.name} & {n.name for n in conn.networks.values()},
             timeout=60)
