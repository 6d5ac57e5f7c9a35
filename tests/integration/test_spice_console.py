"""The SPICE client against the real lab guest: typing, and frames equal to libvirt's screenshot."""

from __future__ import annotations

import asyncio
import contextlib
import os

import libvirt
import pytest

from tests.integration.test_vnc_console import ROW, _row, _text_rows, opaque, wait_answered
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import lab_domain_xml, take_screenshot, wait_for_prompt
from virtstudio.console.keymap import SHIFT_L, text_to_keys
from virtstudio.console.local import open_graphics_socket
from virtstudio.console.spice_client import SpiceClient


@pytest.fixture(scope="module")
def spice_guest(lab_images):
    name = f"vstest-spice-{os.getpid()}"
    conn = libvirt.open(SYSTEM_URI)
    dom = conn.createXML(lab_domain_xml(name, lab_images, graphics=("spice",)), 0)
    try:
        wait_for_prompt(dom, 120)  # generous: a loaded host boots TCG guests slowly
        yield dom
    finally:
        dom.destroy()


def rgb(bgrx: bytes | bytearray) -> bytes:
    out = bytearray(len(bgrx) // 4 * 3)
    out[0::3], out[1::3], out[2::3] = bgrx[2::4], bgrx[1::4], bgrx[0::4]
    return bytes(out)


def type_text(client: SpiceClient, text: str) -> None:
    for keysym, scancode, shift in text_to_keys(text):
        if shift:
            client.key_event(True, *SHIFT_L)
        client.key_event(True, keysym, scancode)
        client.key_event(False, keysym, scancode)
        if shift:
            client.key_event(False, *SHIFT_L)


async def _session(dom, compression: str = "off", client=None) -> dict:
    """Type two lines, pause the guest and settle on libvirt's screenshot; any SPICE client."""
    client = client or SpiceClient(compression=compression)
    opened: list[int] = []

    async def opener():
        opened.append(1)
        return await asyncio.to_thread(open_graphics_socket, dom, 0)

    await client.connect(opener)
    runner = asyncio.create_task(client.run())
    try:
        # Connected means a screen exists, not that it has been drawn: wait for the banner
        # and prompt (19 text rows) before reading the prompt off it.
        deadline = asyncio.get_running_loop().time() + 30
        while (_text_rows(picture := _picture(client)) < 19
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.05)
        prompt = _prompt_prefix(picture, _text_rows(picture) - 1)
        for text in ("echo 42\n", "echo $((6*7))\n"):
            prompts = _count_prompts(_picture(client), prompt)
            type_text(client, text)
            await client.drain()
            # Like a typist, wait for the next prompt: QEMU drops keys once the guest's
            # PS/2 queue holds 8 bytes, and a guest busy running a command on a loaded
            # host reads none.
            await _wait_prompts(client, prompt, prompts + 1)
        await wait_answered(client)
        await asyncio.to_thread(dom.suspend)
        try:
            # The paused guest's screen no longer changes, except QEMU's blinking text
            # cursor: our picture must settle on exactly what libvirt's screenshot shows.
            # Compare a copy, so a blink right after the comparison cannot spoil the result.
            for _attempt in range(10):
                await asyncio.sleep(0.3)
                shot = await asyncio.to_thread(take_screenshot, dom)
                picture = bytes(client.framebuffer.data)
                if rgb(picture) == shot.pixels:
                    break
        finally:
            await asyncio.to_thread(dom.resume)
        fb = client.framebuffer
        unsupported = client.display.unsupported if isinstance(client, SpiceClient) else {}
        return {"fb": picture, "w": fb.width, "h": fb.height, "shot": shot,
                "channels": len(opened), "unsupported": dict(unsupported)}
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def _picture(client) -> tuple[int, int, bytes]:
    fb = client.framebuffer
    return fb.width, fb.height, bytes(fb.data)


PROMPT_CELLS = 5  # "lab# ": the text cursor blinks in the cell after it


def _prompt_prefix(picture: tuple[int, int, bytes], row: int) -> bytes:
    width, _height, data = picture
    stride, cells = width * 4, PROMPT_CELLS * 9 * 4
    top = row * ROW
    return b"".join(data[(top + y) * stride:(top + y) * stride + cells] for y in range(ROW))


def _count_prompts(picture: tuple[int, int, bytes], prompt: bytes) -> int:
    return sum(_prompt_prefix(picture, r) == prompt for r in range(picture[1] // ROW))


async def _wait_prompts(client, prompt: bytes, count: int, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (_count_prompts(_picture(client), prompt) < count
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.05)


def check_typed(result: dict) -> None:
    """What any SPICE client must have shown: libvirt's screenshot and the answer 42."""
    shot = result["shot"]
    assert (result["w"], result["h"]) == (shot.width, shot.height) == (720, 400)
    assert result["channels"] == 4  # main, display, inputs, cursor: one socket each
    assert result["unsupported"] == {}
    assert rgb(result["fb"]) == shot.pixels, "decoded framebuffer differs from the screenshot"
    data, width = opaque(result["fb"]), result["w"]
    prompt = _text_rows((width, result["h"], data)) - 1
    answer, literal = _row(data, width, prompt - 1), _row(data, width, prompt - 3)
    assert answer == literal and answer.strip(b"\x00\xff"), "the answer line is not 42"
    assert len(answer) == width * 4 * ROW


@pytest.mark.parametrize("compression", ["off", "lz4"])
def test_spice_types_and_matches_the_screenshot(spice_guest, compression):
    check_typed(asyncio.run(_session(spice_guest, compression)))


def video_session(lab_images, video: str, client=None) -> dict:
    """A fresh SPICE-only lab guest with ``video``, typed into and compared by ``_session``."""
    name = f"vstest-spice-{video}-{os.getpid()}"
    conn = libvirt.open(SYSTEM_URI)
    dom = conn.createXML(lab_domain_xml(name, lab_images, graphics=("spice",), video=video), 0)
    try:
        wait_for_prompt(dom, 120)  # generous: a loaded host boots TCG guests slowly
        return asyncio.run(_session(dom, "off", client))
    finally:
        dom.destroy()


@pytest.mark.parametrize("video", ["qxl", "virtio"])
def test_other_video_models_match_the_screenshot(lab_images, video):
    """QXL (in VGA mode, as a guest without QXL drivers runs it) and virtio-gpu without GL."""
    result = video_session(lab_images, video)
    assert result["unsupported"] == {}
    assert rgb(result["fb"]) == result["shot"].pixels
