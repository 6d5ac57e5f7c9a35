"""Libvirt XML from a remote host or a guest-influenced field is read without entities.

Every reader goes through the layer's hardened parser (virtstudio/xml/base.py): an
external entity must not pull a local file into what the app shows or writes back,
and nested entities must not blow up into gigabytes (docs/security.md, "Libvirt XML").
"""

from __future__ import annotations

import pytest

from virtstudio.core.domain_xml import parse_domain_xml
from virtstudio.xml import Domain, XMLError

_READS_PASSWD = ("<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                 "<domain type='kvm'><name>&x;</name><description>&x;</description>"
                 "</domain>")
_BOMB = ("<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>"
         + "".join(f"<!ENTITY {c} '&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};'>"
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True))
         + "]><domain><name>&i;</name></domain>")


def test_an_external_entity_reads_no_local_file() -> None:
    domain = Domain.from_xml(_READS_PASSWD)
    assert "root:" not in domain.to_xml()
    assert not domain.name


def test_the_summary_reader_reads_no_local_file_either() -> None:
    try:
        summary = parse_domain_xml(_READS_PASSWD)
    except (XMLError, ValueError):
        return
    assert "root:" not in repr(summary)


def test_entity_bombs_stay_small() -> None:
    try:
        domain = Domain.from_xml(_BOMB)
    except XMLError:
        return
    assert len(domain.to_xml()) < 10_000


@pytest.mark.parametrize("text", ["<!DOCTYPE d SYSTEM 'http://127.0.0.1:9/d.dtd'><domain/>"])
def test_no_document_type_is_fetched(text: str) -> None:
    Domain.from_xml(text)  # would block or fail on a fetch; the parser never tries
