"""The domain document: identity, memory, vCPUs, CPU, OS and boot, metadata, devices."""

from __future__ import annotations

from lxml import etree

from virtstudio.xml.amount import MemoryAmount
from virtstudio.xml.base import INT, YESNO, Attr, Child, Children, Element, Node, Text
from virtstudio.xml.devices import Device, Devices, Disk, Interface


class Vcpu(Node):
    TAG = "vcpu"
    count = Text("", INT)
    current = Attr("current", int)
    placement = Attr("placement")
    cpuset = Attr("cpuset")


class Topology(Node):
    TAG = "topology"
    sockets = Attr("sockets", int)
    dies = Attr("dies", int)
    clusters = Attr("clusters", int)
    cores = Attr("cores", int)
    threads = Attr("threads", int)

    @property
    def total(self) -> int:
        return ((self.sockets or 1) * (self.dies or 1) * (self.clusters or 1)
                * (self.cores or 1) * (self.threads or 1))


class CpuFeature(Node):
    TAG = "feature"
    policy = Attr("policy")
    name = Attr("name")


class Cpu(Node):
    TAG = "cpu"
    ORDER = ("model", "vendor", "topology", "cache", "maxphysaddr", "feature", "numa")
    mode = Attr("mode")
    match = Attr("match")
    check = Attr("check")
    migratable = Attr("migratable")
    model = Text("model")
    model_fallback = Attr("fallback", child="model")
    vendor = Text("vendor")
    topology = Child("topology", Topology)
    features = Children("feature", CpuFeature)


class Boot(Node):
    TAG = "boot"
    dev = Attr("dev")


class Os(Node):
    TAG = "os"
    ORDER = ("type", "firmware", "loader", "nvram", "init", "initarg", "initenv", "initdir",
             "inituser", "initgroup", "kernel", "initrd", "cmdline", "dtb", "acpi", "boot",
             "bootmenu", "smbios", "bios")
    firmware = Attr("firmware")
    type = Text("type")
    arch = Attr("arch", child="type")
    machine = Attr("machine", child="type")
    loader = Text("loader")
    loader_readonly = Attr("readonly", YESNO, child="loader")
    loader_type = Attr("type", child="loader")
    nvram = Text("nvram")
    kernel = Text("kernel")
    initrd = Text("initrd")
    cmdline = Text("cmdline")
    init = Text("init")
    boots = Children("boot", Boot)
    bootmenu = Attr("enable", YESNO, child="bootmenu")

    @property
    def boot_devices(self) -> tuple[str, ...]:
        return tuple(b.dev or "" for b in self.boots)

    @boot_devices.setter
    def boot_devices(self, devices: tuple[str, ...] | list[str]) -> None:
        """Replace the ``<boot dev>`` list; only those elements change."""
        for boot in list(self.boots):
            boot.remove()
        for dev in devices:
            boot = Boot()
            boot.dev = dev
            self.boots.add(boot)


class Metadata(Node):
    """``<metadata>``: other programs' elements, each in its own namespace."""

    TAG = "metadata"

    def find(self, namespace: str, tag: str) -> Element | None:
        return self.element.find(f"{{{namespace}}}{tag}")

    def put(self, element: Element) -> None:
        """Put ``element`` in place of the one with its name and namespace (or at the end).

        The other entries and their prefixes are left alone.
        """
        from virtstudio.xml.base import insert_child

        old = self.element.find(element.tag)
        if old is not None:
            element.tail = old.tail
            self.element.replace(old, element)
        else:
            insert_child(self.element, element)

    def drop(self, namespace: str, tag: str) -> None:
        from virtstudio.xml.base import remove_element

        old = self.find(namespace, tag)
        if old is not None:
            remove_element(old)


class Features(Node):
    TAG = "features"

    def has(self, name: str) -> bool:
        return self.element.find(name) is not None


class Domain(Node):
    TAG = "domain"
    ORDER = ("name", "uuid", "genid", "title", "description", "metadata", "maxMemory",
             "memory", "currentMemory", "blkiotune", "memtune", "memoryBacking", "vcpu",
             "vcpus", "iothreads", "iothreadids", "cputune", "numatune", "resource",
             "sysinfo", "bootloader", "bootloader_args", "os", "idmap", "features", "cpu",
             "clock", "on_poweroff", "on_reboot", "on_crash", "pm", "perf", "devices",
             "seclabel", "keywrap", "launchSecurity")
    type = Attr("type")
    id = Attr("id", int)
    name = Text("name")
    uuid = Text("uuid")
    title = Text("title")
    description = Text("description")
    metadata = Child("metadata", Metadata)
    max_memory = Child("maxMemory", MemoryAmount)
    memory = Child("memory", MemoryAmount)
    current_memory = Child("currentMemory", MemoryAmount)
    vcpu = Child("vcpu", Vcpu)
    os = Child("os", Os)
    features = Child("features", Features)
    cpu = Child("cpu", Cpu)
    on_poweroff = Text("on_poweroff")
    on_reboot = Text("on_reboot")
    on_crash = Text("on_crash")
    devices = Child("devices", Devices)

    # ---- conveniences shared by readers and edits --------------------------------

    @property
    def memory_kib(self) -> int:
        memory = self.memory
        return (memory.kib or 0) if memory is not None else 0

    @property
    def current_memory_kib(self) -> int:
        current = self.current_memory
        return (current.kib or 0) if current is not None and current.kib else self.memory_kib

    @property
    def vcpus(self) -> int:
        """The vCPUs the machine runs with (``current`` when set, else the maximum)."""
        vcpu = self.vcpu
        if vcpu is None:
            return 0
        return vcpu.current or vcpu.count or 0

    def ensure_metadata(self) -> Metadata:
        return self.ensure("metadata")  # type: ignore[return-value]

    def ensure_devices(self) -> Devices:
        return self.ensure("devices")  # type: ignore[return-value]


def namespaced(namespace: str, prefix: str, tag: str) -> Element:
    """A new element ``prefix:tag`` in ``namespace`` (for ``<metadata>`` entries)."""
    return etree.Element(f"{{{namespace}}}{tag}", nsmap={prefix: namespace})


# The boot list's names (``<os><boot dev>``), also given to devices that carry an order.
BOOT_DEVICES = ("hd", "cdrom", "network", "fd")


def boot_kind(device: Device) -> str:
    """The boot list's name for ``device``: "" for devices the list does not name."""
    if isinstance(device, Interface):
        return "network"
    if isinstance(device, Disk):
        return {"cdrom": "cdrom", "floppy": "fd"}.get(device.device, "hd")
    return ""


def bootable_devices(domain: Domain) -> list[Device]:
    """The devices that can carry a per-device ``<boot order>``, in document order."""
    dev = domain.devices
    if dev is None:
        return []
    return [*dev.disks, *dev.interfaces, *dev.hostdevs, *dev.redirdevs, *dev.filesystems]


def boot_order(domain: Domain) -> tuple[str, ...]:
    """The boot list as ``hd``/``cdrom``/``network``/``fd``: global, or from the devices."""
    os = domain.os
    if os is not None and os.boots:
        return os.boot_devices
    ordered = sorted((d for d in bootable_devices(domain) if d.boot_order is not None),
                     key=lambda d: d.boot_order)
    seen: dict[str, None] = {}
    for device in ordered:
        kind = boot_kind(device)
        if kind:
            seen.setdefault(kind, None)
    return tuple(seen)
