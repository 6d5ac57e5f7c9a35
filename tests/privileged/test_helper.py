"""The privileged helper as a separate process: allowlisted, validated, answers in words."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.network.conftest import ip
from virtstudio.core.errors import VirtStudioError
from virtstudio.privileged.client import run_privileged
from virtstudio.privileged.operations import check_request

REPO = Path(__file__).resolve().parents[2]


def helper(request) -> tuple[int, dict]:
    text = request if isinstance(request, str) else json.dumps(request)
    done = subprocess.run([sys.executable, "-m", "virtstudio.privileged.helper"], input=text,
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    return done.returncode, json.loads(done.stdout)


def test_allowed_operation_runs(netns):
    ns = netns("helper")
    code, answer = helper({"op": "create_bridge", "args": {"name": "vshelp0", "netns": ns}})
    assert code == 0 and answer["ok"], answer
    assert "vshelp0" in ip("-n", ns, "link", "show").stdout


@pytest.mark.parametrize(("request_", "fragment"), [
    ("not json", "not JSON"),
    ({"op": "run_shell", "args": {"cmd": "id"}}, "not an operation"),
    ({"op": "create_bridge", "args": {}}, "needs name"),
    ({"op": "create_bridge", "args": {"name": "x; rm -rf /"}}, "not a usable interface"),
    ({"op": "create_bridge", "args": {"name": "br0", "extra": 1}}, "takes no argument extra"),
    ({"op": "create_vlan", "args": {"parent": "eth0", "vlan_id": 4095}}, "outside 1-4094"),
    ({"op": "set_port_vlan", "args": {"port": "eth0", "pvid": 10, "tagged": [20, 0]}},
     "outside 1-4094"),
    ({"op": "create_veth", "args": {"name": "v0", "peer": "v0;reboot"}},
     "not a usable interface"),
    ({"op": "create_volume_group", "args": {"name": "vg0", "devices": ["/etc/passwd"]}},
     "not a disk device"),
    ({"op": "create_thin_pool", "args": {"vg": "vg0", "name": "-p", "size": 1}},
     "not a name LVM accepts"),
    ({"op": "extend_volume", "args": {"vg": "vg0", "name": "lv", "size": -5}},
     "not a size"),
])
def test_refusals_are_words_and_change_nothing(request_, fragment):
    code, answer = helper(request_)
    assert code == 1 and not answer["ok"]
    assert fragment in answer["error"]
    assert "Traceback" not in answer["error"]


def test_veth_pair_through_the_helper(netns):
    ns = netns("helperveth")
    code, answer = helper({"op": "create_veth", "args": {"name": "vshv0", "peer": "vshv0p",
                                                         "netns": ns}})
    assert code == 0 and answer["ok"], answer
    shown = ip("-n", ns, "link", "show").stdout
    assert "vshv0@vshv0p" in shown and "vshv0p@vshv0" in shown


def test_client_checks_before_asking_and_runs_directly_as_root(netns):
    with pytest.raises(VirtStudioError, match="outside 1-4094"):
        run_privileged("create_vlan", parent="eth0", vlan_id=0)
    ns = netns("client")
    run_privileged("create_bridge", name="vsclient0", netns=ns)
    assert "vsclient0" in ip("-n", ns, "link", "show").stdout
    with pytest.raises(VirtStudioError, match="exists already"):
        run_privileged("create_bridge", name="vsclient0", netns=ns)


def test_every_operation_declares_checked_arguments():
    with pytest.raises(VirtStudioError):
        check_request({"op": "delete_link", "args": {"name": "lo", "confirmed": "yes"}})


def test_polkit_policy_names_the_installed_helper():
    root = ET.parse(REPO / "packaging/polkit/org.virtstudio.VirtStudio.policy").getroot()
    action = root.find("action")
    assert action.get("id") == "org.virtstudio.VirtStudio.host-change"
    path = action.find("annotate[@key='org.freedesktop.policykit.exec.path']").text
    assert path == "/usr/libexec/virtstudio/virtstudio-helper"
    assert (REPO / "packaging/polkit/virtstudio-helper").stat().st_mode & 0o111
