"""Editing a machine's raw XML: checks before libvirt sees it, and the diff to confirm."""

from __future__ import annotations

import difflib

import libvirt

from virtstudio.core.connection import HostConnection
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.xml import Domain, XMLError, canonical, parse_element


def check_xml_edit(original: str, edited: str) -> str:
    """What stops ``edited`` from replacing ``original``, in plain words; "" when nothing.

    Renaming or changing the UUID here would define a second machine instead of
    changing this one, so both are refused.
    """
    if not edited.strip():
        return "The XML is empty."
    try:
        root = parse_element(edited)
    except XMLError as exc:
        return (f"The XML is not well-formed at line {exc.line}, column {exc.column}: "
                f"{exc.msg}.")
    if root.tag != "domain":
        return f"The top element must be <domain>, not <{root.tag}>."
    before, after = Domain.from_xml(original), Domain(root)
    old_name, new_name = before.name or "", after.name or ""
    if new_name.strip() != old_name.strip():
        return (f"The name must stay “{old_name}”: changing it here would define another "
                "machine. Rename the machine instead.")
    old_uuid, new_uuid = before.uuid or "", after.uuid or ""
    if _uuid_key(new_uuid) != _uuid_key(old_uuid):
        return f"The UUID must stay {old_uuid}: a different one would define another machine."
    return ""


def _uuid_key(text: str) -> str:
    """A UUID as libvirt compares it: dashes and spaces are optional, case is not kept."""
    return "".join(c for c in text if c not in "- \t\n").lower()


def xml_diff(original: str, edited: str) -> str:
    """A unified diff of what applying ``edited`` changes; "" when nothing does."""
    lines = difflib.unified_diff(original.splitlines(), edited.splitlines(),
                                 "saved configuration", "your edit", lineterm="", n=2)
    return "\n".join(lines)


def read_inactive_xml(conn: libvirt.virConnect, uuid: str) -> str:
    """The saved configuration, which is what an edit replaces (call on the worker)."""
    dom = conn.lookupByUUIDString(uuid)
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
    return dom.XMLDesc(flags | libvirt.VIR_DOMAIN_XML_SECURE)


def same_config(a: str, b: str) -> bool:
    """Whether two XML texts describe the same configuration (layout aside)."""
    try:
        return canonical(a) == canonical(b)
    except XMLError:
        return a == b


# The detail of the error below, so an editor can tell it from libvirt refusing the XML.
CHANGED_AGAIN = "The saved configuration differs from the one the user reviewed."


def require_saved(conn: libvirt.virConnect, uuid: str, expected: str, name: str) -> None:
    """Refuse to write when the saved configuration is no longer ``expected``.

    The user reviewed ``expected`` just before; a change landing after that would
    otherwise be overwritten unseen (libvirt has no compare-and-define).
    """
    if not same_config(read_inactive_xml(conn, uuid), expected):
        raise VirtStudioError(f"The configuration of {name} changed again while you "
                              "decided; nothing was applied. Apply again to see what "
                              "changed.", CHANGED_AGAIN)


def define_edited_xml(runner: JobRunner, host: HostConnection, uuid: str, original: str,
                      edited: str, saved: str | None = None) -> Job:
    """Check ``edited`` and define it as a job; raise VirtStudioError when it is refused.

    With ``saved``, nothing is defined unless the saved configuration is still that.
    """
    problem = check_xml_edit(original, edited)
    if problem:
        raise VirtStudioError(problem)
    name = Domain.from_xml(edited).name or ""

    def work(job: Job) -> None:
        job.report(None, f"Saving the edited XML of {name}")
        conn = host.virconn
        dom = conn.lookupByUUIDString(uuid)
        if not dom.isPersistent():
            raise VirtStudioError(f"{name} is transient: there is no saved configuration "
                                  "to change.")
        if saved is not None:
            require_saved(conn, uuid, saved, name)
        conn.defineXML(edited)
        if dom.isActive():
            job.log("The machine is running: the new configuration applies at next boot.")
        host.refresh_domain(uuid)

    return runner.submit(f"Edit XML of {name}", work, host=host.name, target=name)
