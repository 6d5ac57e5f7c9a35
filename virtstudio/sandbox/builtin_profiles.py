"""Profiles for common cases, shipped ready to use and editable as copies."""

from __future__ import annotations

from virtstudio.sandbox.profile import SandboxProfile


def builtin_profiles() -> list[SandboxProfile]:
    return [
        SandboxProfile(
            name="Offline tool",
            description="For programs that work on files you give them and need nothing else.",
            network="none", display="x11", memory_mb=2048, max_processes=256, builtin=True),
        SandboxProfile(
            name="Web browser",
            description="Network, windows and sound; a home of its own so it cannot read yours.",
            network="internet", display="x11", sound=True, dbus="filtered",
            dbus_talk=["org.freedesktop.Notifications", "org.freedesktop.portal.*"],
            memory_mb=4096, builtin=True),
        SandboxProfile(
            name="Untrusted binary",
            description="Nothing but a private home: no network, no windows, tight limits.",
            network="none", display="none", memory_mb=512, cpu_percent=50,
            max_processes=64, builtin=True),
    ]
