"""Apply every edit to every corpus document and count what each kind of edit lost.

Run as ``python -m tests.xml.corpus_table`` for the table as JSON (always in a
process of its own: see tests/xml/drivers.py); the corpus test runs it so and
asserts on its figures.  For each document the test driver stores, each edit
that fits it is applied to the stored text (read with its secrets, as the app reads
before writing back); the result must differ from it only where the edit points, and
libvirt must take it: the test driver always, and QEMU's driver embedded in this
process where it took the document before the edit.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import libvirt

from tests.xml import corpus
from tests.xml.corpus_edits import applicable
from tests.xml.drivers import defined_again, refusal
from virtstudio.core.errors import VirtStudioError
from virtstudio.machines import config_edits
from virtstudio.machines.clone import clone_xml
from virtstudio.machines.groups import Groups, groups_in_xml, write_groups
from virtstudio.xml import Domain
from virtstudio.xml.base import remove_element


@dataclass
class KindRow:
    documents: int = 0  # documents this kind of edit applied to
    edits: int = 0
    losses: list[str] = field(default_factory=list)  # "document edit: path before -> after"
    refused: list[str] = field(default_factory=list)  # by the test driver
    refused_qemu: list[str] = field(default_factory=list)  # by the embedded QEMU driver
    declined: list[str] = field(default_factory=list)  # the app said why it would not
    # Declined although libvirt takes the edit made regardless: stricter than libvirt.
    stricter: list[str] = field(default_factory=list)


@dataclass
class CorpusTable:
    documents: int = 0
    stored: int = 0  # documents the test driver took
    qemu_checked: int = 0  # of those, documents QEMU's driver took too
    kinds: dict[str, KindRow] = field(default_factory=dict)

    def as_json(self, details: bool = False) -> dict:
        out = {"documents": self.documents, "stored_by_test_driver": self.stored,
                "accepted_by_qemu_driver": self.qemu_checked,
                "kinds": {k: {"documents": r.documents, "edits": r.edits,
                              "losses": len(r.losses), "test_driver_refusals": len(r.refused),
                              "qemu_driver_refusals": len(r.refused_qemu),
                              "declined_with_reason": len(r.declined),
                              "declined_but_libvirt_takes": len(r.stricter)}
                          for k, r in sorted(self.kinds.items())}}
        if details:
            out["problems"] = [f"{k}: {line}" for k, r in sorted(self.kinds.items())
                               for line in r.losses + r.refused + r.refused_qemu + r.stricter]
            out["declined"] = [f"{k}: {line}" for k, r in sorted(self.kinds.items())
                               for line in r.declined]
        return out


def _file_in_groups(row: KindRow, conn: libvirt.virConnect, label: str, stored: str) -> None:
    """Folders and tags go into the machine's metadata through libvirt itself
    (machines/groups.py): everything outside ``<metadata>`` must stay as it was."""
    dom = conn.defineXML(stored)
    try:
        write_groups(dom, Groups("vstest/corpus", ("web", "db-1")))
        after = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        dom.undefine()
    row.documents += 1
    row.edits += 1
    lost = corpus.outside(corpus.differences(stored, after), "/domain/metadata")
    row.losses += [f"{label} groups: {d}" for d in lost]
    if groups_in_xml(after) != Groups("vstest/corpus", ("web", "db-1")):
        row.losses.append(f"{label} groups: read back as {groups_in_xml(after)}")


_CLONE_PATHS = ("/domain/name", "/domain/uuid", "/domain/os/nvram",
                "/domain/devices/interface/mac", "/domain/devices/graphics/@port",
                "/domain/devices/graphics/@tlsPort", "/domain/devices/graphics/@autoport",
                "/domain/devices/graphics/@websocket")


def _clone(row: KindRow, conn: libvirt.virConnect, qemu_conn: libvirt.virConnect | None,
           label: str, stored: str) -> None:
    """A clone beside its source: only what must differ between two machines changes,
    and libvirt takes the clone while the source is defined."""
    result = clone_xml(stored, "vstest-corpus-clone", {}, set(), random.Random(7))
    before = Domain.from_xml(stored)
    for path in ("sysinfo/system/entry[@name='uuid']", "devices/interface/target",
                 "devices/serial/log", "devices/console/log"):
        for element in before.element.findall(path):
            remove_element(element)  # removed on purpose: see clone_xml
    row.documents += 1
    row.edits += 1
    lost = corpus.outside(corpus.differences(before.to_xml(), result), *_CLONE_PATHS)
    row.losses += [f"{label} clone: {d}" for d in lost]
    for judge, refused in ((conn, row.refused), (qemu_conn, row.refused_qemu)):
        if judge is None:
            continue
        source = judge.defineXML(stored)
        try:
            if why := refusal(judge, result):
                refused.append(f"{label} clone: {why}")
        finally:
            source.undefine()


@contextmanager
def _no_conflict_checks() -> Iterator[None]:
    """The edits as they would be without the app's own refusals (edit_conflicts)."""
    names = ("disk_bus_conflicts", "disk_cache_conflicts", "nic_plug_conflicts",
             "nic_model_conflicts")
    saved = {n: getattr(config_edits, n) for n in names}
    try:
        for name in names:
            setattr(config_edits, name, lambda *_a: [])
        yield
    finally:
        for name, fn in saved.items():
            setattr(config_edits, name, fn)


