"""The main window against the real local libvirtd and a real QEMU guest."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from tests.integration.conftest import virsh
from tests.ui.test_main_window import click
from virtstudio.core.connection import ConnectionState
from virtstudio.core.entities import DomainState
from virtstudio.core.inventory import Inventory


def _domain(window, name):
    for row in range(window.vm_model.rowCount()):
        dom = window.vm_model.domain_at(row)
        if dom is not None and dom.name == name:
            return dom
    return None


def _state(window, name):
    dom = _domain(window, name)
    return dom.state if dom is not None else None


@pytest.fixture
def window(make_main_window, qtbot, system_libvirtd):
    window = make_main_window(Inventory(stats_interval=0.5))
    conn = window.inventory.add(system_libvirtd)
    qtbot.waitUntil(lambda: conn.state is ConnectionState.CONNECTED, timeout=60000)
    return window


def test_start_pause_resume_force_off_from_the_toolbar(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    assert window.select_domain(lab_vm)
    click(qtbot, window, "Start")
    qtbot.waitUntil(lambda: _state(window, lab_vm) is DomainState.RUNNING, timeout=60000)
    qtbot.waitUntil(lambda: window.vm_actions[next(
        a for a in window.vm_actions if a.value == "Pause")].isEnabled(), timeout=60000)
    click(qtbot, window, "Pause")
    qtbot.waitUntil(lambda: _state(window, lab_vm) is DomainState.PAUSED, timeout=60000)
    qtbot.waitUntil(lambda: window.vm_actions[next(
        a for a in window.vm_actions if a.value == "Resume")].isEnabled(), timeout=60000)
    click(qtbot, window, "Resume")
    qtbot.waitUntil(lambda: _state(window, lab_vm) is DomainState.RUNNING, timeout=60000)
    boxes = []
    window.confirm_requested.connect(boxes.append)
    click(qtbot, window, "Force off")
    go = next(b for b in boxes[0].buttons() if b.text() == "Force Off")
    qtbot.mouseClick(go, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _state(window, lab_vm) is DomainState.SHUTOFF, timeout=60000)
    assert virsh("domstate", lab_vm).strip() == "shut off"


def test_changes_made_with_virsh_show_within_a_second(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    delays = {}
    for command, expected in (("start", DomainState.RUNNING),
                              ("suspend", DomainState.PAUSED),
                              ("resume", DomainState.RUNNING),
                              ("destroy", DomainState.SHUTOFF)):
        virsh(command, lab_vm)
        returned = time.monotonic()
        qtbot.waitUntil(lambda e=expected: _state(window, lab_vm) is e, timeout=20000)
        delays[command] = time.monotonic() - returned
    assert max(delays.values()) < 1.0, delays
    virsh("undefine", lab_vm)
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is None, timeout=20000)


def test_details_show_the_real_xml(window, qtbot, lab_vm):
    qtbot.waitUntil(lambda: _domain(window, lab_vm) is not None, timeout=60000)
    window.select_domain(lab_vm)
    text = window.details.xml_view.toPlainText()
    assert f"<name>{lab_vm}</name>" in text
    assert "vmlinuz" in text
