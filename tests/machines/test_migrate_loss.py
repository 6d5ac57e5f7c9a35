"""What a move says when a daemon dies mid-way: each side is asked where the machine is."""

from __future__ import annotations

import libvirt
import pytest

from virtstudio.machines.migrate import _lost_during_move

LOST = "internal error: client socket is closed"


class _Side:
    """A connection that answers a machine's state, says it has none, or is gone."""

    def __init__(self, state: int | None = None, gone: bool = False) -> None:
        self.state, self.gone = state, gone

    def lookupByUUIDString(self, _uuid: str):
        if self.gone:
            raise libvirt.libvirtError(LOST)
        if self.state is None:
            raise libvirt.libvirtError("Domain not found: no domain with matching uuid")
        state = self.state
        return type("Dom", (), {"state": lambda _self: [state, 0]})()


RUNNING, PAUSED = libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED


@pytest.fixture(autouse=True)
def _no_last_error():
    libvirt.virResetLastError()  # libvirtError() reads the thread's last error


def _message(src: _Side, dest: _Side) -> str:
    return _lost_during_move(libvirt.libvirtError(LOST), src, dest, "a", "b", "u", "vm").message


def test_a_move_that_finished_names_the_old_definition_left_on_a_silent_source():
    text = _message(_Side(gone=True), _Side(RUNNING))
    assert text.startswith("The connection to a was lost during moving vm to b. Done: vm runs "
                           "on b."), text
    assert "Left: vm on a, if it is listed there once its daemon is back" in text
    assert "without its disks" in text
    assert _message(_Side(), _Side(RUNNING)).endswith("Left: nothing.")


def test_a_move_that_did_not_finish_says_where_the_machine_is():
    text = _message(_Side(PAUSED), _Side(gone=True))
    assert text.startswith("The connection to b was lost during moving vm to b. Done: "
                           "nothing. Not done: moving vm to b; vm is still paused on a."), text
    assert "vm is paused on a: resume it there" in text
    assert "any unfinished copy on b: its daemon discards it when it starts again" in text


def test_both_sides_silent_says_to_look_on_both():
    text = _message(_Side(gone=True), _Side(gone=True))
    assert "whether vm moved cannot be read" in text and "look on both" in text