def build(test_conn: libvirt.virConnect, qemu_conn: libvirt.virConnect | None) -> CorpusTable:
    table = CorpusTable()
    for doc in corpus.documents("domain"):
        table.documents += 1
        try:
            # Twice: libvirt settles some values (a second console's port) only on the
            # second reading, and an edit must be compared with the settled document.
            stored = defined_again(test_conn, defined_again(test_conn, doc.xml))
        except libvirt.libvirtError:
            continue
        table.stored += 1
        qemu_took = qemu_conn is not None and refusal(qemu_conn, stored) == ""
        table.qemu_checked += qemu_took
        _file_in_groups(table.kinds.setdefault("folders/tags", KindRow()), test_conn, doc.label,
                        stored)
        _clone(table.kinds.setdefault("clone", KindRow()), test_conn,
               qemu_conn if qemu_took else None, doc.label, stored)
        seen: set[str] = set()
        for case in applicable(Domain.from_xml(stored)):
            row = table.kinds.setdefault(case.kind, KindRow())
            before, after = Domain.from_xml(stored), Domain.from_xml(stored)
            allowed = case.allowed(before)
            try:
                case.apply(after)
            except VirtStudioError as exc:
                row.declined.append(f"{doc.label} {case.name}: {exc}")
                forced = Domain.from_xml(stored)
                with _no_conflict_checks():
                    case.apply(forced)
                took_test = refusal(test_conn, forced.to_xml()) == ""
                took_qemu = not qemu_took or refusal(qemu_conn, forced.to_xml()) == ""
                if took_test and took_qemu:
                    row.stricter.append(f"{doc.label} {case.name}: {exc}")
                continue
            case.prune(before)
            row.edits += 1
            if case.kind not in seen:
                seen.add(case.kind)
                row.documents += 1
            result = after.to_xml()
            lost = corpus.outside(corpus.differences(before.to_xml(), result), *allowed)
            row.losses += [f"{doc.label} {case.name}: {d}" for d in lost]
            if why := refusal(test_conn, result):
                row.refused.append(f"{doc.label} {case.name}: {why}")
            if qemu_took and (why := refusal(qemu_conn, result)):
                row.refused_qemu.append(f"{doc.label} {case.name}: {why}")
    return table


def main() -> int:
    """Print the table, with every problem and every declined edit, as JSON."""
    import shutil
    import tempfile
    from pathlib import Path

    from virtstudio.core.events import ensure_event_loop

    ensure_event_loop()  # the embedded driver needs one
    folder = Path(tempfile.mkdtemp(prefix="vstest-corpus-"))
    try:
        (folder / "node.xml").write_text("<node/>")
        test_conn = libvirt.open(f"test://{folder / 'node.xml'}")
        try:
            qemu_conn = libvirt.open(f"qemu:///embed?root={folder / 'qemu'}")
        except libvirt.libvirtError as exc:
            print(f"QEMU's embedded driver does not open here: {exc}", file=sys.stderr)
            qemu_conn = None
        table = build(test_conn, qemu_conn)
        print(json.dumps(table.as_json(details=True), indent=1))
        if qemu_conn is not None:
            qemu_conn.close()
        test_conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
