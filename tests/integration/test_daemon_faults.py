"""A libvirtd that dies while the app is connected, and one that comes back."""

from __future__ import annotations

import pytest

from tests.helpers import off_gui_thread
from tests.lab.daemon import PrivateLibvirtd
from virtstudio.core.connection import ConnectionState
from virtstudio.core.fixtures import write_fixture
from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobState


@pytest.fixture
def private_daemon(tmp_path, system_libvirtd):
    daemon = PrivateLibvirtd(write_fixture(tmp_path / "host.xml", 12))
    off_gui_thread(daemon.start)
    yield daemon
    off_gui_thread(daemon.__exit__, None, None, None)


def test_killed_daemon_shows_disconnected_then_reconnects(make_main_window, qtbot,
                                                          private_daemon):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(private_daemon.uri)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 12, timeout=60000)

    off_gui_thread(private_daemon.kill)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.LOST, timeout=60000)
    assert conn.error is not None and "Connection lost" in conn.error.message
    host_text = window.host_model.index(0, 0).data()
    assert "Connection lost" in host_text
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 0, timeout=60000)

    off_gui_thread(private_daemon.start)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    qtbot.waitUntil(lambda: window.vm_model.rowCount() == 12, timeout=60000)
    assert window.host_model.index(0, 0).data() == conn.name
    assert {window.vm_model.domain_at(r).name for r in range(12)} == {
        d.name for d in conn.domains.values()}


def test_daemon_dying_mid_job_fails_the_job_readably(make_main_window, qtbot, private_daemon):
    window = make_main_window(Inventory(stats_interval=0))
    conn = window.inventory.add(private_daemon.uri)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    started = []

    def work(job):
        started.append(True)
        # A long call in flight when the daemon dies.
        while True:
            conn.virconn.listAllDomains(0)
            job.wait(0.05)

    job = window.runner.submit("Polling", work)
    qtbot.waitUntil(lambda: bool(started), timeout=60000)
    off_gui_thread(private_daemon.kill)
    qtbot.waitUntil(lambda: job.state.finished, timeout=60000)
    assert job.state is JobState.FAILED
    assert job.error.message
    assert "Traceback" not in job.error.message
