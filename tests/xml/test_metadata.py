"""VirtStudio's metadata entries (folders and tags, NIC VLANs), read and written."""

from __future__ import annotations

from tests.xml.pairs import check_pair, read
from virtstudio.machines.groups import Groups, _parse, groups_xml
from virtstudio.network.nic_vlan import metadata_xml, nic_vlans
from virtstudio.xml import Domain, parse_element
from virtstudio.xml.metadata import GROUPS_NS


def test_groups_entry_is_built_escaped():
    assert groups_xml(Groups("prod/eu", ("web", "a&b<c"))) == (
        "<groups><folder>prod/eu</folder><tag>web</tag><tag>a&amp;b&lt;c</tag></groups>")
    assert groups_xml(Groups("", ("x",))) == "<groups><tag>x</tag></groups>"


def test_vlan_entry_is_built_sorted():
    assert metadata_xml({"52:54:00:00:00:02": 7, "52:54:00:00:00:01": 4094}) == (
        '<nics><nic mac="52:54:00:00:00:01" vlan="4094"/>'
        '<nic mac="52:54:00:00:00:02" vlan="7"/></nics>')


def test_entries_are_read_in_their_namespace_only():
    xml = ("<domain><name>m</name><metadata>"
           f"<g:groups xmlns:g='{GROUPS_NS}'><g:folder> lab/x </g:folder><g:tag>a</g:tag>"
           "<g:tag> </g:tag><tag>not ours</tag></g:groups>"
           "<other:groups xmlns:other='urn:other'><other:folder>no</other:folder>"
           "</other:groups></metadata></domain>")
    assert _parse(xml) == Groups("lab/x", ("a",))
    assert nic_vlans(read("edit-in.xml")) == {"52:54:00:11:22:33": 42}
    assert nic_vlans("<domain><metadata><nics><nic mac='x' vlan='5'/></nics></metadata>"
                     "</domain>") == {}
    assert nic_vlans("not xml") == {}


def edit_metadata(domain: Domain) -> None:
    """What libvirt's setMetadata does with an entry: replace ours, leave the others."""
    entry = parse_element(
        f"<virtstudio:groups xmlns:virtstudio='{GROUPS_NS}'>"
        "<virtstudio:folder>prod</virtstudio:folder></virtstudio:groups>")
    domain.ensure_metadata().put(entry)
    domain.metadata.drop("https://virtstudio.org/xmlns/network/1", "nics")


def test_metadata_entries_change_alone():
    check_pair("edit-metadata", edit_metadata, Domain, "edit")
