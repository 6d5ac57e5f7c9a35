"""Tags/folders in domain metadata, and the checks on a hand-edited XML (test driver)."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from virtstudio.core.jobs import JobState
from virtstudio.machines import groups as g
from virtstudio.machines.xml_edit import check_xml_edit, xml_diff

BASE = ("<domain type='test'><name>web1</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f"
        "</uuid><memory>1024</memory></domain>")


def test_tag_and_folder_tokens_match():
    groups = g.Groups("prod/web", ("frontend", "Blue"))
    assert groups.matches("tag:blue") is True
    assert groups.matches("tag:green") is False
    assert groups.matches("folder:prod") is True
    assert groups.matches("folder:prod/web") is True
    assert groups.matches("folder:pro") is False
    assert groups.matches("web") is None
    assert groups.label == "prod/web  #frontend #Blue"
    assert g.Groups("", ("a",)).label == "#a" and g.NO_GROUPS.label == ""


def test_typed_groups_are_checked():
    assert g.parse_tags("web, db  web") == ("web", "db")
    assert g.check_groups("prod/web", "a, b") == ""
    assert "folder" in g.check_groups("prod//web", "")
    assert "not a tag" in g.check_groups("", "ok, b@d")


def test_groups_round_trip_through_metadata(test_host, job_runner):
    host = test_host
    dom = next(iter(host.domains.values()))
    job = g.save_groups(job_runner, host, dom, g.Groups("prod", ("web", "db")))
    wait_for(lambda: job.state.finished, 10)
    assert job.state is JobState.DONE, job.log_text()
    wait_for(lambda: g.groups_of(host.domains[dom.uuid]).tags == ("web", "db"), 5)
    assert g.groups_of(host.domains[dom.uuid]).folder == "prod"
    assert "virtstudio:groups" in host.domains[dom.uuid].xml
    job = g.save_groups(job_runner, host, dom, g.NO_GROUPS)
    wait_for(lambda: job.state.finished, 10)
    wait_for(lambda: g.groups_of(host.domains[dom.uuid]).empty, 5)


@pytest.mark.parametrize("edited, expected", [
    ("", "empty"),
    ("<domain><name>web1</name>", "not well-formed at line 1"),
    ("<network><name>web1</name></network>", "must be <domain>"),
    (BASE.replace("web1", "web2"), "name must stay"),
    (BASE.replace("6695eb01", "7795eb01"), "UUID must stay"),
])
def test_bad_xml_is_refused_with_a_reason(edited, expected):
    assert expected in check_xml_edit(BASE, edited)


def test_diff_shows_the_change():
    edited = BASE.replace("><", ">\n<").replace("1024", "2048")
    original = BASE.replace("><", ">\n<")
    assert check_xml_edit(original, edited) == ""
    diff = xml_diff(original, edited)
    assert "-<memory>1024</memory>" in diff and "+<memory>2048</memory>" in diff
    assert xml_diff(original, original) == ""
