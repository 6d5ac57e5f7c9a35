"""Plain text everywhere: names and texts from a host are never drawn as markup.

A host (or whoever defined its machines) chooses every name, title,
description, folder, tag, path and error text VirtStudio shows.  Here each
of them carries markup (``<b>``, ``<img src=...>``); the main window is
walked page by page, tab by tab, dialog by dialog, and every label, message
box, tooltip and list item must show it as text: a label is PlainText or its
text escaped, a tooltip escaped.  Validators must also refuse a trailing
newline (Python's ``$`` matches before one).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import Qt as QtGui_Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QGraphicsView,
    QHeaderView,
    QLabel,
    QMessageBox,
    QWidget,
)

from tests.qt_events import drain_hosts
from virtstudio.core.connection import ConnectionState
from virtstudio.core.domain_actions import Action
from virtstudio.core.errors import UserError, VirtStudioError
from virtstudio.network.host_links import validate_ifname
from virtstudio.network.virtual_networks import NetworkSpec, check_spec
from virtstudio.privileged.operations import check_request
from virtstudio.sandbox.profile import SandboxProfile
from virtstudio.storage import lvm

MARK = "<img"  # in every hostile string below; escaped it reads &lt;img
DOMAIN = "<b>x<i><img src=vm>"  # libvirt refuses '/' in names
TITLE = "<b>title</b><img src=title>"
DESCRIPTION = "<i>described</i><img src=description>"
FOLDER = "<b>folder<img src=folder>"
TAG = "<b>tag<img src=tag>"
NETWORK = "<b>net<img src=net>"
POOL = "<b>pool<img src=pool>"
VOLUME = "<b>vol<img src=vol>"
SNAPSHOT = "<b>snap<img src=snap>"
SNAPSHOT_DESCRIPTION = "<b>sd</b><img src=snapdesc>"
DISK = "/var/lib/vstest/<b>disk<img src=disk>.qcow2"


def _x(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "'", "&apos;")


def _fixture(path) -> str:
    return f"""<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
