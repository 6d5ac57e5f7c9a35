"""Fixtures for GUI tests: a main window over real (test-driver) hosts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from virtstudio.core.inventory import Inventory
from virtstudio.core.jobs import JobRunner
from virtstudio.ui.settings import ConnectionSettings


@pytest.fixture
def settings(tmp_path):
    return ConnectionSettings(QSettings(str(tmp_path / "settings.ini"),
                                        QSettings.Format.IniFormat))


@pytest.fixture
def make_main_window(qtbot, settings):
    from virtstudio.ui.main_window import MainWindow

    made = []

    def make(inventory: Inventory | None = None):
        inventory = inventory or Inventory(stats_interval=0.3)
        runner = JobRunner()
        window = MainWindow(inventory, runner, settings)
        qtbot.addWidget(window)
        window.show()
        made.append((window, inventory, runner))
        return window

    yield make
    for window, inventory, runner in made:
        runner.shutdown(wait=True)
        inventory.shutdown(wait=True)
        window.close()
