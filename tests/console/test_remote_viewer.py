"""The .vv file handed to remote-viewer, and the addresses it may use."""

from __future__ import annotations

import pytest

from virtstudio.console.remote_viewer import graphics_password, viewer_address, vv_file


def test_vv_file_holds_the_connection_and_asks_to_be_deleted():
    text = vv_file(kind="spice", host="127.0.0.1", port=5901, password="pw", title="web")
    lines = text.splitlines()
    assert lines[0] == "[virt-viewer]"
    fields = dict(line.split("=", 1) for line in lines[1:])
    assert fields == {"type": "spice", "host": "127.0.0.1", "port": "5901", "password": "pw",
                      "title": "web", "delete-this-file": "1", "fullscreen": "0"}
    assert "password" not in vv_file(kind="vnc", host="h", port=5900, password=None, title="t")


@pytest.mark.parametrize("field", ["password", "title", "host"])
def test_line_breaks_are_refused(field):
    values = {"kind": "spice", "host": "h", "port": 5900, "password": "p", "title": "t"}
    values[field] = "x\ntype=vnc"
    with pytest.raises(ValueError, match="line break"):
        vv_file(**values)


def test_bad_kind_and_port_are_refused():
    with pytest.raises(ValueError, match="cannot open"):
        vv_file(kind="sdl", host="h", port=5900, password=None, title="t")
    with pytest.raises(ValueError, match="not a valid port"):
        vv_file(kind="vnc", host="h", port=0, password=None, title="t")


def test_addresses_for_local_and_remote_hosts():
    assert viewer_address("qemu:///system", "127.0.0.1") == "127.0.0.1"
    assert viewer_address("qemu:///system", "0.0.0.0") == "127.0.0.1"
    assert viewer_address("qemu+ssh://root@kvm1/system", "0.0.0.0") == "kvm1"
    assert viewer_address("qemu+ssh://root@kvm1/system", "10.0.0.5") == "10.0.0.5"
    with pytest.raises(LookupError, match="loopback"):
        viewer_address("qemu+ssh://root@kvm1/system", "127.0.0.1")


def test_password_comes_from_the_secure_xml():
    xml = ("<domain><devices><graphics type='vnc'/><graphics type='spice' passwd='s'/>"
           "</devices></domain>")
    assert graphics_password(xml, 1) == "s"
    assert graphics_password(xml, 0) is None
    assert graphics_password(xml, 5) is None