<domain type='test'><name>{_x(DOMAIN)}</name><title>{_x(TITLE)}</title>
<description>{_x(DESCRIPTION)}</description>
<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
<metadata><vs:groups xmlns:vs='http://virtstudio.org/xmlns/groups/1.0'>
<vs:folder>{_x(FOLDER)}</vs:folder><vs:tag>{_x(TAG)}</vs:tag></vs:groups></metadata>
<devices><disk type='file' device='disk'><source file='{_x(DISK)}'/>
<target dev='vda' bus='virtio'/></disk>
<interface type='network'><mac address='52:54:00:77:00:01'/><source network='{_x(NETWORK)}'/>
</interface><graphics type='vnc' port='-1'/></devices>
<test:runstate>1</test:runstate></domain>
<domain type='test'><name>vstest-plain</name>
<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>
<test:runstate>5</test:runstate></domain>
<network><name>{_x(NETWORK)}</name><bridge name='vstestbr7'/><forward mode='nat'/>
<ip address='10.77.0.1' netmask='255.255.255.0'/></network>
<pool type='dir'><name>{_x(POOL)}</name><target><path>/var/lib/vstest</path></target>
<volume type='file'><name>{_x(VOLUME)}</name><capacity>1048576</capacity></volume></pool>
</node>"""


def _renders_markup(text: str, text_format: Qt.TextFormat) -> bool:
    """Whether Qt would draw ``text`` as rich text with a hostile tag still in it."""
    if text_format == Qt.TextFormat.PlainText or MARK not in text:
        return False
    return text_format == Qt.TextFormat.RichText or QtGui_Qt.mightBeRichText(text)


def _model_offenders(view: QAbstractItemView, where: str) -> list[str]:
    model = view.model()
    found = []
    if model is None:
        return found

    def columns(parent: QModelIndex) -> int:
        try:
            return model.columnCount(parent)
        except TypeError:  # a list model keeps columnCount to itself: one column, flat
            return 0 if parent.isValid() else 1

    def walk(parent: QModelIndex) -> None:
        for row in range(model.rowCount(parent)):
            for column in range(columns(parent)):
                index = model.index(row, column, parent)
                tip = index.data(Qt.ItemDataRole.ToolTipRole)
                if isinstance(tip, str) and _renders_markup(tip, Qt.TextFormat.AutoText):
                    found.append(f"{where}: tooltip of item {row},{column}: {tip!r}")
            first = model.index(row, 0, parent)
            if columns(parent) and model.rowCount(first):
                walk(first)

    walk(QModelIndex())
    return found


def offenders(top: QWidget | None = None) -> list[str]:
    """Every place in the open windows where a hostile string would render as markup."""
    found: list[str] = []
    tops = [top] if top is not None else QApplication.topLevelWidgets()
    for window in tops:
        widgets = [window, *window.findChildren(QWidget)]
        for widget in widgets:
            where = f"{type(widget).__name__} {widget.objectName()!r}"
            if isinstance(widget, QLabel) and _renders_markup(widget.text(),
                                                               widget.textFormat()):
                found.append(f"{where}: label {widget.text()!r}")
            tip = widget.toolTip()
            if _renders_markup(tip, Qt.TextFormat.AutoText):
                found.append(f"{where}: tooltip {tip!r}")
            if isinstance(widget, QAbstractItemView) and not isinstance(widget, QHeaderView):
                found += _model_offenders(widget, where)
            if isinstance(widget, QGraphicsView) and widget.scene() is not None:
                for item in widget.scene().items():
                    if _renders_markup(item.toolTip(), Qt.TextFormat.AutoText):
                        found.append(f"{where}: scene item tooltip {item.toolTip()!r}")
            for action in widget.actions():
                if _renders_markup(action.toolTip(), Qt.TextFormat.AutoText):
                    found.append(f"{where}: action tooltip {action.toolTip()!r}")
    return found


@pytest.fixture
def hostile_window(make_main_window, qtbot, tmp_path):
    path = tmp_path / "vstest-host.xml"  # libvirt parses no markup in a URI
    path.write_text(_fixture(path), encoding="utf-8")
    window = make_main_window()
    host = window.inventory.add(f"test://{path}")
    qtbot.waitUntil(lambda: host.state is ConnectionState.CONNECTED
                    and window.vm_model.rowCount() == 2, timeout=10000)
    host.call(lambda conn: conn.lookupByName(DOMAIN).snapshotCreateXML(
        f"<domainsnapshot><name>{_x(SNAPSHOT)}</name>"
        f"<description>{_x(SNAPSHOT_DESCRIPTION)}</description></domainsnapshot>", 0)
    ).result(timeout=60)
    window.host_view.setCurrentIndex(QModelIndex())
    return window, host


def _settled(qtbot, window) -> None:
    """What the last step asked the hosts for has come back and is on screen."""
    drain_hosts(qtbot, window.inventory.connections)


def _assert_plain(qtbot, step: str) -> None:
    QApplication.processEvents()
    found = offenders()
    assert not found, f"after {step}:\n" + "\n".join(found)


def test_every_view_shows_hostile_names_as_plain_text(hostile_window, qtbot):
    window, _host = hostile_window
    _assert_plain(qtbot, "opening the window")

    assert window.select_domain(DOMAIN)
    qtbot.waitUntil(lambda: window.details.domain is not None
                    and window.details.domain.name == DOMAIN, timeout=20000)
    for tab in range(window.details.tabs.count()):
        window.details.tabs.setCurrentIndex(tab)
        _settled(qtbot, window)
        _assert_plain(qtbot, f"details tab {window.details.tabs.tabText(tab)}")
    # The snapshot shows after a refresh of the panel.
    snapshots = window.details.snapshots
    window.details.tabs.setCurrentWidget(snapshots)
    qtbot.mouseClick(snapshots.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: snapshots.tree.topLevelItemCount() == 1, timeout=10000)
    _assert_plain(qtbot, "listing snapshots")

    # Every section of the sidebar: the host, its machines, folders, storage, networks.
    model = window.host_model

    def sections(parent: QModelIndex):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            yield index
            yield from sections(index)

    for index in list(sections(QModelIndex())):
        window.host_view.setCurrentIndex(index)
        _settled(qtbot, window)
        if window.pages.currentWidget() is window.storage_page and window.pool_model.rowCount():
            window.pool_view.setCurrentIndex(window.pool_model.index(0, 0))
            _settled(qtbot, window)
        _assert_plain(qtbot, f"sidebar item {index.data()!r}")


def _close_dialogs() -> None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, (QDialog, QMessageBox)) and widget.isVisible():
            widget.reject()
    QApplication.processEvents()


def test_every_dialog_and_box_shows_hostile_names_as_plain_text(hostile_window, qtbot):
    window, host = hostile_window
    assert window.select_domain(DOMAIN)
    qtbot.waitUntil(lambda: window.details.domain is not None
                    and window.details.domain.name == DOMAIN, timeout=20000)

    def opened(step: str, open_it) -> None:
        open_it()
        _settled(qtbot, window)
        _assert_plain(qtbot, step)
        _close_dialogs()

    opened("the force-off question", lambda: window.trigger(Action.FORCE_OFF))
    opened("the delete dialog", lambda: window.trigger(Action.DELETE))
    opened("the clone dialog", window.machine_actions.show_clone)
    opened("an error box", lambda: window.show_error(
        f"Could not start {DOMAIN}", UserError(f"{DOMAIN} failed: {TITLE}", DESCRIPTION)))

    snapshots = window.details.snapshots
    window.details.tabs.setCurrentWidget(snapshots)
    qtbot.mouseClick(snapshots.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: snapshots.tree.topLevelItemCount() == 1, timeout=10000)
    opened("the take-snapshot dialog", snapshots.show_take)
    assert snapshots.select(SNAPSHOT)
    boxes: list = []
    snapshots.confirm_requested.connect(boxes.append)
    qtbot.mouseClick(snapshots.revert_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(boxes), timeout=10000)
    _assert_plain(qtbot, "the revert question")
    _close_dialogs()

    # The XML tab refusing an edit that renames the machine quotes the old name.
    xml = window.details.xml_editor
    window.details.tabs.setCurrentWidget(xml)
    qtbot.mouseClick(xml.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: xml.editing, timeout=10000)
    xml.text.setPlainText(xml.text.toPlainText().replace(_x(DOMAIN), "vstest-renamed", 1))
    qtbot.waitUntil(lambda: DOMAIN in xml.error.text(), timeout=20000)
    _assert_plain(qtbot, "a refused XML edit")
    xml.stop_editing()

    # Moving it to another host, and a new machine on this one.
    other = window.inventory.add("test:///default")
    qtbot.waitUntil(lambda: other.state is ConnectionState.CONNECTED, timeout=10000)
    window.host_view.setCurrentIndex(QModelIndex())
    assert window.select_domain(DOMAIN)
    opened("the migrate dialog", window.machine_actions.show_migrate)
    window.host_view.setCurrentIndex(window.host_model.index(0, 0))
    opened("the new machine wizard", window.show_new_vm)

    # The console wall of the host.
    window.host_view.setCurrentIndex(window.host_model.index(0, 0))
    window.wall_action.setChecked(True)
    _settled(qtbot, window)
    _assert_plain(qtbot, "the console wall")
    window.wall_action.setChecked(False)

    # The networks page with the hostile network chosen, then the topology.
    window.host_view.setCurrentIndex(QModelIndex())
    page = window.network_page
    window.pages.setCurrentWidget(page)
    window.network_model.set_host(host)
    assert page.virtual.select(NETWORK)
    _settled(qtbot, window)
    _assert_plain(qtbot, "choosing the network")
    page.setCurrentWidget(page.topology)
    # Shown, it draws at once; changes meanwhile are gathered by a short timer.
    _settled(qtbot, window)
    qtbot.waitUntil(lambda: not page.topology._timer.isActive(), timeout=10000)
    _assert_plain(qtbot, "the topology")


# ---- validators: a trailing newline is not part of a valid name ----------------------------


def _raises(call) -> str:
    """The message of the VirtStudioError ``call`` raises; "" when it accepts."""
    try:
        call()
    except VirtStudioError as exc:
        return exc.message
    return ""


@pytest.mark.parametrize("problem", [
    lambda: _raises(lambda: validate_ifname("br0\n")),
    lambda: _raises(lambda: lvm.validate_name("vg0\n")),
    lambda: _raises(lambda: check_request({"op": "create_partition_table",
                                           "args": {"device": "/dev/sdz\n", "label": "gpt"}})),
    lambda: _raises(lambda: check_request({"op": "create_bridge",
                                           "args": {"name": "br0", "netns": "ns\n"}})),
    lambda: _raises(lambda: SandboxProfile(name="web\n").validate(check_paths=False)),
    # The name is checked first, before anything of the host is looked at.
    lambda: check_spec(NetworkSpec(name="vstest-net\n"), None),
], ids=["interface", "lvm", "helper-device", "helper-netns", "sandbox-profile", "network"])
def test_a_trailing_newline_is_refused(problem):
    assert problem()
