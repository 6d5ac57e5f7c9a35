"""The shipped demo host is rich enough to show every screen; broken fixtures say why."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.demo import demo_fixture_path, demo_uri, validate_fixture
from virtstudio.core.errors import VirtStudioError

TEST_NS = "{http://libvirt.org/schemas/domain/test/1.0}"


def test_demo_fixture_has_machines_in_every_state_pools_and_networks():
    validate_fixture(demo_fixture_path())
    root = ET.parse(demo_fixture_path()).getroot()
    domains = root.findall("domain")
    assert len(domains) >= 20
    states = {int(d.findtext(f"{TEST_NS}runstate")) for d in domains}
    # running, blocked, paused, shutting down, shut off, crashed, suspended (pmsuspended)
    assert states >= {1, 2, 3, 4, 5, 6, 7}
    pool_types = {p.get("type") for p in root.findall("pool")}
    assert len(pool_types) >= 3
    assert all(p.findall("volume") for p in root.findall("pool") if p.get("type") == "dir")
    assert len(root.findall("network")) >= 3


def test_libvirt_opens_the_demo_host_as_shipped():
    conn = libvirt.open(demo_uri())
    try:
        assert len(conn.listAllDomains()) >= 20
        assert len(conn.listAllStoragePools()) >= 3
        assert len(conn.listAllNetworks()) >= 3
    finally:
        conn.close()


@pytest.mark.parametrize(("content", "fragment"), [
    ("<node><domain type='test'><name>a</name>", "not valid XML"),
    ("<domain type='test'><name>a</name></domain>", "must start with <node>, not <domain>"),
    ("", "is empty"),
    ("<!-- only a comment -->", "not valid XML"),
    ("<node><domain type='test'><name></name></domain></node>", "machine without a name"),
    ("<node><domain type='test'><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>"
     "</node>", "machine without a name"),
])
def test_malformed_fixture_is_refused_with_a_plain_message(tmp_path, content, fragment):
    path = tmp_path / "broken.xml"
    path.write_text(content)
    with pytest.raises(VirtStudioError, match=fragment):
        validate_fixture(path)


def test_connection_to_a_malformed_fixture_fails_once_and_says_why(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<node><domain type='test'>")
    conn = HostConnection(f"test://{path}")
    try:
        conn.open().result(60)
        assert conn.state is ConnectionState.FAILED
        assert "not valid XML" in conn.error.message
        assert conn.retry_at is None  # the same file gives the same answer
        assert not conn.domains
    finally:
        conn.shutdown()
