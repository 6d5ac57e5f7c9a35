"""VirtStudio started by a real unprivileged user, offscreen, against a real libvirtd.

In the ``libvirt`` group the user manages ``qemu:///system`` (libvirt asks
polkit, whose packaged rule admits the group) and sees its machines; outside it
VirtStudio opens the user's own ``qemu:///session`` and a first-run page that
says how to get system access.  Neither start may print a traceback.

The group member also manages the host through VirtStudio's own code:
a pool, a volume, a network, a machine with a disk in that pool on that
network, its console, and the deletes (ordinary_user_manage.py, run as them).

libvirtd asks polkit over the system bus, and joins that bus once:
packaging/dev/start-libvirtd starts the bus and polkitd first where no init
system does.  A system daemon started before any bus can never admit a user;
on such a machine the test starts a QEMU libvirtd of its own after the bus,
with polkit authentication, and shows the user its socket in place of the
system one (a private mount namespace for the user's command only).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.integration.ordinary_user_manage import names as managed_names
from tests.lab.polkit import polkit_running, polkit_unavailable
from tests.lab.qemu_daemon import PrivateQemuDaemon, qemu_daemon_unavailable
from tests.lab.users import (
    LabUser,
    interpreter_binds,
    lab_user,
    run_as,
    users_unavailable,
)

REPO = Path(__file__).resolve().parents[2]
SYSTEM_SOCKET = "/run/libvirt/libvirt-sock"

pytestmark = pytest.mark.skipif(bool(users_unavailable() or polkit_unavailable()),
                                reason=users_unavailable() or polkit_unavailable())

# Starts VirtStudio as `python -m virtstudio` would, then reads what the window shows.
DRIVER = """
import json, os, sys
os.environ["QT_NO_GLIB"] = "1"
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from virtstudio import app as entry
want, ticks = sys.argv[1], [0]

def look():
    ticks[0] += 1
    win = next((w for w in app.topLevelWidgets() if w.objectName() == "mainWindow"), None)
    if win is None:
        QTimer.singleShot(250, look)
        return
    uris = [c.uri for c in win.inventory.connections]
    names = [win.vm_proxy.index(r, 0).data() for r in range(win.vm_proxy.rowCount())]
    first = win.pages.currentWidget() is win.first_run
    ready = {"first-run": first and uris, "any-host": bool(uris)}.get(want, want in names)
    if not ready and ticks[0] < 240:
        QTimer.singleShot(250, look)
        return
    result = {
        "uris": uris, "names": names, "first_run": first,
        "heading": win.first_run.heading.text(), "body": win.first_run.body.text(),
        "root_banner": win.root_banner.isVisible(), "title": win.windowTitle()}
    walk(win, result)

def walk(win, result):
    # Every page a user can open: each host's sections, then the sandboxes; a page
    # that fails prints its traceback on stderr, which the test reads.
    model, steps = win.host_model, []
    for row in range(model.rowCount()):
        host = model.index(row, 0)
        steps.append(host)
        steps += [model.index(r, 0, host) for r in range(model.rowCount(host))]
    texts = []

    def step():
        if steps:
            win.host_view.setCurrentIndex(steps.pop(0))
            QTimer.singleShot(1500, step)
            return
        if win.local_list.count():
            win.local_list.setCurrentRow(0)
        QTimer.singleShot(1500, finish)

    def finish():
        from PySide6.QtWidgets import QLabel
        result["labels"] = [w.text() for w in win.findChildren(QLabel) if w.isVisible()]
        print("RESULT " + json.dumps(result))
        app.quit()

    step()

