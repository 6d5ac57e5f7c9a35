"""Rates (CPU %, disk and network throughput) from bulk domain statistics.

The connection reads all running domains with one ``getAllDomainStats``
call per tick; this turns two consecutive samples into rates per domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from virtstudio.core.entities import Domain


@dataclass
class _Sample:
    when: float
    cpu_ns: int
    disk_bytes: int
    net_bytes: int


def _sum_indexed(record: dict[str, Any], prefix: str, fields: tuple[str, ...]) -> int:
    count = int(record.get(f"{prefix}.count", 0) or 0)
    total = 0
    for i in range(count):
        for name in fields:
            total += int(record.get(f"{prefix}.{i}.{name}", 0) or 0)
    return total


class StatsTracker:
    def __init__(self) -> None:
        self._last: dict[str, _Sample] = {}

    def clear(self) -> None:
        self._last.clear()

    def forget(self, uuid: str) -> None:
        self._last.pop(uuid, None)

    def update(self, domain: Domain, record: dict[str, Any], now: float) -> None:
        sample = _Sample(
            when=now,
            cpu_ns=int(record.get("cpu.time", 0) or 0),
            disk_bytes=_sum_indexed(record, "block", ("rd.bytes", "wr.bytes")),
            net_bytes=_sum_indexed(record, "net", ("rx.bytes", "tx.bytes")),
        )
        previous = self._last.get(domain.uuid)
        self._last[domain.uuid] = sample
        if previous is None or sample.when <= previous.when:
            return
        elapsed = sample.when - previous.when
        vcpus = max(domain.summary.vcpus, 1)
        # Counters restart with the guest; a negative delta means a restart, not a rate.
        cpu = max(sample.cpu_ns - previous.cpu_ns, 0) / (elapsed * 1e9 * vcpus) * 100.0
        disk = max(sample.disk_bytes - previous.disk_bytes, 0) / elapsed
        net = max(sample.net_bytes - previous.net_bytes, 0) / elapsed
        stats = domain.stats
        stats.cpu_percent = min(cpu, 100.0)
        stats.disk_bytes_per_s = disk
        stats.net_bytes_per_s = net
        stats.cpu_history.append(stats.cpu_percent)
        stats.disk_history.append(disk)
        stats.net_history.append(net)
