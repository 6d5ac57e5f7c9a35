"""Thin pool fill levels with a warning threshold, and LVM's autoextend settings.

LVM grows a thin pool by itself only when dmeventd monitors it, the pool's
profile sets ``thin_pool_autoextend_threshold`` below 100 (the default, 100,
means never) and the volume group has free extents.  The settings are kept
in a metadata profile of their own per pool (/etc/lvm/profile), attached
with ``lvchange --metadataprofile``, so they last and apply to that pool only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import lvm

PROFILE_DIR = Path("/etc/lvm/profile")
_PROFILE_RE = re.compile(r"thin_pool_autoextend_(threshold|percent)\s*=\s*(\d+)")


@dataclass(frozen=True)
class Autoextend:
    threshold: int  # grow when data or metadata use reaches this percent; 100 = never
    percent: int  # by this share of the pool's size

    @property
    def enabled(self) -> bool:
        return self.threshold < 100 and self.percent > 0

    def describe(self) -> str:
        if not self.enabled:
            return "Autoextend is off: the pool never grows by itself."
        return (f"When data or metadata use reaches {self.threshold} %, LVM grows the pool by "
                f"{self.percent} % of its size, while the volume group has free space "
                "(needs dmeventd monitoring).")


def check_autoextend(threshold: int, percent: int) -> Autoextend:
    if not 50 <= threshold <= 100:
        raise VirtStudioError("The autoextend threshold is a percentage from 50 to 100 "
                              "(100 turns autoextend off).")
    if not 0 <= percent <= 100 or (threshold < 100 and percent == 0):
        raise VirtStudioError("Grow the pool by 1 to 100 % of its size.")
    return Autoextend(threshold, percent)


def profile_name(vg: str, pool: str) -> str:
    return f"virtstudio-{vg}-{pool}"


def profile_text(settings: Autoextend) -> str:
    return ("# Written by VirtStudio: when this thin pool grows by itself.\n"
            "activation {\n"
            f"\tthin_pool_autoextend_threshold = {settings.threshold}\n"
            f"\tthin_pool_autoextend_percent = {settings.percent}\n"
            "}\n")


def set_autoextend(vg: str, pool: str, threshold: int, percent: int) -> str:
    """Write the pool's profile and attach it; returns what was set, in words."""
    lvm.validate_name(vg, "volume group")
    lvm.validate_name(pool, "thin pool")
    settings = check_autoextend(threshold, percent)
    if pool not in {p.name for p in lvm.thin_pools(vg)}:
        raise VirtStudioError(f"There is no thin pool {pool} in {vg}.")
    name = profile_name(vg, pool)
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    path = PROFILE_DIR / f"{name}.profile"
    path.write_text(profile_text(settings))
    lvm.set_metadata_profile(vg, pool, name)
    return f"{vg}/{pool}: {settings.describe()} (profile {path})"


def read_autoextend(vg: str, pool: str) -> Autoextend:
    """The pool's settings: from its own profile when it has one, else LVM's default (off)."""
    profile = lvm.lv_profile(vg, pool)
    values = {"threshold": 100, "percent": 20}
    if profile:
        try:
            text = (PROFILE_DIR / f"{profile}.profile").read_text()
        except OSError:
            text = ""
        values.update({key: int(number) for key, number in _PROFILE_RE.findall(text)})
    return Autoextend(values["threshold"], values["percent"])


@dataclass(frozen=True)
class ThinUsage:
    vg: str
    pool: str
    size: int
    data_percent: float
    metadata_percent: float

    def warning(self, threshold: float) -> str:
        """A plain warning when data or metadata use is at or above ``threshold`` percent."""
        if self.data_percent >= 100.0 or self.metadata_percent >= 100.0:
            part = "metadata" if self.metadata_percent >= 100.0 else "data"
            return (f"{self.vg}/{self.pool} is full ({part}): writes to its thin volumes "
                    "wait or fail. Grow it or free space now.")
        worst = max(self.data_percent, self.metadata_percent)
        if worst >= threshold:
            part = "metadata" if self.metadata_percent >= self.data_percent else "data"
            return (f"{self.vg}/{self.pool} is {worst:.0f} % full ({part}), at or above your "
                    f"warning level of {threshold:.0f} %.")
        return ""


def thin_usage(vg: str) -> list[ThinUsage]:
    return [ThinUsage(p.vg, p.name, p.size, p.data_percent, p.metadata_percent)
            for p in lvm.thin_pools(vg)]