QTimer.singleShot(300, look)
sys.exit(entry.main(["--no-autoconnect"]))
"""


class PolkitQemuDaemon(PrivateQemuDaemon):
    """A private QEMU libvirtd that admits any local user whom polkit admits."""

    def __init__(self) -> None:
        super().__init__()
        text = self.config.read_text()
        for old, new in (('auth_unix_rw = "none"', 'auth_unix_rw = "polkit"'),
                         ('unix_sock_rw_perms = "0700"', 'unix_sock_rw_perms = "0777"'),
                         ('unix_sock_ro_perms = "0700"', 'unix_sock_ro_perms = "0777"')):
            text = text.replace(old, new)
        self.config.write_text(text)
        # The test's own folders: users must reach the socket inside.
        self.dir.chmod(0o755)
        self.run_dir.chmod(0o755)


def _system_daemon_admits(user: LabUser) -> bool:
    done = run_as(user, ["virsh", "-c", "qemu:///system", "uri"], timeout=60)
    return done.returncode == 0


@pytest.fixture(scope="module")
def polkit() -> Iterator[None]:
    with polkit_running():
        yield


@pytest.fixture
def group_user(polkit) -> Iterator[LabUser]:
    with lab_user("grp", groups=["libvirt"]) as user:
        yield user


@pytest.fixture
def plain_user(polkit) -> Iterator[LabUser]:
    with lab_user("usr") as user:
        yield user


@pytest.fixture
def system_daemon(group_user) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(root's URI of the daemon the user reaches as qemu:///system, socket binds)."""
    if _system_daemon_admits(group_user):
        yield "qemu:///system", []
        return
    problem = qemu_daemon_unavailable()
    if problem:
        pytest.skip(f"the system libvirtd cannot ask polkit and {problem}")
    daemon = PolkitQemuDaemon()
    try:
        daemon.start()
        yield daemon.uri, [(str(daemon.socket), SYSTEM_SOCKET)]
    finally:
        daemon.close()


def domain_xml(name: str) -> str:
    root = ET.Element("domain", type="qemu")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "64"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    return ET.tostring(root, encoding="unicode")


def start_app(user: LabUser, want: str, file_binds: list[tuple[str, str]]) -> dict:
    done = run_as(user, [sys.executable, "-c", DRIVER, want],
                  env={"PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"},
                  binds=interpreter_binds(), file_binds=file_binds, timeout=180)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_libvirt_group_member_manages_the_system_daemon(group_user, system_daemon):
    uri, file_binds = system_daemon
    name = f"vstest-ordinary-{os.getpid()}"
    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(domain_xml(name))
        try:
            seen = start_app(group_user, name, file_binds)
        finally:
            dom.undefine()
    finally:
        conn.close()
    assert seen["uris"] == ["qemu:///system"]
    assert name in seen["names"]
    assert not seen["first_run"] and not seen["root_banner"]


def _remove_managed(uri: str, prefix: str) -> None:
    """Whatever a failed run of ordinary_user_manage left, removed as root."""
    made = managed_names(prefix)
    conn = libvirt.open(uri)
    try:
        with contextlib.suppress(libvirt.libvirtError):
            dom = conn.lookupByName(made["machine"])
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        with contextlib.suppress(libvirt.libvirtError):
            net = conn.networkLookupByName(made["network"])
            if net.isActive():
                net.destroy()
            net.undefine()
        with contextlib.suppress(libvirt.libvirtError):
            pool = conn.storagePoolLookupByName(made["pool"])
            if not pool.isActive():
                pool.create(0)
            for volume in pool.listAllVolumes(0):
                volume.delete(0)
            pool.destroy()
            pool.delete(0)
            pool.undefine()
    finally:
        conn.close()


def test_libvirt_group_member_creates_uses_and_deletes(group_user, system_daemon):
    """Pool, volume, network, machine, console and deletes, as the group member."""
    uri, file_binds = system_daemon
    prefix = f"vstest-grpmanage-{os.getpid()}"
    subnet = random.Random(os.getpid()).randrange(150, 200)
    try:
        done = run_as(group_user, [sys.executable, "-m", "tests.integration.ordinary_user_manage",
                                   prefix, str(subnet)],
                      env={"PYTHONPATH": str(REPO)}, binds=interpreter_binds(),
                      file_binds=file_binds, timeout=600)
    finally:
        _remove_managed(uri, prefix)
    steps = [ln.removeprefix("STEP ").removesuffix(" ok") for ln in done.stdout.splitlines()
             if ln.startswith("STEP ")]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (steps, done.stderr[-3000:])
    assert steps == ["create pool", "create and delete volume", "create network",
                     "create and start machine", "console", "delete machine with its disk",
                     "delete network and pool"]


def test_user_outside_the_group_gets_session_and_the_first_run_page(plain_user):
    seen = start_app(plain_user, "first-run", [])
    assert seen["uris"] == ["qemu:///session"]
    assert seen["first_run"] and not seen["root_banner"]
    assert "qemu:///session" in seen["heading"]
    assert f"sudo adduser {plain_user.name} libvirt" in seen["body"]
    assert "log out and in again" in seen["body"] and "polkit" in seen["body"]


def test_root_sees_the_banner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "cfg"), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", DRIVER, "any-host"], env=env,
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    seen = json.loads(line.removeprefix("RESULT "))
    assert seen["root_banner"] and not seen["first_run"]
