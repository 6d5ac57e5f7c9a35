"""Connection URIs that run a program or name a socket, key or certificate are confirmed first.

libvirt's remote driver takes ``command=``, ``netcat=``, ``socket=``,
``keyfile=``, ``no_verify=`` and more from the URI's query.  A URI from the
command line, a pasted string or a settings file must be shown, its risky
parameters named, and used only after the user says yes; one the user typed
and confirmed is not asked about again unless the settings file changed it.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from virtstudio.core import uri as uri_mod
from virtstudio.ui.settings import ConnectionSettings
from virtstudio.ui.uri_confirm import open_start_hosts

# The test driver ignores these parameters, so a "yes" really connects, harmlessly.
RISKY = "test:///default?socket=/tmp/vstest-nowhere.sock"
PLAIN = "test:///default"


@pytest.mark.parametrize(("uri", "names"), [
    ("qemu+ssh://root@kvm1/system?command=/tmp/x", ["command"]),
    ("qemu+ext:///system?command=/usr/bin/evil", ["command"]),
    ("qemu+ssh://kvm1/system?netcat=/tmp/nc&keyfile=/tmp/id", ["netcat", "keyfile"]),
    ("qemu+unix:///system?socket=/tmp/s", ["socket"]),
    ("qemu+tls://kvm1/system?no_verify=1&pkipath=/tmp/pki", ["no_verify", "pkipath"]),
    ("qemu+libssh://kvm1/system?known_hosts=/tmp/kh&known_hosts_verify=ignore",
     ["known_hosts", "known_hosts_verify"]),
    ("qemu+ssh://kvm1/system?sshauth=privkey&mode=legacy&proxy=netcat",
     ["sshauth", "mode", "proxy"]),
    ("qemu+tls://kvm1/system?tls_priority=NORMAL", ["tls_priority"]),
    # libvirt splits at ';' too, ignores the case of names and unescapes them.
    ("qemu+ssh://kvm1/system?name=qemu:///system;command=/tmp/x", ["command"]),
    ("qemu+ssh://kvm1/system?COMMAND=/tmp/x", ["command"]),
    ("qemu+ssh://kvm1/system?%63ommand=/tmp/x", ["command"]),
    ("qemu:///embed?root=/tmp/vstest-root", ["root"]),
])
def test_risky_parameters_are_found_as_libvirt_reads_them(uri, names):
    assert [r.name for r in uri_mod.risky_parameters(uri)] == names


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu+ssh://root@kvm1/system",
                                 "qemu+ssh://kvm1/system?no_tty=1", "test:///default"])
def test_ordinary_uris_are_not_risky(uri):
    assert uri_mod.risky_parameters(uri) == []


def _questions() -> list[QMessageBox]:
    QApplication.processEvents()
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.objectName() == "uriConfirmBox"
            and w.isVisible()]


def _answer(box: QMessageBox, yes: bool) -> None:
    if yes:
        button = next(b for b in box.buttons() if b.objectName() == "confirmButton")
    else:
        button = box.button(QMessageBox.StandardButton.Cancel)
    button.click()
    QApplication.processEvents()


def test_a_pasted_risky_uri_is_shown_and_asked_about(make_main_window, qtbot, settings):
    window = make_main_window()
    dialog = window.show_add_connection()
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findText("Custom URI"))
    dialog.uri_edit.setText(RISKY)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_questions()) == 1, timeout=20000)
    (box,) = _questions()
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert RISKY in box.text() and "socket=/tmp/vstest-nowhere.sock" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert window.inventory.connections == [] and settings.load() == []
    _answer(box, yes=False)
    assert window.inventory.connections == [] and settings.load() == []
    assert dialog.isVisible()  # the user may fix the URI

    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_questions()) == 1, timeout=20000)
    _answer(_questions()[0], yes=True)
    qtbot.waitUntil(lambda: len(window.inventory.connections) == 1, timeout=20000)
    assert [(s.uri, s.confirmed) for s in settings.load()] == [(RISKY, True)]


def test_an_ordinary_uri_is_not_asked_about(make_main_window, qtbot, settings):
    window = make_main_window()
    dialog = window.show_add_connection()
    dialog.preset_combo.setCurrentIndex(dialog.preset_combo.findText("Custom URI"))
    dialog.uri_edit.setText(PLAIN)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.inventory.connections) == 1, timeout=20000)
    assert _questions() == []


def _start(window, settings, uris, *, from_command_line):
    errors: list[str] = []
    questions = open_start_hosts(window, window.inventory, settings, uris,
                                 from_command_line=from_command_line, on_error=errors.append)
    QApplication.processEvents()
    return questions, errors


def test_a_risky_uri_from_the_command_line_is_asked_about(make_main_window, qtbot, settings):
    window = make_main_window()
    questions, _ = _start(window, settings, [PLAIN, RISKY], from_command_line=True)
    assert [h.uri for h in window.inventory.connections] == [PLAIN]
    assert len(questions) == 1 and RISKY in questions[0].text()
    assert "command line" in questions[0].text()
    _answer(questions[0], yes=True)
    assert [h.uri for h in window.inventory.connections] == [PLAIN, RISKY]


def _write_saved(path, entries) -> None:
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    raw.setValue("connections/list", json.dumps(entries))
    raw.sync()


def test_a_saved_risky_uri_is_asked_about_until_confirmed(make_main_window, qtbot, settings,
                                                           tmp_path):
    # A settings file written elsewhere, even one claiming a confirmation.
    _write_saved(tmp_path / "settings.ini",
                 [{"uri": RISKY, "autoconnect": True, "confirmed": "0" * 64}])
    assert settings.load()[0].confirmed is False
    window = make_main_window()
    questions, _ = _start(window, settings, [RISKY], from_command_line=False)
    assert len(questions) == 1 and window.inventory.connections == []
    _answer(questions[0], yes=False)
    assert window.inventory.connections == []
    assert settings.load()[0].confirmed is False


def test_a_typed_and_confirmed_uri_is_not_asked_again_unless_the_file_changes(
        make_main_window, qtbot, settings, tmp_path):
    settings.add(RISKY, True, confirmed=True)  # what the add-connection dialog saves
    window = make_main_window()
    questions, _ = _start(window, settings, [RISKY], from_command_line=False)
    assert questions == [] and [h.uri for h in window.inventory.connections] == [RISKY]
    for host in list(window.inventory.connections):
        window.inventory.remove(host, wait=True)

    # Someone edits the saved URI in the file and keeps the old confirmation.
    path = tmp_path / "settings.ini"
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    entries = json.loads(raw.value("connections/list"))
    changed = "test:///default?socket=/tmp/vstest-other.sock"
    entries[0]["uri"] = changed
    _write_saved(path, entries)
    questions, _ = _start(window, settings, [changed], from_command_line=False)
    assert len(questions) == 1 and window.inventory.connections == []
    _answer(questions[0], yes=True)
    assert [h.uri for h in window.inventory.connections] == [changed]
    assert settings.load()[0].confirmed is True  # said yes once: not asked again


def test_a_copied_settings_file_without_its_secret_is_asked_again(qtbot, tmp_path):
    first = ConnectionSettings(QSettings(str(tmp_path / "a.ini"), QSettings.Format.IniFormat))
    first.add(RISKY, True, confirmed=True)
    copy = tmp_path / "b.ini"
    copy.write_bytes((tmp_path / "a.ini").read_bytes())
    second = ConnectionSettings(QSettings(str(copy), QSettings.Format.IniFormat))
    assert [s.confirmed for s in second.load()] == [False]
    assert [s.confirmed for s in first.load()] == [True]
