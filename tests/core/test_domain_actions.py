"""Lifecycle actions and safe deletion, on libvirt's test driver."""

from __future__ import annotations

import libvirt
import pytest

from tests.helpers import wait_for
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.domain_actions import Action, allowed, ask_delete, run_action
from virtstudio.core.entities import DomainState
from virtstudio.core.jobs import JobRunner, JobState

FIXTURE = """<node>
  <pool type='dir'>
    <name>images</name>
    <target><path>/images</path></target>
    <volume type='file'><name>own.qcow2</name><capacity unit='GiB'>10</capacity>
      <allocation unit='MiB'>100</allocation></volume>
    <volume type='file'><name>shared.raw</name><capacity unit='GiB'>2</capacity></volume>
  </pool>
  <domain type='test'>
    <name>owner</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='/images/own.qcow2'/>
        <target dev='vda'/></disk>
      <disk type='file' device='disk'><source file='/images/shared.raw'/>
        <target dev='vdb'/></disk>
    </devices>
  </domain>
  <domain type='test'>
    <name>neighbour</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='/images/shared.raw'/>
        <target dev='vda'/></disk>
    </devices>
  </domain>
</node>
"""


@pytest.fixture
def host(tmp_path):
    path = tmp_path / "host.xml"
    path.write_text(FIXTURE)
    conn = HostConnection(f"test://{path}", stats_interval=0)
    conn.open().result(60)
    wait_for(lambda: conn.state is ConnectionState.CONNECTED and len(conn.domains) == 2)
    yield conn
    conn.shutdown()


@pytest.fixture
def runner():
    r = JobRunner()
    yield r
    r.shutdown(wait=True)


def run(runner, host, name, action, **kw):
    job = run_action(runner, host, host.find_domain_by_name(name), action, **kw)
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.DONE, job.log_text()
    return job


def test_lifecycle_through_jobs(host, runner):
    owner = host.find_domain_by_name("owner")
    assert owner.state is DomainState.RUNNING
    assert allowed(Action.PAUSE, owner) and not allowed(Action.START, owner)
    run(runner, host, "owner", Action.PAUSE)
    wait_for(lambda: owner.state is DomainState.PAUSED)
    assert allowed(Action.RESUME, owner) and not allowed(Action.PAUSE, owner)
    run(runner, host, "owner", Action.RESUME)
    wait_for(lambda: owner.state is DomainState.RUNNING)
    run(runner, host, "owner", Action.FORCE_OFF)
    wait_for(lambda: owner.state is DomainState.SHUTOFF)
    assert allowed(Action.START, owner) and not allowed(Action.FORCE_OFF, owner)
    run(runner, host, "owner", Action.START)
    wait_for(lambda: owner.state is DomainState.RUNNING)


def test_action_in_wrong_state_fails_readably(host, runner):
    owner = host.find_domain_by_name("owner")
    job = run_action(runner, host, owner, Action.RESUME)
    wait_for(lambda: job.state.finished)
    assert job.state is JobState.FAILED
    assert "not paused" in job.error.message.lower() or "state" in job.error.message.lower()
    assert job.error.detail


def test_delete_plan_protects_shared_disks(host):
    plan = ask_delete(host, host.find_domain_by_name("owner")).result(60)
    choices = {c.source: c for c in plan.choices}
    assert choices["/images/own.qcow2"].removable and choices["/images/own.qcow2"].checked
    shared = choices["/images/shared.raw"]
    assert not shared.removable and "neighbour" in shared.why_not
    assert plan.chosen == ("/images/own.qcow2",)


def test_delete_removes_own_disk_and_never_a_shared_one(host, runner):
    # Even if asked to, the plan never offers a disk another machine uses.
    owner = host.find_domain_by_name("owner")
    plan = ask_delete(host, owner).result(60).pick(("/images/own.qcow2", "/images/shared.raw"))
    assert plan.chosen == ("/images/own.qcow2",)
    run(runner, host, "owner", Action.DELETE, delete_plan=plan)
    wait_for(lambda: host.find_domain_by_name("owner") is None)

    def volumes(conn):
        return sorted(v.name() for v in conn.storagePoolLookupByName("images").listAllVolumes())

    assert host.call(volumes).result(60) == ["shared.raw"]
    with pytest.raises(libvirt.libvirtError):
        host.call(lambda c: c.lookupByName("owner")).result(60)


def test_delete_without_a_confirmed_plan_is_refused(host, runner):
    from virtstudio.core.errors import VirtStudioError

    with pytest.raises(VirtStudioError, match="confirmed"):
        run_action(runner, host, host.find_domain_by_name("owner"), Action.DELETE)
