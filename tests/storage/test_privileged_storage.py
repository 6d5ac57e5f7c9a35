"""Storage operations of the privileged helper: checked arguments, free devices only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from virtstudio.core.errors import VirtStudioError
from virtstudio.privileged.client import run_privileged
from virtstudio.privileged.operations import check_request

REPO = Path(__file__).resolve().parents[2]


def blkid(device: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize(("request_", "fragment"), [
    ({"op": "create_partition_table", "args": {"device": "/dev/loop0", "label": "zfs"}},
     "not a partition table type"),
    ({"op": "create_partition_table", "args": {"device": "/dev/../etc/passwd",
                                               "label": "gpt"}}, "not a disk device"),
    ({"op": "create_partition_table", "args": {"device": "/dev/sda; reboot", "label": "gpt"}},
     "not a disk device"),
    ({"op": "set_thin_autoextend", "args": {"vg": "vg0", "pool": "p", "threshold": 101,
                                            "percent": 20}}, "not a percentage"),
    ({"op": "set_thin_autoextend", "args": {"vg": "vg 0", "pool": "p", "threshold": 80,
                                            "percent": 20}}, "not a name LVM accepts"),
    ({"op": "set_thin_autoextend", "args": {"vg": "vg0", "pool": "p", "threshold": True,
                                            "percent": 20}}, "not a percentage"),
])
def test_bad_arguments_are_refused_before_anything_runs(request_, fragment):
    with pytest.raises(VirtStudioError, match=fragment):
        check_request(request_)
    done = subprocess.run([sys.executable, "-m", "virtstudio.privileged.helper"],
                          input=json.dumps(request_), capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    answer = json.loads(done.stdout)
    assert done.returncode == 1 and fragment in answer["error"]


def test_partition_table_on_a_free_disk_only(make_loop):
    free, formatted = make_loop(), make_loop()
    run_privileged("create_partition_table", device=free, label="gpt")
    assert "PTTYPE=gpt" in blkid(free)
    subprocess.run(["mkfs.ext4", "-q", "-F", formatted], check=True, capture_output=True)
    with pytest.raises(VirtStudioError, match=r"carries a file system or signature \(ext4\)"):
        run_privileged("create_partition_table", device=formatted, label="dos")
    assert "TYPE=ext4" in blkid(formatted) and "PTTYPE" not in blkid(formatted)
    with pytest.raises(VirtStudioError, match=r"a gpt partition table.*nothing was changed"):
        run_privileged("create_partition_table", device=free, label="dos")
    assert "PTTYPE=gpt" in blkid(free)


def test_autoextend_needs_an_existing_thin_pool():
    with pytest.raises(VirtStudioError, match=r"no volume group|no thin pool|failed"):
        run_privileged("set_thin_autoextend", vg="vsnovg", pool="thinpool", threshold=80,
                       percent=20)
    with pytest.raises(VirtStudioError, match="Grow the pool by 1 to 100"):
        run_privileged("set_thin_autoextend", vg="vsnovg", pool="thinpool", threshold=80,
                       percent=0)
