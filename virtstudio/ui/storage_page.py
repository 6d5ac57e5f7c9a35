"""The Storage page's pool toolbar and context menu, added to the main window's page.

The main window builds the pool and volume tables; this module puts the pool
actions above them (as a toolbar and as the pools' context menu) and keeps
them enabled only where they make sense for the selected pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QMenu,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.entities import StoragePool, Volume
from virtstudio.core.errors import UserError, VirtStudioError
from virtstudio.core.jobs import Job
from virtstudio.storage.delete_plans import DeletePlan
from virtstudio.storage.pool_jobs import (
    PoolAction,
    allowed_actions,
    ask_delete_pool,
    create_pool,
    delete_pool,
    find_sources,
    run_pool_action,
)
from virtstudio.storage.volume_transfer import download_volume, upload_volume
from virtstudio.storage.volumes import ask_delete_volume, delete_volume
from virtstudio.ui.delete_dialog import DeletePlanDialog, lost_text, refused_text
from virtstudio.ui.host_devices_view import HostDevicesPanel
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.pool_dialog import NewPoolDialog
from virtstudio.ui.storage_drops import StorageDrops
from virtstudio.ui.thin_panel import ThinPanel

if TYPE_CHECKING:
    from virtstudio.ui.main_window import MainWindow

_TIPS = {
    PoolAction.START: "Start the pool: mount or activate its storage and list its volumes",
    PoolAction.STOP: "Stop the pool; its data stays",
    PoolAction.REFRESH: "Read the pool's volumes again",
    PoolAction.BUILD: "Prepare the pool's storage (folder, file system, partition table)",
}


class DeletePoolDialog(QDialog):
    """Names what is lost, with or without the data, before anything is deleted.

    ``plans`` are worked out on the host's worker first: without the data, and
    with it (each volume named, or who uses it, or why the contents are unknown).
    """

    def __init__(self, pool: StoragePool, plans: dict[bool, DeletePlan],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.plans = plans
        self.setWindowTitle(f"Delete pool {pool.name}?")
        self.with_data = QCheckBox("Also delete its volumes and storage",
                                   objectName="deleteWithData")
        self.text = plain_label(objectName="deletePoolText", wordWrap=True)
        self.lost = plain_label(objectName="deleteLost", wordWrap=True)
        self.refused = plain_label(objectName="deleteRefused", wordWrap=True)
        self.blocked = plain_label(objectName="deleteBlocked", wordWrap=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.delete_button = self.buttons.addButton(
            "Delete Pool", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.setAutoDefault(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setDefault(True)
        self.delete_button.clicked.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.text, self.lost, self.refused, self.blocked, self.with_data,
                       self.buttons):
            layout.addWidget(widget)
        self.with_data.toggled.connect(self._update)
        self._update()

    def plan(self) -> DeletePlan:
        return self.plans[self.with_data.isChecked()]

    def _update(self, *_: object) -> None:
        plan = self.plan()
        self.text.setText(plan.summary)
        for label, text in ((self.lost, lost_text(plan)), (self.refused, refused_text(plan)),
                            (self.blocked, plan.blocked)):
            label.setText(text)
            label.setVisible(bool(text))
        self.delete_button.setEnabled(not plan.blocked)



class StorageTools:
    """Pool actions for ``window``'s Storage page."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.toolbar = QToolBar("Storage pools", objectName="storageToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.new_pool_action = QAction("New Pool…", window, objectName="newPoolAction")
        self.new_pool_action.triggered.connect(self.show_new_pool)
        self.toolbar.addAction(self.new_pool_action)
        self.toolbar.addSeparator()
        self.actions: dict[PoolAction, QAction] = {}
        for action in (PoolAction.START, PoolAction.STOP, PoolAction.REFRESH, PoolAction.BUILD):
            qaction = QAction(action.value, window, objectName=f"pool{action.name.title()}Action")
            qaction.setToolTip(_TIPS[action])
            qaction.triggered.connect(lambda _=False, a=action: self.trigger(a))
            self.actions[action] = qaction
            self.toolbar.addAction(qaction)
        self.autostart_action = QAction("Autostart", window, objectName="poolAutostartAction")
        self.autostart_action.setCheckable(True)
        self.autostart_action.setToolTip("Start this pool whenever the host starts")
        self.autostart_action.triggered.connect(self._toggle_autostart)
        self.toolbar.addAction(self.autostart_action)
        self.toolbar.addSeparator()
        self.delete_action = QAction("Delete Pool…", window, objectName="deletePoolAction")
        self.delete_action.triggered.connect(self.ask_delete)
        self.toolbar.addAction(self.delete_action)
        self.toolbar.addSeparator()
        self.upload_action = QAction("Upload Volume…", window, objectName="uploadVolumeAction")
        self.upload_action.setToolTip("Copy a file from this computer into the pool as a volume")
        self.upload_action.triggered.connect(lambda: self.upload())
        self.download_action = QAction("Download Volume…", window,
                                       objectName="downloadVolumeAction")
        self.download_action.setToolTip("Copy the selected volume to a file on this computer")
        self.download_action.triggered.connect(lambda: self.download())
        self.toolbar.addAction(self.upload_action)
        self.toolbar.addAction(self.download_action)

        view = window.pool_view
        container = QWidget(objectName="poolPane")
        layout = QVBoxLayout(container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        self.thin = ThinPanel(window.runner)
        layout.addWidget(self.thin)
        index = window.storage_page.indexOf(view)
        layout.addWidget(view)  # moves the table out of the splitter, into the pane
        window.storage_page.insertWidget(index, container)
        self.layout = layout
        self._thin_pool = ""
        self.devices = HostDevicesPanel()
        window.storage_page.addWidget(self.devices)
        for pane, stretch in ((container, 3), (window.volume_view.parentWidget(), 3),
                              (self.devices, 1)):
            window.storage_page.setStretchFactor(window.storage_page.indexOf(pane), stretch)
        window.pages.currentChanged.connect(self._page_shown)
        window.volume_view.setDragEnabled(True)
        window.volume_view.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.drops = StorageDrops(window)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._context_menu)
        view.selectionModel().currentRowChanged.connect(self.update_actions)
        window.pool_model.dataChanged.connect(self.update_actions)
        window.pool_model.modelReset.connect(self.update_actions)
        window.pool_model.rowsRemoved.connect(self.update_actions)
        self.update_actions()

    def _page_shown(self, *_: object) -> None:
        # Read the devices the first time the page shows; Refresh reads them again.
        if self.window.pages.currentWidget() is self.window.storage_page and \
                not self.devices.devices and self.devices.refresh_button.isEnabled():
            self.devices.refresh()

    def update_actions(self, *_: object) -> None:
        pool = self.window.current_pool()
        allowed = allowed_actions(pool) if pool is not None else set()
        if pool is None or pool.uuid != self._thin_pool or pool.active != self.thin.isVisible():
            self._thin_pool = pool.uuid if pool is not None else ""
            self.thin.show_pool(pool)
        self.upload_action.setEnabled(pool is not None and pool.active)
        self.download_action.setEnabled(pool is not None and pool.active)
        for action, qaction in self.actions.items():
            qaction.setEnabled(action in allowed)
        self.autostart_action.setEnabled(pool is not None)
        self.autostart_action.setChecked(pool is not None and pool.autostart)
        self.delete_action.setEnabled(pool is not None)
        self.new_pool_action.setEnabled(self.window.pool_model.host is not None)

    def _context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self.window)
        menu.addAction(self.new_pool_action)
        if self.window.pool_view.indexAt(pos).isValid():
            menu.addSeparator()
            for qaction in self.actions.values():
                menu.addAction(qaction)
            menu.addAction(self.autostart_action)
            menu.addSeparator()
            menu.addAction(self.delete_action)
        menu.popup(self.window.pool_view.viewport().mapToGlobal(pos))

    def trigger(self, action: PoolAction) -> None:
        pool, host = self.window.current_pool(), self.window.pool_model.host
        if pool is not None and host is not None and action in allowed_actions(pool):
            run_pool_action(self.window.runner, host, pool, action)

    def _toggle_autostart(self, on: bool) -> None:
        self.trigger(PoolAction.AUTOSTART_ON if on else PoolAction.AUTOSTART_OFF)

    def show_new_pool(self) -> NewPoolDialog | None:
        host = self.window.pool_model.host
        if host is None:
            return None
        dialog = NewPoolDialog({p.name for p in list(host.pools.values())},
                               lambda kind, server: find_sources(host, kind, server),
                               self.window)

        def create() -> None:
            spec = dialog.spec()
            if spec is not None:
                create_pool(self.window.runner, host, spec, **dialog.options())

        self.window.open_for_action(dialog, create, "The pool was not created")
        return dialog

    def _selected_volume(self) -> Volume | None:
        index = self.window.volume_view.currentIndex()
        return self.window.volume_model.volume_at(index.row()) if index.isValid() else None

    def upload(self, source: Path | None = None) -> Job | None:
        pool, host = self.window.current_pool(), self.window.pool_model.host
        if pool is None or host is None:
            return None
        if source is None:
            chosen, _ = QFileDialog.getOpenFileName(self.window, f"Upload into {pool.name}")
            if not chosen:
                return None
            source = Path(chosen)
        try:
            return upload_volume(self.window.runner, host, pool, source)
        except VirtStudioError as exc:
            self.window.show_error("Nothing was uploaded", UserError(exc.message))
            return None

    def download(self, target: Path | None = None) -> Job | None:
        pool, host = self.window.current_pool(), self.window.pool_model.host
        volume = self._selected_volume()
        if pool is None or host is None or volume is None:
            return None
        if target is None:
            chosen, _ = QFileDialog.getSaveFileName(self.window, f"Download {volume.name}",
                                                    volume.name)
            if not chosen:
                return None
            target = Path(chosen)
        try:
            return download_volume(self.window.runner, host, pool, volume.name, target)
        except VirtStudioError as exc:
            self.window.show_error("Nothing was downloaded", UserError(exc.message))
            return None

    def ask_delete(self) -> None:
        """Work out what deleting the selected pool loses, then ask."""
        pool, host = self.window.current_pool(), self.window.pool_model.host
        if pool is None or host is None:
            return

        def show(plans: dict[bool, DeletePlan]) -> None:
            dialog = DeletePoolDialog(pool, plans, self.window)

            def delete() -> None:
                delete_pool(self.window.runner, host, pool, dialog.plan(),
                            with_data=dialog.with_data.isChecked())

            self.window.open_for_action(dialog, delete, "The pool was not deleted")

        self.window.delete_plans.ask(lambda: ask_delete_pool(host, pool), show,
                                     lambda error: self.window.show_error(
                                         f"The pool {pool.name} was not deleted", error))

    def ask_delete_volume(self) -> None:
        """Work out what deleting the selected volume loses (or who uses it), then ask."""
        pool, host = self.window.current_pool(), self.window.pool_model.host
        volume = self._selected_volume()
        if pool is None or host is None or volume is None:
            return

        def show(plan: DeletePlan) -> None:
            dialog = DeletePlanDialog(plan, self.window)
            self.window.open_for_action(
                dialog, lambda: delete_volume(self.window.runner, host, pool, plan),
                "The volume was not deleted")

        self.window.delete_plans.ask(lambda: ask_delete_volume(host, pool, volume.name), show,
                                     lambda error: self.window.show_error(
                                         f"{volume.name} was not deleted", error))
