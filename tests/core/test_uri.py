import pytest

from virtstudio.core import uri
from virtstudio.core.errors import VirtStudioError


@pytest.mark.parametrize("value", [
    "qemu:///system", "qemu:///session", "lxc:///system", "xen:///system",
    "qemu+ssh://root@host.example/system", "qemu+ssh://host/system?keyfile=/k",
    "qemu+tcp://127.0.0.1:16509/system", "test:///default", "test:///tmp/x.xml",
    "qemu+ssh://admin@[fe80::1]/system",
])
def test_accepts_valid_uris(value):
    assert uri.parse(value).uri == value


@pytest.mark.parametrize(("value", "fragment"), [
    ("", "Enter a connection URI"),
    ("foo", "not a connection URI"),
    ("qemu:///nonsense", "/system or /session"),
    ("bogus:///system", "Unknown hypervisor driver"),
    ("qemu+carrier-pigeon://h/system", "Unknown transport"),
    ("qemu+ssh:///system", "needs a host name"),
    ("qemu:///sys tem", "contains spaces"),
    ("qemu+ssh://bad_host!/system", "not a valid host"),
    ("qemu+tcp://h:99999/system", "not a valid connection URI"),
    ("test://", "needs a path"),
])
def test_rejects_invalid_uris_with_message(value, fragment):
    with pytest.raises(VirtStudioError, match=fragment):
        uri.parse(value)


def test_presets():
    by_key = {p.key: p for p in uri.PRESETS}
    assert uri.preset_uri(by_key["qemu-system"]) == "qemu:///system"
    assert uri.preset_uri(by_key["qemu-ssh"], "alice", "kvm1") == "qemu+ssh://alice@kvm1/system"
    assert uri.preset_uri(by_key["qemu-ssh"], "", "kvm1") == "qemu+ssh://kvm1/system"
    with pytest.raises(VirtStudioError):
        uri.preset_uri(by_key["qemu-ssh"], "alice", "")
    with pytest.raises(VirtStudioError):
        uri.preset_uri(by_key["qemu-ssh"], "al ice", "kvm1")


def test_display_names(tmp_path):
    fixture = tmp_path / "demo.xml"
    assert uri.display_name(f"test://{fixture}", fixture) == "Demo host"
    assert uri.display_name("qemu:///system") == "QEMU/KVM (localhost)"
    assert uri.display_name("qemu+ssh://a@kvm1/system") == "QEMU/KVM on kvm1"
