"""HostConnection against libvirt's test driver (in-process, real libvirt API)."""

from __future__ import annotations

import libvirt
import pytest

from tests.helpers import Recorder, wait_for
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.entities import DomainState

FIXTURE = """<node>
  <domain type='test'>
    <name>alpha</name><memory>65536</memory><vcpu>2</vcpu>
    <os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><source file='/img/alpha.qcow2'/>
      <target dev='vda' bus='virtio'/></disk></devices>
  </domain>
  <domain type='test'>
    <name>beta</name><memory>131072</memory><vcpu>1</vcpu>
    <os><type>hvm</type></os>
  </domain>
</node>
"""


@pytest.fixture
def fixture_uri(tmp_path):
    path = tmp_path / "host.xml"
    path.write_text(FIXTURE)
    return f"test://{path}"


@pytest.fixture
def host(fixture_uri):
    conn = HostConnection(fixture_uri, stats_interval=0.2)
    yield conn
    conn.shutdown()


def test_populates_domains_pools_networks(host):
    rec = Recorder(host.state_changed, host.domains_added, host.populated)
    host.open().result(60)
    wait_for(lambda: "populated" in rec.names())
    assert host.state is ConnectionState.CONNECTED
    names = sorted(d.name for d in host.domains.values())
    assert names == ["alpha", "beta"]
    alpha = host.find_domain_by_name("alpha")
    assert alpha.summary.vcpus == 2
    assert alpha.summary.memory_kib == 65536
    assert alpha.summary.disks[0].source == "/img/alpha.qcow2"
    assert host.hypervisor == "TEST"
    # one batch for all domains, never one signal per domain
    assert len(rec.of("domains_added")) == 1


def test_lifecycle_change_from_outside_is_seen(host, fixture_uri):
    host.open().result(60)
    wait_for(lambda: host.state is ConnectionState.CONNECTED and host.domains)
    rec = Recorder(host.domains_changed)
    beta = host.find_domain_by_name("beta")
    # A second connection to the same driver plays the part of virsh.
    host.call(lambda c: c.lookupByName("beta").suspend()).result(60)
    wait_for(lambda: beta.state is DomainState.PAUSED, timeout=30)
    assert any(beta in batch for _, batch in rec.of("domains_changed"))


def test_domain_defined_and_undefined_elsewhere(host):
    host.open().result(60)
    wait_for(lambda: host.domains)
    rec = Recorder(host.domains_added, host.domains_removed)
    xml = ("<domain type='test'><name>gamma</name><memory>1024</memory>"
           "<os><type>hvm</type></os></domain>")
    host.call(lambda c: c.defineXML(xml)).result(60)
    wait_for(lambda: host.find_domain_by_name("gamma") is not None, timeout=30)
    host.call(lambda c: c.lookupByName("gamma").undefine()).result(60)
    wait_for(lambda: host.find_domain_by_name("gamma") is None, timeout=30)
    assert rec.of("domains_added") and rec.of("domains_removed")


def test_statistics_come_in_bulk(host):
    host.open().result(60)
    rec = Recorder(host.stats_updated)
    wait_for(lambda: len(rec.of("stats_updated")) >= 2, timeout=30)
    _, batch = rec.of("stats_updated")[-1]
    running = {d.name for d in host.domains.values() if d.state is DomainState.RUNNING}
    assert {d.name for d in batch} == running
    assert len(batch[0].stats.cpu_history) >= 1


def test_missing_fixture_fails_without_retry(tmp_path):
    conn = HostConnection(f"test://{tmp_path}/absent.xml")
    try:
        conn.open().result(60)
        assert conn.state is ConnectionState.FAILED
        assert conn.error is not None and conn.error.message
        assert conn.retry_at is None
    finally:
        conn.shutdown()


def test_unreachable_daemon_retries_with_backoff(tmp_path):
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-socket"
    conn = HostConnection(uri, backoff=(0.2, 0.4))
    rec = Recorder(conn.state_changed)
    try:
        conn.open()
        wait_for(lambda: rec.names().count("state_changed") >= 4, timeout=30)
        assert conn.state in (ConnectionState.LOST, ConnectionState.CONNECTING)
        wait_for(lambda: conn.state is ConnectionState.LOST)
        assert conn.retry_at is not None
        assert "connect" in conn.error.message.lower()
    finally:
        conn.shutdown()


def test_invalid_uri_is_refused_with_message():
    conn = HostConnection("nonsense", reconnect=False)
    try:
        conn.open().result(60)
        assert conn.state is ConnectionState.FAILED
        assert "not a connection URI" in conn.error.message
    finally:
        conn.shutdown()


def test_close_forgets_entities(host):
    host.open().result(60)
    wait_for(lambda: host.domains)
    rec = Recorder(host.domains_removed)
    host.close().result(60)
    assert host.state is ConnectionState.DISCONNECTED
    assert not host.domains
    assert len(rec.of("domains_removed")[0][1]) == 2
    with pytest.raises(Exception, match="not connected"):
        _ = host.virconn


def test_a_held_connection_is_closed_only_when_the_job_lets_go(host):
    """A lost connection must not be closed under a job's long call (migrate3 crashed)."""
    host.open().result(60)
    with host.held() as conn:
        host.close().result(60)  # what a loss does to the connection, on the worker
        assert host.state is ConnectionState.DISCONNECTED
        assert conn.getType() == "TEST"  # still open for the job's call
    with pytest.raises(libvirt.libvirtError):
        conn.getType()  # closed once the block ended
    libvirt.virResetLastError()  # later errors built on this thread must not inherit it
    with pytest.raises(Exception, match="not connected"), host.held():
        pass


def test_call_runs_on_the_worker_thread(host):
    import threading

    host.open().result(60)
    seen = host.call(lambda _c: threading.current_thread()).result(60)
    assert seen is host.worker_thread
    assert isinstance(host.call(lambda c: c).result(60), libvirt.virConnect)
