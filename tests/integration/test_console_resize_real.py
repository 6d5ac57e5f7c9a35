"""QEMU and "Fit and resize guest": QEMU announces ExtendedDesktopSize, so the option is
offered, but the lab guest's VGA text mode is a fixed 720x400 and cannot follow a resize.
The request must then leave the screen as it is and the console connected."""

from __future__ import annotations

import asyncio

import libvirt

from tests.helpers import off_gui_thread
from tests.integration import test_console_ui
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import wait_for_prompt
from virtstudio.console.local import open_graphics_socket
from virtstudio.console.rfb_client import RfbClient

running_guest = test_console_ui.running_guest


def test_a_guest_that_cannot_follow_keeps_its_screen(system_libvirtd, running_guest):
    dom = libvirt.open(SYSTEM_URI).lookupByName(running_guest)
    off_gui_thread(wait_for_prompt, dom, 120)

    async def go():
        client = RfbClient(encoding="raw")
        sizes: list = []
        client.resized.connect(lambda w, h: sizes.append((w, h)))
        await client.connect_socket(open_graphics_socket(dom, 0))
        runner = asyncio.create_task(client.run())
        await client.wait_update(10)
        # QEMU's announcement comes in an update of its own, not always the first one.
        for _ in range(5):
            if client.extended_desktop:
                break
            client.request_update(incremental=False)
            await client.wait_update(15)
        announced = client.extended_desktop
        sent = client.set_desktop_size(1024, 768)
        await client.drain()
        # Keep the connection busy for a while: QEMU answers, or stays silent, but
        # must not drop the client.
        for _ in range(4):
            client.request_update(incremental=False)
            await client.wait_update(15)
        alive = not runner.done()
        runner.cancel()
        return announced, sent, sizes, (client.framebuffer.width, client.framebuffer.height), alive

    announced, sent, sizes, size, alive = asyncio.run(asyncio.wait_for(go(), 60))
    assert announced and sent
    assert sizes == [] and size == (720, 400)
    assert alive
