"""The domain capabilities document: ``<domainCapabilities>``.

What one emulator, architecture, machine type and virtualization type accept:
firmware, the vCPU limit and, per device kind, the values of its enums
(``<devices><disk><enum name='bus'>``).  It is only read, never written.
"""

from __future__ import annotations

from virtstudio.xml.base import Attr, Node, Text


class DomainCapabilities(Node):
    TAG = "domainCapabilities"
    emulator = Text("path")
    domain_type = Text("domain")
    machine = Text("machine")
    arch = Text("arch")
    max_vcpus = Attr("max", int, default=0, child="vcpu")

    def values(self, path: str) -> tuple[str, ...]:
        """The ``<value>`` texts of the enum at ``path`` (e.g. "os/enum[@name='firmware']")."""
        element = self.element.find(path)
        if element is None:
            return ()
        return tuple(v.text.strip() for v in element.iterfind("value")
                     if v.text and v.text.strip())

    def device_enum(self, device: str, name: str) -> tuple[str, ...] | None:
        """The values of enum ``name`` of ``device`` (disk, graphics, video, ...).

        None when the document does not say: the device kind or the enum is
        absent (an older libvirt), so nothing may be concluded from it.  A device
        kind marked ``supported='no'`` gives an empty tuple: none of it works.
        """
        element = self.element.find(f"devices/{device}")
        if element is None:
            return None
        if element.get("supported") == "no":
            return ()
        if element.find(f"enum[@name='{name}']") is None:
            return None
        return self.values(f"devices/{device}/enum[@name='{name}']")

    @property
    def firmware(self) -> tuple[str, ...]:
        return self.values("os/enum[@name='firmware']")

    @property
    def loaders(self) -> tuple[str, ...]:
        return self.values("os/loader")
