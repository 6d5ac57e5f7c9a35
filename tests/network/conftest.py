"""Fixtures for host-network tests: namespaces made and removed by the test itself."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from virtstudio.network.host_links import HostNetwork


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    names = []

    def make(tag: str) -> str:
        name = f"vs-net-{tag}-{uuid.uuid4().hex[:8]}"
        ip("netns", "add", name)
        names.append(name)
        return name

    yield make
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def host(netns):
    network = HostNetwork(netns("host"))
    network.start()
    yield network
    network.stop()
