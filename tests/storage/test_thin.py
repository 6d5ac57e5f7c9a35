"""Thin pool warnings and autoextend settings (the LVM side runs in the kernel lab)."""

from __future__ import annotations

import pytest

from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError
from virtstudio.storage.drop_plans import default_thin_pool_size, max_thin_pool_size
from virtstudio.storage.thin import ThinUsage, check_autoextend, profile_name, profile_text
from virtstudio.ui.thin_panel import volume_group_of

MiB = 1024 * 1024


def test_warnings_at_the_users_threshold_and_when_full():
    assert ThinUsage("vg", "tp", MiB, 50.0, 10.0).warning(80) == ""
    assert "is 85 % full (data), at or above your warning level of 80 %" in \
        ThinUsage("vg", "tp", MiB, 85.0, 10.0).warning(80)
    assert "(metadata)" in ThinUsage("vg", "tp", MiB, 10.0, 90.0).warning(80)
    full = ThinUsage("vg", "tp", MiB, 100.0, 10.0).warning(95)
    assert "is full (data)" in full and "Grow it or free space" in full
    assert "is full (metadata)" in ThinUsage("vg", "tp", MiB, 40.0, 100.0).warning(95)


def test_autoextend_settings_are_checked_and_said_plainly():
    on = check_autoextend(70, 25)
    assert on.enabled and "reaches 70 %" in on.describe() and "by 25 %" in on.describe()
    assert not check_autoextend(100, 20).enabled
    assert "never grows" in check_autoextend(100, 20).describe()
    text = profile_text(on)
    assert "thin_pool_autoextend_threshold = 70" in text
    assert "thin_pool_autoextend_percent = 25" in text
    assert profile_name("vg0", "tp") == "virtstudio-vg0-tp"
    with pytest.raises(VirtStudioError, match="from 50 to 100"):
        check_autoextend(20, 10)
    with pytest.raises(VirtStudioError, match="by 1 to 100"):
        check_autoextend(80, 0)


def test_thin_pool_sizes_fit_the_disk():
    for size in (64 * MiB, 256 * MiB, 100 * 1024 * MiB):
        fits = max_thin_pool_size(size)
        assert 0 < default_thin_pool_size(size) <= fits < size
        assert fits % (4 * MiB) == 0
    assert max_thin_pool_size(4 * MiB) == 0


def test_volume_group_of_a_logical_pool():
    xml = ("<pool type='logical'><name>fast</name><source><name>vg_nvme</name></source>"
           "<target><path>/dev/vg_nvme</path></target></pool>")
    assert volume_group_of(StoragePool("test:///", "u", xml, True, False)) == "vg_nvme"
    dir_xml = "<pool type='dir'><name>d</name><target><path>/x</path></target></pool>"
    assert volume_group_of(StoragePool("test:///", "u", dir_xml, True, False)) == ""
