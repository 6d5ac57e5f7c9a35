"""Every edit the app offers, applied to every real document it fits (tests/xml/corpus.py).

An edit may change only what it points at (tests/xml/corpus_edits.py), libvirt's
test driver must take every result, and QEMU's own driver every result made from a
document it took.  Where the app declines an edit it says why, and libvirt must
refuse that edit too: our checks explain libvirt's refusals, never add to them.
The table is made in a process of its own (tests/xml/drivers.py says why).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.xml.corpus import REPO, documents


def test_edits_change_only_their_target_across_the_corpus() -> None:
    documents()  # fetched here, so the child process finds them cached
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "tests.xml.corpus_table"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    table = json.loads(done.stdout)
    print(json.dumps({k: v for k, v in table.items() if k != "declined"}, indent=1))
    assert table["stored_by_test_driver"] >= 500
    assert table["accepted_by_qemu_driver"] >= 350, done.stderr[-2000:]
    assert not table["problems"], "\n".join(table["problems"][:60])
    applied = {kind: row["documents"] for kind, row in table["kinds"].items()}
    # Each kind of edit met enough documents to mean something.
    assert applied.keys() >= {"vcpus", "memory", "boot", "graphics", "password", "video",
                              "disks", "nics", "folders/tags", "clone"}
    assert min(applied.values()) >= 50, applied
