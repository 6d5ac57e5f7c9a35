"""An image file a new machine uses as its disk (imported, or an existing disk image).

Its format is the user's word and its backing chain is shown.

A downloaded qcow2 file can name any host file (/etc/shadow, another
machine's disk) as its backing file; a machine defined on it reads that file
as part of its disk.  So the image is read in the format the user chose
(never guessed from its name or bytes), its backing chain is listed through
``storage.backing_chains``, and a backing file outside every storage pool
is used only once the user has typed its name.  The creation job reads the
chain again and refuses when it changed.

On a remote host (or libvirt's test driver) the files are not on this
computer: there the pool's own record of the volume is all there is, and a
qcow2 image that records a backing file is refused rather than trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from virtstudio.core import uri as uri_mod
from virtstudio.core.entities import StoragePool, Volume
from virtstudio.core.errors import VirtStudioError
from virtstudio.storage import backing_chains, qemu_img
from virtstudio.storage.backing_chains import ChainReview, PoolPlaces
from virtstudio.storage.qemu_img import ImageInfo

FORMATS = qemu_img.FORMATS


def suggested_format(path: str) -> str:
    """The format a file name suggests, only to preselect the choice the user sees."""
    return "qcow2" if path.lower().endswith(".qcow2") else "raw"


@dataclass(frozen=True)
class ImportSite:
    """Where an imported image is read: this computer's files, or only the pools' records."""

    places: PoolPlaces
    local: bool  # the host's files are this computer's files
    volumes: Mapping[str, Volume] = field(default_factory=dict)  # path -> pool volume


def import_site(uri: str, pools: Iterable[StoragePool]) -> ImportSite:
    """The site for a host at ``uri`` with these pools (read from the cache, no libvirt)."""
    pools = list(pools)
    parsed = uri_mod.parse(uri)
    volumes = {v.path: v for p in pools for v in p.volumes if v.path}
    return ImportSite(backing_chains.pool_places(pools),
                      not (parsed.is_remote or parsed.is_test), volumes)


def _recorded_review(path: str, fmt: str, site: ImportSite) -> ChainReview:
    volume = site.volumes.get(path)
    size = volume.capacity if volume is not None else 0
    used = volume.allocation if volume is not None else 0
    if fmt == "qcow2":
        if volume is None:
            raise VirtStudioError(
                f"{path} is not a volume of a pool on this host, so its backing chain cannot "
                "be checked from here: import it as raw, or put it in a storage pool first.")
        if volume.backing:
            raise VirtStudioError(
                f"{path} names {volume.backing} as its backing file on that host; its chain "
                "cannot be checked from this computer, so it is not imported as qcow2.")
    return ChainReview((ImageInfo(path, fmt, size, used),), ())


def review_import(_conn: object, path: str, fmt: str, site: ImportSite) -> ChainReview:
    """``path``'s backing chain read as ``fmt`` (qemu-img: a worker or job thread)."""
    qemu_img.check_format(fmt, f"{Path(path).name}'s chosen format")
    if not site.local:
        return _recorded_review(path, fmt, site)
    return backing_chains.review(Path(path), fmt, site.places)


def chain_problem(review: ChainReview | str | None, confirmed: Iterable[str]) -> str:
    """What still stops the import: the chain unread or unreadable, or a file not named."""
    if review is None:
        return "Reading the image's backing chain…"
    if isinstance(review, str):
        return f"The image's backing chain could not be read: {review}"
    missing = review.unconfirmed(set(confirmed))
    if missing:
        return (f"Type the name of {', '.join(missing)} to let the new machine read it, or "
                "choose another image or format.")
    return ""


def recheck(review: ChainReview, site: ImportSite, confirmed: Iterable[str]) -> ChainReview:
    """Read the chain again for the job: refuse if it changed or needs an unnamed file."""
    top = review.top
    fresh = review_import(None, top.path, top.format, site)
    if not fresh.same_files(review):
        raise VirtStudioError(f"{top.path} or its backing files changed since you were asked; "
                              "nothing was created.")
    backing_chains.require_confirmed(fresh, set(confirmed), top.path)
    return fresh
