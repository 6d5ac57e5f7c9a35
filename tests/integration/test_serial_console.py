"""The serial console session against the real lab guest's ttyS0 (no Qt)."""

from __future__ import annotations

import threading

import libvirt
import pytest

from tests.helpers import wait_for
from tests.lab.daemon import SYSTEM_URI
from tests.lab.guest import READY_MARKER
from virtstudio.console.serial import SerialSession
from virtstudio.core.connection import ConnectionState, HostConnection


@pytest.fixture
def host(system_libvirtd):
    conn = HostConnection(system_libvirtd, stats_interval=0)
    conn.open().result(timeout=60)
    assert conn.state is ConnectionState.CONNECTED
    yield conn
    conn.shutdown()


class Output:
    def __init__(self, session: SerialSession) -> None:
        self.data = bytearray()
        self.reasons: list[str] = []
        self._lock = threading.Lock()
        session.received.connect(self._add)
        session.closed.connect(lambda _s, reason: self.reasons.append(reason))

    def _add(self, chunk: bytes) -> None:
        with self._lock:
            self.data += chunk

    def text(self) -> str:
        with self._lock:
            return self.data.decode(errors="replace")


def test_typing_into_the_serial_console_gets_the_answer(host, lab_vm):
    dom = libvirt.open(SYSTEM_URI).lookupByName(lab_vm)
    # Paused first: a pty's output is dropped until a client reads it.
    dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    uuid = dom.UUIDString()
    wait_for(lambda: host.find_domain_by_name(lab_vm) is not None, 10)
    session = SerialSession(host, uuid)
    out = Output(session)
    session.open()
    wait_for(lambda: session.state == "connected", 15)
    dom.resume()
    wait_for(lambda: READY_MARKER in out.text(), 60, 0.1)
    wait_for(lambda: "# " in out.text().split(READY_MARKER, 1)[1], 30, 0.1)
    session.send(b"echo $((6*7))\r")
    wait_for(lambda: "\n42" in out.text().replace("\r", ""), 30, 0.1)
    dom.destroy()
    wait_for(lambda: session.state == "closed", 15)
    assert out.reasons and "closed" in out.reasons[0]


def test_a_stopped_machine_says_why_there_is_no_console(host, lab_vm):
    uuid = libvirt.open(SYSTEM_URI).lookupByName(lab_vm).UUIDString()
    session = SerialSession(host, uuid)
    out = Output(session)
    session.open()
    wait_for(lambda: session.state == "closed", 15)
    assert "could not be opened" in out.reasons[0]


def test_closing_before_the_console_opened_leaves_nothing_open(host, lab_vm):
    dom = libvirt.open(SYSTEM_URI).lookupByName(lab_vm)
    dom.create()
    try:
        wait_for(lambda: host.find_domain_by_name(lab_vm) is not None, 10)
        early = SerialSession(host, dom.UUIDString())
        early.open()
        early.close()  # before the worker got to it
        host.call(lambda _c: None).result(60)  # the worker has run the open by now
        assert early.state == "closed" and early._stream is None
        # The console is free: a new session gets it and answers.
        session = SerialSession(host, dom.UUIDString())
        out = Output(session)
        session.open()
        wait_for(lambda: session.state == "connected", 15)
        for _ in range(30):
            session.send(b"echo $((6*7))\r")
            try:
                wait_for(lambda: "\n42" in out.text().replace("\r", ""), 2, 0.1)
                break
            except AssertionError:
                continue  # still booting
        assert "\n42" in out.text().replace("\r", "")
        session.close()
    finally:
        dom.destroy()
