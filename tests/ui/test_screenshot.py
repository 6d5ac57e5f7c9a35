"""--screenshot waits for the picture it promises: every host listed, or failed."""

from __future__ import annotations

from PySide6.QtGui import QImage

from virtstudio.core.fixtures import write_fixture
from virtstudio.core.inventory import Inventory
from virtstudio.ui.screenshot import schedule_screenshot

MACHINES = 5000


def test_saves_only_once_every_machine_is_listed(make_main_window, qtbot, tmp_path):
    big = write_fixture(tmp_path / "vstest-big.xml", MACHINES)
    inventory = Inventory(stats_interval=0.3)
    window = make_main_window(inventory)
    results = []
    at_save = []

    def done(result):
        at_save.append(window.vm_model.rowCount())
        results.append(result)

    # Scheduled before the host is added, as with --connect: nothing to wait for yet
    # must not count as "everything listed".
    schedule_screenshot(window, inventory, tmp_path / "shot.png", settle_ms=0, done=done)
    inventory.add(f"test://{big}")
    qtbot.waitUntil(lambda: bool(results), timeout=120_000)

    result = results[0]
    assert result.complete and result.saved
    assert result.machines == at_save[0] == MACHINES
    assert f"{MACHINES} machines listed, 1 of 1 host connected" in result.summary()
    image = QImage(str(tmp_path / "shot.png"))
    assert not image.isNull() and image.width() > 400


def test_a_failed_host_counts_as_settled(make_main_window, qtbot, tmp_path):
    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    results = []
    schedule_screenshot(window, inventory, tmp_path / "shot.png", settle_ms=0,
                        done=results.append)
    inventory.add(f"test://{tmp_path / 'vstest-missing.xml'}")
    qtbot.waitUntil(lambda: bool(results), timeout=30_000)
    assert results[0].complete and results[0].machines == 0
    assert "0 of 1 host connected" in results[0].summary()


def test_the_ceiling_saves_anyway_and_says_so(make_main_window, qtbot, tmp_path):
    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    results = []
    # No host at all: nothing ever settles, so only the ceiling ends the wait.
    schedule_screenshot(window, inventory, tmp_path / "shot.png", ceiling_s=0.5, settle_ms=0,
                        done=results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert results[0].saved and not results[0].complete
    assert "before every host was listed" in results[0].summary()


def test_an_unwritable_path_is_reported(make_main_window, qtbot, tmp_path):
    inventory = Inventory(stats_interval=0)
    window = make_main_window(inventory)
    results = []
    schedule_screenshot(window, inventory, tmp_path / "no-such-dir" / "shot.png",
                        ceiling_s=0, settle_ms=0, done=results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    assert not results[0].saved
    assert "could not be saved" in results[0].summary()
