"""VmSpec checks, domain XML and capability parsing, without Qt."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.helpers import wait_for
from virtstudio.core.entities import StoragePool, Volume
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.jobs import JobState
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import (
    HostFacts,
    discover,
    parse_capabilities,
    parse_domain_capabilities,
)
from virtstudio.machines.import_image import (
    ImportSite,
    chain_problem,
    import_site,
    review_import,
)
from virtstudio.machines.new_vm import (
    DiskChoice,
    Field,
    GiB,
    HostContext,
    InstallSource,
    NetworkChoice,
    VmSpec,
    parse_disk_size,
    parse_memory_mib,
    suggest_name,
    to_domain_xml,
    validate,
)
from virtstudio.machines.os_variants import by_id, parse_osinfo_query
from virtstudio.storage.backing_chains import ChainReview, PoolPlaces
from virtstudio.storage.qemu_img import ImageInfo

# A host as libvirt describes one with QEMU for x86_64 (KVM usable) and aarch64 (emulated).
MULTI_ARCH_CAPS = """<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize>
  <emulator>/usr/bin/qemu-system-x86_64</emulator>
  <machine maxCpus='255'>pc-i440fx-7.2</machine>
  <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
  <machine maxCpus='288'>pc-q35-7.2</machine>
  <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>
  <domain type='qemu'/><domain type='kvm'/></arch></guest>
<guest><os_type>hvm</os_type><arch name='aarch64'><wordsize>64</wordsize>
  <emulator>/usr/bin/qemu-system-aarch64</emulator>
  <machine maxCpus='512'>virt-7.2</machine>
  <machine canonical='virt-7.2' maxCpus='512'>virt</machine>
  <machine maxCpus='4'>raspi3b</machine>
  <domain type='qemu'/></arch></guest>
