"""What a member of the ``libvirt`` group does with VirtStudio's own code, run as that user.

``python -m tests.integration.ordinary_user_manage PREFIX SUBNET`` creates, as
the user running it, a storage pool and a volume, an isolated network, and a
machine (a new disk in that pool, a card on that network, a VNC display),
starts it, reads its console through the display socket libvirt hands the
app, then deletes everything again, each step through the same functions the
windows call.  It prints one ``STEP <name> ok`` line per step and exits
non-zero at the first that fails.  The test that runs it (as a real user)
removes whatever a failed run left, by the names below.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TypeVar

from tests.helpers import wait_for
from virtstudio.console.local import open_graphics_socket
from virtstudio.console.rfb_client import RfbClient
from virtstudio.core.connection import HostConnection
from virtstudio.core.domain_actions import Action, ask_delete, run_action
from virtstudio.core.entities import DomainState
from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.machines.create import create_vm, host_context
from virtstudio.machines.host_caps import discover
from virtstudio.machines.new_vm import InstallSource, NetworkChoice, VmSpec
from virtstudio.network.virtual_networks import NetworkSpec, create_network, delete_network
from virtstudio.storage.pool_jobs import ask_delete_pool, create_pool, delete_pool
from virtstudio.storage.pools import PoolSpec
from virtstudio.storage.volumes import (
    VolumeSpec,
    ask_delete_volume,
    create_volume,
    delete_volume,
)

CEILING_S = 120
MiB = 1024 * 1024
T = TypeVar("T")


def names(prefix: str) -> dict[str, str]:
    """The objects a run with ``prefix`` makes; the test removes these after a failure."""
    return {"pool": f"{prefix}-pool", "volume": f"{prefix}-scratch.qcow2",
            "network": f"{prefix}-net", "machine": f"{prefix}-vm"}


def until(what: str, check: Callable[[], T | None]) -> T:
    try:
        return wait_for(check, timeout=CEILING_S, interval=0.1)
    except AssertionError:
        raise SystemExit(f"gave up waiting for {what} after {CEILING_S} s") from None


def finish(job: Job) -> None:
    until(f"the job {job.title!r}", lambda: job.state.finished)
    if job.state is not JobState.DONE:
        raise SystemExit(f"{job.title} ended {job.state.name}:\n{job.log_text()}")


def step(name: str) -> None:
    print(f"STEP {name} ok", flush=True)


async def first_frame(host: HostConnection, machine: str) -> tuple[int, int]:
    dom = host.virconn.lookupByName(machine)
    client = RfbClient(encoding="zrle")
    await client.connect_socket(open_graphics_socket(dom))
    reading = asyncio.ensure_future(client.run())
    try:
        client.request_update(incremental=False)
        await client.wait_update(timeout=CEILING_S)
        fb = client.framebuffer
        return fb.width, fb.height
    finally:
        reading.cancel()
        await client.close()


def main(prefix: str, subnet: int) -> None:
    made = names(prefix)
    host = HostConnection("qemu:///system", stats_interval=0)
    runner = JobRunner()
    host.open().result(CEILING_S)
    try:
        finish(create_pool(runner, host, PoolSpec("dir", made["pool"],
                                                  target_path=f"/var/lib/libvirt/images/"
                                                              f"{made['pool']}")))
        pool = until("the new pool", lambda: next(
            (p for p in host.pools.values() if p.name == made["pool"] and p.active), None))
        step("create pool")

        finish(create_volume(runner, host, pool, VolumeSpec(made["volume"], 16 * MiB)))
        pool = until("the new volume", lambda: next(
            (p for p in host.pools.values() if p.name == made["pool"]
             and any(v.name == made["volume"] for v in p.volumes)), None))
        finish(delete_volume(runner, host, pool,
                             ask_delete_volume(host, pool, made["volume"]).result(CEILING_S)))
        step("create and delete volume")

        finish(create_network(runner, host, NetworkSpec(
            made["network"], "isolated", f"192.168.{subnet}.1/24", autostart=False)))
        until("the new network", lambda: any(
            n.name == made["network"] and n.active for n in host.networks.values()))
        step("create network")

        facts = host.call(discover).result(CEILING_S)
        spec = VmSpec(name=made["machine"], source=InstallSource.PXE, arch="x86_64",
                      machine="pc", domain_type="qemu", vcpus=1, memory_mib=128,
                      disk_pool=made["pool"], disk_size=64 * MiB,
                      network=NetworkChoice.VIRTUAL, network_source=made["network"],
                      graphics="vnc")
        finish(create_vm(runner, host, spec, host_context(host, facts)))
        machine = until("the new machine running", lambda: next(
            (d for d in host.domains.values()
             if d.name == made["machine"] and d.state is DomainState.RUNNING), None))
        step("create and start machine")

        width, height = asyncio.run(first_frame(host, made["machine"]))
        if width <= 0 or height <= 0:
            raise SystemExit(f"the console showed a {width}x{height} picture")
        step("console")

        plan = ask_delete(host, machine).result(CEILING_S)
        disks = tuple(loss.path for loss in plan.offers)
        finish(run_action(runner, host, machine, Action.DELETE, plan.pick(disks)))
        until("the machine gone", lambda: all(
            d.name != made["machine"] for d in host.domains.values()))
        step("delete machine with its disk")

        finish(delete_network(runner, host, made["network"]))
        pool = next(p for p in host.pools.values() if p.name == made["pool"])
        plans = ask_delete_pool(host, pool).result(CEILING_S)
        finish(delete_pool(runner, host, pool, plans[True], with_data=True))
        step("delete network and pool")
    finally:
        runner.shutdown(wait=True)
        host.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
