"""A live migration broken by a daemon that dies, at each end and at each step.

Both ends are private QEMU daemons (tests/lab/qemu_daemon.py), so either may
be killed; the system daemon is never touched.  The job drives the migration
from this process (virDomainMigrate3 with both connections): the source daemon
runs begin, perform (sending the memory) and confirm, the destination daemon
prepare (the incoming QEMU) and finish.  So:

- killing the source before the transfer breaks begin; during it, perform
  (confirm never comes, and finish is called with "cancelled");
- killing the destination before the transfer breaks prepare; during it,
  finish (its QEMU may receive everything, but nobody takes it over, and the
  source is confirmed "cancelled" and resumes).

After each, the dead daemon starts again and the test checks that the machine
runs on the source, nowhere else, that the job named the lost host and said
what was done, not done and left, and that moving it again succeeds.  A death
between finish and confirm (moved, but the source not told) gives no status to
aim at from here; that message is checked in tests/machines/test_migrate_loss.py.
"""

from __future__ import annotations

import os

import libvirt
import pytest

from tests.helpers import off_gui_thread, wait_for
from tests.integration.test_job_faults import _at_status, _entity, _finished
from tests.lab.guest import lab_domain_xml
from tests.lab.qemu_daemon import PrivateQemuDaemon, qemu_daemon_unavailable
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.jobs import JobRunner, JobState
from virtstudio.machines.migrate import MigrateOptions, migrate_domain

pytestmark = pytest.mark.skipif(bool(qemu_daemon_unavailable()),
                                reason=qemu_daemon_unavailable() or "available")
ADDRESS = "tcp://127.0.0.1"


@pytest.fixture
def ends():
    made = {side: off_gui_thread(PrivateQemuDaemon) for side in ("source", "destination")}
    try:
        for daemon in made.values():
            off_gui_thread(daemon.start)
        yield made
    finally:
        for daemon in made.values():
            off_gui_thread(daemon.close)


def _state_on(uri: str, name: str) -> int | None:
    try:
        return libvirt.open(uri).lookupByName(name).state()[0]
    except libvirt.libvirtError:
        return None


@pytest.fixture
def guest(request, lab_images, ends):
    """A running lab guest on the source daemon (no display: the two daemons share ports)."""
    name = f"vstest-migfault-{request.node.callspec.id}-{os.getpid()}"
    off_gui_thread(lambda: libvirt.open(ends["source"].uri).defineXML(
        lab_domain_xml(name, lab_images, graphics=())).create())
    yield name
    for daemon in ends.values():
        def remove(uri=daemon.uri) -> None:
            try:
                dom = libvirt.open(uri).lookupByName(name)
            except libvirt.libvirtError:
                return
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()
        off_gui_thread(remove)


@pytest.fixture
def hosts(ends):
    made = {side: HostConnection(daemon.uri, name=f"the {side} host", stats_interval=0)
            for side, daemon in ends.items()}
    runner = JobRunner()
    try:
        for host in made.values():
            host.open().result(timeout=60)
            assert host.state is ConnectionState.CONNECTED
        yield made, runner
    finally:
        runner.shutdown(wait=True)
        for host in made.values():
            host.shutdown()


def _move(runner: JobRunner, hosts: dict[str, HostConnection], name: str, speed_mib: int):
    source, destination = hosts["source"], hosts["destination"]
    domain = _entity(source, name)
    wait_for(lambda: destination.state is ConnectionState.CONNECTED, timeout=90)
    # A slow link keeps the memory copy going long enough to die in it; the retry runs free.
    libvirt.open(source.uri).lookupByName(name).migrateSetMaxSpeed(speed_mib, 0)
    return migrate_domain(runner, source, domain, destination, MigrateOptions(address=ADDRESS))


def _sent(job) -> bool:
    return (job.progress or 0) > 0


@pytest.mark.parametrize("when", ["before", "during"])
@pytest.mark.parametrize("side", ["source", "destination"])
def test_daemon_death_mid_migration_leaves_the_guest_on_the_source(ends, guest, hosts, side,
                                                                   when):
    hosts_, runner = hosts
    killed: list[bool] = []

    def kill_once(job) -> None:
        if not killed and (when == "before" or _sent(job)):
            killed.append(True)
            ends[side].kill()
            if side == "destination" and when == "during":
                # The source's QEMU sends on to the orphaned incoming QEMU until it has
                # all: at full speed, so the job meets the dead daemon at finish sooner.
                libvirt.open(ends["source"].uri).lookupByName(guest).migrateSetMaxSpeed(
                    1024, 0)

    if when == "before":
        _at_status(runner, "Moving ", kill_once)
    else:
        runner.job_changed.connect(kill_once)
    job = _finished(_move(runner, hosts_, guest, 1), timeout=300)
    assert killed, job.log_text()
    assert job.state is JobState.FAILED, job.log_text()
    message = job.error.message
    assert message.startswith(f"The connection to the {side} host was lost during moving "
                              f"{guest} to the destination host. Done: nothing."), message
    if side == "source":
        assert f"{guest} stays on the source host" in message, message
        assert "Left: nothing." in message, message
    else:
        assert f"{guest} is still running on the source host" in message, message
        assert "Left: any unfinished copy on the destination host: its daemon discards it" \
            in message, message
    assert "pointer" not in message

    off_gui_thread(ends[side].start)
    source_uri, destination_uri = ends["source"].uri, ends["destination"].uri
    # libvirt ends the unfinished migration as the daemon starts: the guest runs on.
    wait_for(lambda: _state_on(source_uri, guest) == libvirt.VIR_DOMAIN_RUNNING, timeout=120)
    wait_for(lambda: _state_on(destination_uri, guest) is None, timeout=120)
    assert libvirt.open(source_uri).lookupByName(guest).isPersistent()

    job = _finished(_move(runner, hosts_, guest, 1024), timeout=300)
    assert job.state is JobState.DONE, (job.error, job.log_text())
    assert _state_on(destination_uri, guest) == libvirt.VIR_DOMAIN_RUNNING
    assert _state_on(source_uri, guest) is None
