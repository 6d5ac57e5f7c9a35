"""Every configuration written back was read with its secrets (VIR_DOMAIN_XML_SECURE)."""

from __future__ import annotations

import libvirt
import pytest

from tests.xml.pairs import read
from virtstudio.machines import domain_edit as de
from virtstudio.xml import Domain
from virtstudio.xml.io import domain_for_edit


class FakeJob:
    def log(self, text: str) -> None:
        pass


class FakeDom:
    """A shut-off, persistent machine whose secrets show only with the secure flag."""

    def __init__(self, xml: str) -> None:
        self.xml = xml
        self.reads: list[int] = []

    def XMLDesc(self, flags: int = 0) -> str:
        self.reads.append(flags)
        if flags & libvirt.VIR_DOMAIN_XML_SECURE:
            return self.xml
        return self.xml.replace(' passwd="old-pw"', "").replace("secret-cookie", "")

    def isActive(self) -> bool:
        return False

    def isPersistent(self) -> bool:
        return True


class FakeConn:
    def __init__(self, dom: FakeDom) -> None:
        self.dom = dom
        self.defined: list[str] = []

    def defineXML(self, xml: str) -> FakeDom:
        self.defined.append(xml)
        self.dom.xml = xml
        return self.dom


CHANGES = [de.SetVcpus(3), de.SetMemory(2048, 4096), de.SetBootOrder(("hd",)),
           de.SetGraphics("vnc"), de.SetDisplayPassword(""), de.SetVideo("vga"),
           de.ChangeDisk("sda", "virtio", None), de.RemoveDisk("fda"),
           de.SetNic("network", "default"), de.RemoveNic("52:54:00:44:55:66"),
           de.SetNic("bridge", "br0", "ne2k_pci", "", "52:54:00:11:22:33"),
           de.AddDisk("vdc", path="/img/new.qcow2")]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.describe())
def test_each_change_reads_with_secrets_and_keeps_them(change):
    dom = FakeDom(read("edit-in.xml"))
    conn = FakeConn(dom)
    assert de._apply_one(conn, dom, change, FakeJob()) == de.SAVED
    assert conn.defined and all(flags & libvirt.VIR_DOMAIN_XML_SECURE for flags in dom.reads)
    saved = conn.defined[-1]
    assert "secret-cookie" in saved
    if not isinstance(change, de.SetDisplayPassword):
        assert 'passwd="old-pw"' in saved
    assert '<app1:foo xmlns:app1="http://app1.example.org/">bar</app1:foo>' in saved
    assert '<vsnet:nic mac="52:54:00:11:22:33" vlan="42"/>' in saved


def test_a_transient_machine_is_read_live_with_secrets():
    dom = FakeDom(read("edit-in.xml"))
    dom.isPersistent = lambda: False  # type: ignore[method-assign]
    domain = domain_for_edit(dom)  # type: ignore[arg-type]
    assert isinstance(domain, Domain)
    assert dom.reads == [libvirt.VIR_DOMAIN_XML_SECURE]
