"""A virtual network's address reads as address/prefix however libvirt spells it."""

from __future__ import annotations

import pytest

from virtstudio.core.entities import Network


@pytest.mark.parametrize(("ip", "shown"), [
    ("<ip address='192.168.122.1' netmask='255.255.255.0'/>", "192.168.122.1/24"),
    ("<ip address='10.0.0.1' prefix='16'/>", "10.0.0.1/16"),
    ("<ip address='10.0.0.1'/>", "10.0.0.1"),
    ("<ip address='10.0.0.1' netmask='255.0.255.0'/>", "10.0.0.1/255.0.255.0"),
    ("", ""),
])
def test_ipv4_column(ip, shown):
    xml = f"<network><name>n</name><forward mode='nat'/>{ip}</network>"
    assert Network("test:///x", "u", xml, True, False).ipv4 == shown
