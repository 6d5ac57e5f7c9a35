"""A test-driver host with 20 machines and a job runner, for the machine editors' core."""

from __future__ import annotations

import pytest

from virtstudio.core.connection import HostConnection
from virtstudio.core.fixtures import write_fixture
from virtstudio.core.jobs import JobRunner


@pytest.fixture
def test_host(tmp_path):
    conn = HostConnection(f"test://{write_fixture(tmp_path / 'host.xml', 20)}",
                          stats_interval=0)
    conn.open().result(timeout=60)
    yield conn
    conn.shutdown()


@pytest.fixture
def job_runner():
    runner = JobRunner()
    yield runner
    runner.shutdown(wait=True)
