"""Saved connections survive a restart and garbage in the file."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from virtstudio.ui.settings import ConnectionSettings, SavedConnection


def test_round_trip(tmp_path):
    path = str(tmp_path / "s.ini")
    settings = ConnectionSettings(QSettings(path, QSettings.Format.IniFormat))
    settings.add("qemu:///system", True)
    settings.add("qemu+ssh://a@kvm1/system", False)
    settings.set_autoconnect("qemu:///system", False)
    settings.remove("nope:///x")
    again = ConnectionSettings(QSettings(path, QSettings.Format.IniFormat))
    assert again.load() == [SavedConnection("qemu:///system", False),
                            SavedConnection("qemu+ssh://a@kvm1/system", False)]
    again.remove("qemu:///system")
    assert [s.uri for s in again.load()] == ["qemu+ssh://a@kvm1/system"]


def test_garbage_is_skipped(tmp_path):
    path = str(tmp_path / "s.ini")
    raw = QSettings(path, QSettings.Format.IniFormat)
    raw.setValue("connections/list",
                 '[{"uri": "qemu:///system"}, 3, {"uri": "bad uri"}, {"nouri": 1}, '
                 '{"uri": "qemu:///system"}]')
    raw.sync()
    assert ConnectionSettings(QSettings(path, QSettings.Format.IniFormat)).load() == [
        SavedConnection("qemu:///system", True)]
    raw.setValue("connections/list", "{not json")
    raw.sync()
    assert ConnectionSettings(QSettings(path, QSettings.Format.IniFormat)).load() == []


def test_window_state(tmp_path):
    settings = ConnectionSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert settings.load_window("main") is None
    settings.save_window("main", b"\x01\x02")
    assert settings.load_window("main") == b"\x01\x02"
