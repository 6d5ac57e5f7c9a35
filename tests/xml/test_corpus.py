"""The document corpus itself: fetched and checked, read in full, and compared exactly."""

from __future__ import annotations

import pytest

from tests.xml import corpus
from tests.xml.corpus import Difference, differences, flatten, outside
from tests.xml.drivers import accepts, test_driver  # noqa: F401  (fixture)


def test_corpus_holds_the_published_documents() -> None:
    domains = corpus.documents("domain")
    # libvirt 9.0's qemuxml2xmloutdata (symlinked duplicates aside) and virt-manager's
    # xmlparse domains.
    assert len(domains) >= 500
    assert {d.source for d in domains} == {s.name for s in corpus.SOURCES}
    assert {"pool", "volume", "network"} <= {d.kind for d in corpus.documents()}


def test_the_test_driver_takes_nearly_all_of_them(test_driver) -> None:  # noqa: F811
    domains = corpus.documents("domain")
    taken = [d for d in domains if accepts(test_driver, d.xml)]
    # The few it refuses need a real driver's features (FD passing, audio ids...).
    assert len(taken) >= len(domains) - 20


def test_flatten_names_every_element_attribute_and_prefix() -> None:
    flat = flatten('<domain xmlns:app1="urn:a"><devices><disk type="file"/>'
                   '<disk type="block"><app1:x>t</app1:x></disk></devices></domain>')
    assert flat["/domain/devices[1]/disk[2]/@type"] == "block"
    assert flat["/domain/devices[1]/disk[2]/{urn:a}x[1]"] == "t"
    assert flat["/domain/devices[1]/disk[2]/{urn:a}x[1]/#prefix"] == "app1"


def test_differences_see_a_lost_attribute_and_a_rewritten_prefix() -> None:
    before = '<a xmlns:app1="urn:a"><b c="1" d="2"/><app1:m/></a>'
    after = '<a xmlns:ns0="urn:a"><b c="1"/><ns0:m/></a>'
    assert differences(before, after) == [
        Difference("/a/b[1]/@d", "2", None),
        Difference("/a/{urn:a}m[1]/#prefix", "app1", "ns0"),
    ]


def test_outside_keeps_only_changes_beyond_the_edit() -> None:
    changes = differences('<d><vcpu current="1">2</vcpu><memory>5</memory></d>',
                          '<d><vcpu>4</vcpu><memory>6</memory></d>')
    assert outside(changes, "/d/vcpu") == [Difference("/d/memory[1]", "5", "6")]
    assert outside(changes, "/d/vcpu", "/d/memory") == []


@pytest.mark.parametrize("document", ["<a><!DOCTYPE x></a>", "<a>&undefined;</a>", "<a"])
def test_flatten_refuses_broken_documents(document: str) -> None:
    with pytest.raises(Exception):  # noqa: B017  (lxml's syntax error)
        flatten(document)
