"""Backing chains shown before an image is copied or cloned, and the files that need a yes.

A qcow2 file can name any file on this computer as its backing file, and a
copy of the image reads that file into the new disk.  Backing files inside a
storage pool are the host's own images; one outside every pool is read only
when the user has confirmed that very file by typing its name.  The job reads
the chain again and refuses a file the user did not confirm.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.core.units import format_bytes
from virtstudio.storage import qemu_img
from virtstudio.storage.qemu_img import ImageInfo

FOLDER_POOL_TYPES = ("dir", "fs", "netfs")


@dataclass(frozen=True)
class PoolPlaces:
    """Where a host's storage pools keep their images."""

    folders: tuple[str, ...] = ()
    volumes: frozenset[str] = frozenset()

    def holds(self, path: str) -> bool:
        real = os.path.realpath(path)
        if real in self.volumes:
            return True
        return any(os.path.commonpath([real, folder]) == folder for folder in self.folders)


def pool_places(pools: Iterable[StoragePool]) -> PoolPlaces:
    folders, volumes = [], set()
    for pool in pools:
        if pool.pool_type in FOLDER_POOL_TYPES and pool.target_path:
            folders.append(os.path.realpath(pool.target_path))
        volumes.update(os.path.realpath(v.path) for v in pool.volumes if v.path)
    return PoolPlaces(tuple(folders), frozenset(volumes))


@dataclass(frozen=True)
class ChainReview:
    """An image's backing chain and which backing files lie outside every pool."""

    layers: tuple[ImageInfo, ...]
    outside: tuple[str, ...]  # backing files outside the pools, top first

    @property
    def top(self) -> ImageInfo:
        return self.layers[0]

    def lines(self) -> list[str]:
        """One plain sentence per layer, top first."""
        top = self.top
        lines = [f"{top.path}: read as {top.format}, {format_bytes(top.virtual_size)} virtual"]
        for layer in self.layers[1:]:
            where = "OUTSIDE every storage pool" if layer.path in self.outside else "in a pool"
            lines.append(f"backing file {layer.path}: read as {layer.format}, {where}")
        return lines

    def unconfirmed(self, confirmed: Collection[str]) -> tuple[str, ...]:
        return tuple(path for path in self.outside if path not in confirmed)

    def same_files(self, other: ChainReview) -> bool:
        """Whether ``other`` reads the same files in the same formats."""
        return ([(x.path, x.format) for x in self.layers]
                == [(x.path, x.format) for x in other.layers])


def review(path: Path, fmt: str, places: PoolPlaces) -> ChainReview:
    """Read ``path``'s chain as ``fmt`` (qemu-img: a job or worker thread)."""
    layers = tuple(qemu_img.chain(path, fmt))
    outside = tuple(layer.path for layer in layers[1:] if not places.holds(layer.path))
    return ChainReview(layers, outside)


def confirmed_by_name(typed: str, path: str) -> bool:
    """Whether the user typed exactly the name of ``path``."""
    return typed.strip() == Path(path).name != ""


def require_confirmed(chain: ChainReview, confirmed: Collection[str], image: str) -> None:
    """Raise unless every backing file outside the pools was confirmed."""
    missing = chain.unconfirmed(confirmed)
    if missing:
        raise VirtStudioError(
            f"{image} reads {', '.join(missing)} as a backing file, outside every storage "
            "pool; type its name to confirm that it may be read. Nothing was copied.")