<guest><os_type>xen</os_type><arch name='x86_64'><domain type='xen'/></arch></guest>
</capabilities>"""

DOMCAPS_WITH_EFI = """<domainCapabilities><vcpu max='288'/><os supported='yes'>
<enum name='firmware'><value>bios</value><value>efi</value></enum></os>
<devices><graphics supported='yes'><enum name='type'><value>vnc</value></enum></graphics>
</devices></domainCapabilities>"""


def pool(name: str = "default", available: int = 50 * GiB, active: bool = True,
         volumes: tuple[Volume, ...] = ()) -> StoragePool:
    entity = StoragePool("test:///x", f"uuid-{name}", (
        f"<pool type='dir'><name>{name}</name><capacity unit='bytes'>{100 * GiB}</capacity>"
        f"<available unit='bytes'>{available}</available>"
        f"<target><path>/pools/{name}</path></target></pool>"), active, False)
    entity.volumes = list(volumes)
    return entity


@pytest.fixture
def facts() -> HostFacts:
    host_arch, arches = parse_capabilities(MULTI_ARCH_CAPS)
    return HostFacts(host_arch, tuple(arches), memory_mib=8192, bridges=("br0",),
                     bridges_known=True)


@pytest.fixture
def ctx(facts, tmp_path) -> HostContext:
    (tmp_path / "installer.iso").write_bytes(b"\0" * 2048)
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    (tmp_path / "initrd.gz").write_bytes(b"initrd")
    taken = Volume("taken.qcow2", "/pools/default/taken.qcow2", GiB, 0, "qcow2")
    return HostContext("Lab host", facts, frozenset({"web-01"}),
                       {"default": pool(volumes=(taken,)), "small": pool("small", GiB),
                        "stopped": pool("stopped", active=False)},
                       {"default": True, "isolated": False})


@pytest.fixture
def spec(tmp_path) -> VmSpec:
    return VmSpec(name="new-vm", iso=str(tmp_path / "installer.iso"), arch="x86_64",
                  machine="q35", domain_type="kvm", disk_pool="default",
                  network_source="default", graphics="vnc")


def test_capabilities_list_arches_with_emulators_and_kvm_first(facts):
    assert facts.host_arch == "x86_64"
    assert [a.arch for a in facts.arches] == ["x86_64", "aarch64"]  # xen guests left out
    x86 = facts.arch("x86_64")
    assert x86.domain_types == ("kvm", "qemu")
    assert x86.machines[:2] == ("q35", "pc") and "pc-q35-7.2" in x86.machines
    assert x86.max_vcpus == 288
    arm = facts.arch("aarch64")
    assert arm.domain_types == ("qemu",) and arm.machines[0] == "virt"
    assert arm.emulator == "/usr/bin/qemu-system-aarch64"


@pytest.mark.parametrize(("features", "first"), [
    ("<feature name='vmx'/><feature name='hypervisor'/>", "kvm"),
    ("<feature name='svm'/>", "kvm"),
    ("<feature name='hypervisor'/><feature name='avx512f'/>", "qemu"),
])
def test_kvm_comes_first_only_where_the_processor_can_virtualize(features, first):
    caps = MULTI_ARCH_CAPS.replace("<arch>x86_64</arch></cpu>",
                                   f"<arch>x86_64</arch>{features}</cpu>")
    _host, arches = parse_capabilities(caps)
    assert arches[0].domain_types[0] == first
    assert set(arches[0].domain_types) == {"kvm", "qemu"}  # both stay offered


def test_domain_capabilities_say_whether_uefi_is_installed():
    assert parse_domain_capabilities(DOMCAPS_WITH_EFI) == (True, 288, ("vnc",))
    assert parse_domain_capabilities(DOMCAPS_WITH_EFI.replace("<value>efi</value>", ""))[0] \
        is False


def test_discovery_on_the_test_driver():
    conn = libvirt.open("test:///default")
    try:
        facts = discover(conn)
    finally:
        conn.close()
    assert [a.arch for a in facts.arches] == ["i686"]
    assert facts.arches[0].domain_types == ("test",)
    assert facts.memory_mib > 0 and facts.default_arch.arch == "i686"


def test_a_valid_spec_has_no_problems(spec, ctx):
    assert validate(spec, ctx) == {}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"name": "my vm"}, Field.NAME, "cannot contain spaces"),
    ({"name": "a/b"}, Field.NAME, "cannot contain slashes"),
    ({"name": "web-01"}, Field.NAME, "Lab host already has a machine called web-01"),
    ({"name": "-x"}, Field.NAME, "starting with a letter or digit"),
    ({"name": "x" * 65}, Field.NAME, "at most 64"),
    ({"memory_mib": 0}, Field.MEMORY, "Give the machine memory"),
    ({"memory_mib": 32}, Field.MEMORY, "needs at least 64 MiB"),
    ({"memory_mib": 9000}, Field.MEMORY, "only 8192 MiB"),
    ({"vcpus": 0}, Field.VCPUS, "at least one vCPU"),
    ({"vcpus": 300}, Field.VCPUS, "at most 288"),
    ({"disk_size": 60 * GiB}, Field.DISK_SIZE, "does not fit: default has 50.0 GiB free"),
    ({"disk_size": 0}, Field.DISK_SIZE, "above zero"),
    ({"disk_pool": "stopped"}, Field.DISK_POOL, "is not running"),
    ({"disk_pool": ""}, Field.DISK_POOL, "Choose the storage pool"),
    ({"name": "taken"}, Field.DISK_POOL, "already has a volume taken.qcow2"),
    ({"iso": "/nowhere/x.iso"}, Field.ISO, "There is no ISO image at /nowhere/x.iso"),
    ({"iso": ""}, Field.ISO, "Choose an ISO image"),
    ({"iso": "relative.iso"}, Field.ISO, "full path"),
    ({"source": InstallSource.KERNEL, "kernel": "/nowhere/vmlinuz"}, Field.KERNEL,
     "There is no kernel"),
    ({"arch": "riscv64"}, Field.ARCH, "cannot run riscv64 guests"),
    ({"arch": "aarch64", "machine": "virt"}, Field.DOMAIN_TYPE, "offers qemu for aarch64"),
    ({"machine": "virt"}, Field.MACHINE, "no machine type 'virt'"),
    ({"firmware": "uefi"}, Field.FIRMWARE, "No UEFI firmware"),
    ({"network_source": "missing"}, Field.NETWORK, "no virtual network called missing"),
    ({"network_source": "isolated"}, Field.NETWORK, "is not running"),
    ({"network": NetworkChoice.BRIDGE, "network_source": "br9"}, Field.NETWORK,
     "no bridge called br9 (it has: br0)"),
    ({"network": NetworkChoice.BRIDGE, "network_source": "a bridge"}, Field.NETWORK,
     "at most 15"),
    ({"source": InstallSource.PXE, "network": NetworkChoice.NONE}, Field.NETWORK,
     "Network boot needs a network"),
    ({"graphics": "sdl"}, Field.GRAPHICS, "SPICE or VNC"),
])
def test_each_bad_input_names_its_field(spec, ctx, change, field, message):
    for key, value in change.items():
        setattr(spec, key, value)
    problems = validate(spec, ctx)
    assert field in problems, problems
    assert message in problems[field]


def test_checks_that_do_not_apply_are_skipped(spec, ctx, tmp_path):
    spec.disk, spec.disk_size = DiskChoice.NONE, 0
    spec.network, spec.network_source = NetworkChoice.NONE, ""
    assert validate(spec, ctx) == {}
    spec.network_source = "isolated"
    spec.network, spec.customize = NetworkChoice.VIRTUAL, True  # defined only: may be stopped
    assert validate(spec, ctx) == {}
    spec.source, spec.import_path = InstallSource.IMPORT, str(tmp_path / "installer.iso")
    spec.import_format = "raw"
    spec.disk, spec.disk_size = DiskChoice.NEW, 10**15  # the imported image is the disk
    assert validate(spec, ctx) == {}


def test_remote_files_are_not_judged_here(spec, ctx):
    ctx.local = False
    spec.iso = "/srv/iso/only-on-the-remote-host.iso"
    assert Field.ISO not in validate(spec, ctx)


def test_sizes_as_typed():
    assert parse_memory_mib("2048") == 2048
    assert parse_memory_mib("2G") == 2048
    assert parse_memory_mib("0") == 0 and parse_memory_mib("0G") == 0
    assert parse_disk_size("20") == 20 * GiB
    assert parse_disk_size("512M") == 512 * 1024**2
    assert parse_disk_size("0") == 0
    with pytest.raises(VirtStudioError, match="not a size"):
        parse_memory_mib("lots")


def test_suggested_names_are_free():
    assert suggest_name("linux-generic", set()) == "linux"
    assert suggest_name("debian12", {"debian12", "debian12-2"}) == "debian12-3"


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_iso_install_xml(spec):
    root = parse(to_domain_xml(spec, "/pools/default/new-vm.qcow2"))
    assert root.get("type") == "kvm" and root.findtext("name") == "new-vm"
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "2048"
    assert root.findtext("vcpu") == "2"
    os_type = root.find("os/type")
    assert (os_type.get("arch"), os_type.get("machine"), os_type.text) == ("x86_64", "q35", "hvm")
    assert [b.get("dev") for b in root.findall("os/boot")] == ["hd", "cdrom"]
    assert root.find("cpu").get("mode") == "host-passthrough"
    disks = root.findall("devices/disk")
    assert [(d.get("device"), d.find("source").get("file"), d.find("target").get("dev"),
             d.find("target").get("bus"), d.find("driver").get("type")) for d in disks] == [
        ("disk", "/pools/default/new-vm.qcow2", "vda", "virtio", "qcow2"),
        ("cdrom", spec.iso, "sda", "sata", "raw")]
    assert disks[1].find("readonly") is not None
    nic = root.find("devices/interface")
    assert nic.get("type") == "network" and nic.find("source").get("network") == "default"
    assert nic.find("model").get("type") == "virtio"
    graphics = root.find("devices/graphics")
    assert graphics.get("type") == "vnc" and graphics.get("listen") == "127.0.0.1"
    assert root.find("devices/video/model").get("type") == "virtio"


def test_kernel_boot_xml_on_an_emulated_machine(spec, tmp_path):
    spec.source, spec.domain_type, spec.machine = InstallSource.KERNEL, "qemu", "pc"
    spec.kernel, spec.initrd = str(tmp_path / "vmlinuz"), str(tmp_path / "initrd.gz")
    spec.cmdline, spec.disk, spec.graphics = "console=tty0 quiet", DiskChoice.NONE, "spice"
    root = parse(to_domain_xml(spec))
    assert root.get("type") == "qemu" and root.find("cpu") is None
    assert root.findtext("os/kernel") == spec.kernel
    assert root.findtext("os/initrd") == spec.initrd
    assert root.findtext("os/cmdline") == "console=tty0 quiet"
    assert root.findall("os/boot") == [] and root.findall("devices/disk") == []
    assert root.find("devices/graphics").get("type") == "spice"
    assert root.find("devices/channel").get("type") == "spicevmc"


def test_windows_pxe_bridge_uefi_xml(spec):
    spec.os_variant, spec.source = by_id("win11"), InstallSource.PXE
    spec.network, spec.network_source, spec.firmware = NetworkChoice.BRIDGE, "br0", "uefi"
    root = parse(to_domain_xml(spec, "/pools/default/new-vm.qcow2"))
    assert root.find("os").get("firmware") == "efi"
    assert [b.get("dev") for b in root.findall("os/boot")] == ["hd", "network"]
    assert root.find("features/hyperv/relaxed").get("state") == "on"
    assert root.find("clock").get("offset") == "localtime"
    disk = root.find("devices/disk/target")
    assert (disk.get("dev"), disk.get("bus")) == ("sda", "sata")
    nic = root.find("devices/interface")
    assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "br0"
    assert nic.find("model").get("type") == "e1000e"


def chain_of(*layers: tuple[str, str], outside: tuple[str, ...] = ()) -> ChainReview:
    return ChainReview(tuple(ImageInfo(path, fmt, GiB, 0) for path, fmt in layers), outside)


def test_foreign_arch_import_xml(spec, tmp_path):
    spec.arch, spec.machine, spec.domain_type = "aarch64", "virt", "qemu"
    spec.source, spec.import_path = InstallSource.IMPORT, "/images/arm.qcow2"
    spec.import_format = "qcow2"
    root = parse(to_domain_xml(spec, image_chain=chain_of(("/images/arm.qcow2", "qcow2"))))
    assert root.find("os/type").get("arch") == "aarch64"
    disk = root.find("devices/disk")
    assert disk.find("source").get("file") == "/images/arm.qcow2"
    assert disk.find("driver").get("type") == "qcow2"
    # The chain as read: nothing below the image, said to libvirt so it looks no further.
    assert [list(b) for b in disk.findall("backingStore")] == [[]]
    assert disk.find("target").get("bus") == "virtio"
    assert root.find("features") is None and root.find("devices/input") is None
    # Emulated, it needs a 64-bit core: QEMU's default for "virt" is a 32-bit one.
    assert (root.find("cpu").get("mode"), root.findtext("cpu/model")) == ("custom", "max")


def test_pc_machines_get_an_ide_cdrom_on_hdc(spec):
    spec.machine, spec.os_variant = "pc", by_id("generic")
    disks = parse(to_domain_xml(spec, "/p/d.qcow2")).findall("devices/disk/target")
    assert [(t.get("dev"), t.get("bus")) for t in disks] == [("sda", "sata"), ("hdc", "ide")]


def test_libvirt_accepts_and_keeps_the_xml(spec, tmp_path):
    """libvirt checks the XML against its schema, parses it and reports it back."""
    spec.domain_type, spec.machine, spec.arch = "test", "", "i686"
    spec.name = f"wizard-xml-{id(spec)}"
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXMLFlags(to_domain_xml(spec, "/pools/default/new.qcow2"),
                                  libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        back = parse(dom.XMLDesc(0))
    finally:
        conn.close()
    assert back.findtext("name") == spec.name
    assert int(back.findtext("memory")) == 2048 * 1024  # KiB
    sources = [d.find("source").get("file") for d in back.findall("devices/disk")]
    assert sources == ["/pools/default/new.qcow2", spec.iso]
    assert back.find("devices/interface/source").get("network") == "default"


def test_create_job_on_the_test_driver(test_host, job_runner):
    facts = test_host.call(discover).result(60)
    ctx = host_context(test_host, facts)
    spec = VmSpec(name="made-by-job", source=InstallSource.PXE, arch="i686",
                  domain_type="test", disk_pool="pool0", disk_size=GiB,
                  network_source="net0", graphics="vnc", customize=True)
    assert validate(spec, ctx) == {}
    job = create_vm(job_runner, test_host, spec, ctx)
    wait_for(lambda: job.state.finished, timeout=10)
    assert job.state is JobState.DONE, job.log_text()
    domain = wait_for(lambda: test_host.find_domain_by_name("made-by-job"))
    assert domain.summary.disks[0].source.endswith("made-by-job.qcow2")
    assert not domain.state.is_active  # customize: defined only
    bad = VmSpec(name="bad name", arch="i686", domain_type="test")
    with pytest.raises(VirtStudioError, match="spaces"):
        create_vm(job_runner, test_host, bad, ctx)


def test_osinfo_query_output_maps_to_family_defaults():
    text = (" Short ID    | Name\n-------------+------------\n"
            " win2k22     | Microsoft Windows Server 2022\n"
            " rocky9      | Rocky Linux 9\n")
    found = {v.id: v for v in parse_osinfo_query(text)}
    assert found["win2k22"].disk_bus == "sata" and found["win2k22"].hyperv
    assert found["rocky9"].label == "Rocky Linux 9" and found["rocky9"].disk_bus == "virtio"


def test_a_failed_definition_leaves_no_disk_behind(test_host, job_runner):
    """A name taken after the checks ran: libvirt refuses, the task says why, the disk goes."""
    facts = test_host.call(discover).result(60)
    ctx = host_context(test_host, facts)  # read before the name was taken
    spec = VmSpec(name="raced", source=InstallSource.PXE, arch="i686", domain_type="test",
                  disk_pool="pool1", disk_size=GiB, network_source="net0", graphics="vnc",
                  customize=True)
    taken = to_domain_xml(VmSpec(name="raced", source=InstallSource.PXE, arch="i686",
                                 domain_type="test", disk=DiskChoice.NONE,
                                 network=NetworkChoice.NONE))
    test_host.call(lambda conn: conn.defineXML(taken)).result(60)
    job = create_vm(job_runner, test_host, spec, ctx)
    wait_for(lambda: job.state.finished, timeout=10)
    assert job.state is JobState.FAILED
    assert "already exists" in job.error.message
    assert "VIR_ERR_OPERATION_FAILED" in job.error.detail  # libvirt's own words, for the log
    assert "Removed raced.qcow2 again" in job.log_text()
    names = test_host.call(lambda conn: conn.storagePoolLookupByName("pool1").listVolumes()
                           ).result(60)
    assert "raced.qcow2" not in names


def _held_at(monkeypatch, name: str):
    """Stop the create job inside ``create.<name>`` until the test lets it go on."""
    import threading

    from virtstudio.machines import create

    inside, go_on = threading.Event(), threading.Event()
    real = getattr(create, name)

    def held(*args, **kwargs):
        result = real(*args, **kwargs)
        inside.set()
        assert go_on.wait(30)
        return result

    monkeypatch.setattr(create, name, held)
    return inside, go_on


def _pool_volumes(test_host, pool):
    return test_host.call(lambda conn: conn.storagePoolLookupByName(pool).listVolumes()
                          ).result(60)


def test_cancel_before_the_definition_removes_the_new_disk(test_host, job_runner, monkeypatch):
    facts = test_host.call(discover).result(60)
    ctx = host_context(test_host, facts)
    spec = VmSpec(name="cancelled", source=InstallSource.PXE, arch="i686", domain_type="test",
                  disk_pool="pool1", disk_size=GiB, network_source="net0", graphics="vnc",
                  customize=True)
    inside, go_on = _held_at(monkeypatch, "_create_volume")
    job = create_vm(job_runner, test_host, spec, ctx)
    assert inside.wait(30)
    assert job.cancel()  # honoured: nothing is defined yet
    go_on.set()
    wait_for(lambda: job.state.finished, timeout=10)
    assert job.state is JobState.CANCELLED, job.log_text()
    assert "cancelled.qcow2" not in _pool_volumes(test_host, "pool1")
    assert test_host.find_domain_by_name("cancelled") is None


def test_cancel_during_the_definition_is_refused_saying_why(test_host, job_runner, monkeypatch):
    facts = test_host.call(discover).result(60)
    ctx = host_context(test_host, facts)
    spec = VmSpec(name="defined-anyway", source=InstallSource.PXE, arch="i686",
                  domain_type="test", disk_pool="pool1", disk_size=GiB,
                  network_source="net0", graphics="vnc", customize=True)
    inside, go_on = _held_at(monkeypatch, "_define")
    job = create_vm(job_runner, test_host, spec, ctx)
    assert inside.wait(30)
    assert not job.cancel()
    assert job.status.startswith("Cancel refused: defined-anyway is being defined")
    go_on.set()
    wait_for(lambda: job.state.finished, timeout=10)
    assert job.state is JobState.DONE, job.log_text()
    assert wait_for(lambda: test_host.find_domain_by_name("defined-anyway"))


# ---- an imported image: the user's format, the chain as read --------------------------------


def test_an_import_needs_its_format_chosen_whatever_its_name(spec, ctx, tmp_path):
    image = tmp_path / "download.qcow2"
    image.write_bytes(b"\0" * 1024)
    spec.source, spec.import_path = InstallSource.IMPORT, str(image)
    problems = validate(spec, ctx)
    assert problems == {Field.IMPORT_FORMAT: "Choose the image's format: raw or qcow2."}
    spec.import_format = "vmdk"
    assert Field.IMPORT_FORMAT in validate(spec, ctx)
    spec.import_format = "raw"
    assert validate(spec, ctx) == {}


def test_import_xml_records_the_chosen_format_and_the_backing_chain(spec):
    spec.source, spec.import_path = InstallSource.IMPORT, "/images/top.qcow2"
    spec.import_format = "raw"  # the user's word, whatever the name says
    raw = parse(to_domain_xml(spec, image_chain=chain_of(("/images/top.qcow2", "raw"))))
    disk = raw.find("devices/disk")
    assert disk.find("driver").get("type") == "raw" and disk.find("backingStore") is None

    spec.import_format = "qcow2"
    chain = chain_of(("/images/top.qcow2", "qcow2"), ("/images/mid.qcow2", "qcow2"),
                     ("/elsewhere/base.img", "raw"), outside=("/elsewhere/base.img",))
    disk = parse(to_domain_xml(spec, image_chain=chain)).find("devices/disk")
    found, node = [], disk.find("backingStore")
    while node is not None and node.find("source") is not None:
        found.append((node.get("type"), node.find("format").get("type"),
                      node.find("source").get("file")))
        node = node.find("backingStore")
    assert found == [("file", "qcow2", "/images/mid.qcow2"), ("file", "raw", "/elsewhere/base.img")]
    assert node is not None and list(node) == []  # and nothing below the last one


def test_an_existing_disk_image_is_read_as_chosen_too(spec, ctx, tmp_path):
    image = tmp_path / "old-disk.qcow2"
    image.write_bytes(b"\0" * 1024)
    spec.disk, spec.disk_path = DiskChoice.EXISTING, str(image)
    assert validate(spec, ctx) == {Field.DISK_FORMAT: "Choose the image's format: raw or qcow2."}
    spec.disk_format = "qcow2"
    assert validate(spec, ctx) == {}
    assert spec.existing_image == (str(image), "qcow2")
    with pytest.raises(VirtStudioError, match="was not read"):
        to_domain_xml(spec)
    chain = chain_of((str(image), "qcow2"), ("/srv/base.raw", "raw"), outside=("/srv/base.raw",))
    disk = parse(to_domain_xml(spec, image_chain=chain)).find("devices/disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("backingStore/source").get("file") == "/srv/base.raw"
    assert disk.find("backingStore/format").get("type") == "raw"


def test_import_xml_refuses_a_chain_it_was_not_shown(spec):
    spec.source, spec.import_path, spec.import_format = (InstallSource.IMPORT,
                                                         "/images/top.qcow2", "qcow2")
    with pytest.raises(VirtStudioError, match="was not read"):
        to_domain_xml(spec)
    with pytest.raises(VirtStudioError, match=r"not that of /images/top\.qcow2 read as qcow2"):
        to_domain_xml(spec, image_chain=chain_of(("/images/top.qcow2", "raw")))
    spec.import_format = ""
    with pytest.raises(VirtStudioError, match="raw or qcow2"):
        to_domain_xml(spec, image_chain=chain_of(("/images/top.qcow2", "qcow2")))


def test_the_chain_problem_says_what_is_still_missing():
    assert "Reading" in chain_problem(None, ())
    assert "could not be read: loops" in chain_problem("loops", ())
    chain = chain_of(("/i/top.qcow2", "qcow2"), ("/etc/shadow", "raw"), outside=("/etc/shadow",))
    assert "Type the name of /etc/shadow" in chain_problem(chain, ())
    assert chain_problem(chain, {"/etc/shadow"}) == ""


def test_a_remote_hosts_image_is_judged_by_its_pools_record():
    plain = Volume("plain.qcow2", "/r/plain.qcow2", GiB, 0, "qcow2")
    backed = Volume("backed.qcow2", "/r/backed.qcow2", GiB, 0, "qcow2", "/etc/shadow")
    site = ImportSite(PoolPlaces(("/r",)), local=False,
                      volumes={v.path: v for v in (plain, backed)})
    review = review_import(None, "/r/plain.qcow2", "qcow2", site)
    assert [(x.path, x.format) for x in review.layers] == [("/r/plain.qcow2", "qcow2")]
    with pytest.raises(VirtStudioError, match="names /etc/shadow as its backing file"):
        review_import(None, "/r/backed.qcow2", "qcow2", site)
    with pytest.raises(VirtStudioError, match="not a volume of a pool"):
        review_import(None, "/srv/loose.qcow2", "qcow2", site)
    assert review_import(None, "/r/backed.qcow2", "raw", site).outside == ()  # raw: no chain
    assert import_site("qemu+ssh://root@kvm1/system", []).local is False
    assert import_site("test:///default", []).local is False
    assert import_site("qemu:///system", []).local is True
