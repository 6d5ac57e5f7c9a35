"""A clone's definition, as an expected-XML pair: what two machines must not share is
made anew (name, UUID also in SMBIOS, MACs, tap names, fixed display ports, log files,
UEFI variables), the disks read their new files, and everything else stays as written."""

from __future__ import annotations

import os
import random

from tests.xml.pairs import DATA, read
from virtstudio.machines.clone import clone_xml


def test_clone_definition() -> None:
    got = clone_xml(read("clone-in.xml"), "web-2", {"vda": ("/img/web-2-vda.qcow2", "qcow2")},
                    {"52:54:00:11:22:33"}, random.Random(7)) + "\n"
    out = DATA / "clone-out.xml"
    if os.environ.get("REGENERATE_XML") == "1":
        out.write_text(got)
    assert got == out.read_text()
