"""Clone and Migrate for the selected machine: toolbar and context-menu entries, dialogs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from virtstudio.core.connection import ConnectionState
from virtstudio.machines.clone import clone_domain
from virtstudio.machines.migrate import migrate_domain
from virtstudio.ui.clone_dialog import CloneDialog
from virtstudio.ui.icons import icon
from virtstudio.ui.migrate_dialog import MigrateDialog

if TYPE_CHECKING:
    from virtstudio.ui.main_window import MainWindow


class MachineActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.clone_action = QAction(icon("vm"), "Clone…", window)
        self.clone_action.setObjectName("cloneAction")
        self.clone_action.setToolTip("Clone the machine: a full copy or a linked clone")
        self.clone_action.triggered.connect(self.show_clone)
        self.migrate_action = QAction(icon("network"), "Migrate…", window)
        self.migrate_action.setObjectName("migrateAction")
        self.migrate_action.setToolTip("Move the machine to another open connection")
        self.migrate_action.triggered.connect(self.show_migrate)
        for action in (self.clone_action, self.migrate_action):
            window.toolbar.insertAction(window.wall_action, action)
        window.toolbar.insertSeparator(window.wall_action)
        window.vm_view.selectionModel().selectionChanged.connect(self._update)
        window.vm_model.dataChanged.connect(self._update)
        window.vm_model.rowsRemoved.connect(self._update)
        window.details.snapshots.confirm_requested.connect(window.confirm_requested)
        self._update()

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        menu.addAction(self.clone_action)
        menu.addAction(self.migrate_action)

    def _update(self, *_: object) -> None:
        selected = self.window.selected_domain()
        usable = selected is not None and selected[0].state is ConnectionState.CONNECTED
        self.clone_action.setEnabled(usable and not selected[1].state.is_active)
        self.migrate_action.setEnabled(usable)

    def show_clone(self) -> CloneDialog | None:
        selected = self.window.selected_domain()
        if selected is None:
            return None
        host, domain = selected
        dialog = CloneDialog(host, domain, self.window)

        self.window.open_for_action(
            dialog, lambda: clone_domain(self.window.runner, host, domain, dialog.name(),
                                         dialog.modes(), dialog.confirmed()),
            "The machine was not cloned")
        return dialog

    def show_migrate(self) -> MigrateDialog | None:
        selected = self.window.selected_domain()
        if selected is None:
            return None
        host, domain = selected
        dialog = MigrateDialog(host, domain, list(self.window.inventory.connections),
                               self.window)

        def move() -> None:
            destination = dialog.destination()
            if destination is not None:
                migrate_domain(self.window.runner, host, domain, destination, dialog.options())

        self.window.open_for_action(dialog, move, "The machine was not moved")
        return dialog
