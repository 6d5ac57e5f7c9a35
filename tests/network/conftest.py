"""Fixtures for host-network tests: namespaces made and removed by the test itself.

Every link a test makes lives in one of these namespaces and goes with it, so link names
stay short and need no prefix; the namespaces are ``vstest-net-<tag>-<pid>-<random>``."""

from __future__ import annotations

import subprocess

import pytest

from tests.lab.leftovers import remove_netns, session_name
from virtstudio.network.host_links import HostNetwork


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    names = []

    def make(tag: str) -> str:
        name = session_name(f"net-{tag}")
        ip("netns", "add", name)
        names.append(name)
        return name

    try:
        yield make
    finally:
        remove_netns(*names)


@pytest.fixture
def host(netns):
    network = HostNetwork(netns("host"))
    network.start()
    yield network
    network.stop()
