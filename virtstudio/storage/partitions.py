"""A new, empty partition table on a free disk (parted, argv list)."""

from __future__ import annotations

import shutil
import subprocess

from virtstudio.core.errors import VirtStudioError
from virtstudio.storage.host_devices import check_free

# libvirt calls an MBR label "dos", parted "msdos".
LABELS = {"gpt": "gpt", "dos": "msdos"}


def create_partition_table(device: str, label: str = "gpt") -> None:
    """Refused untouched unless ``device`` is a whole, blank disk that nothing uses."""
    if label not in LABELS:
        raise VirtStudioError(f"A partition table is gpt or dos, not {label!r}.")
    found = check_free(device)
    if found.kind == "part":
        raise VirtStudioError(f"{device} is a partition; a partition table goes on a whole disk.")
    if shutil.which("parted") is None:
        raise VirtStudioError("parted is not installed (Debian package parted).")
    done = subprocess.run(["parted", "--script", device, "mklabel", LABELS[label]],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise VirtStudioError(f"parted could not write the partition table on {device}.",
                              done.stderr)
