"""Long image operations as jobs, with progress and cancel."""

from __future__ import annotations

from pathlib import Path

from virtstudio.core.jobs import Job, JobRunner
from virtstudio.storage import qemu_img


def convert_job(runner: JobRunner, source: Path, target: Path, *, fmt: str,
                target_format: str = "qcow2", compress: bool = False) -> Job:
    """Copy or compact ``source`` (read as ``fmt``) in the background.

    Cancelling removes the partial copy.
    """
    verb = "Compact" if compress else "Convert"

    def work(job: Job) -> None:
        job.report(0.0, f"{verb} {source.name} to {target.name}")
        qemu_img.convert(source, target, fmt=fmt, target_format=target_format, compress=compress,
                         progress=lambda fraction: job.report(fraction),
                         cancelled=lambda: job.cancel_requested)
        job.check_cancelled()
        job.report(1.0, f"Wrote {target}")

    return runner.submit(f"{verb} {source.name}", work, host="This computer",
                         target=source.name, cancellable=True)
