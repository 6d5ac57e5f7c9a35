"""The main window: hosts on the left, machines in the middle, details below.

The window only presents models and forwards user actions to the core (the
inventory, the job runner, the domain actions); it never calls libvirt.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolBar,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from virtstudio import __version__
from virtstudio.core.connection import ConnectionState, HostConnection
from virtstudio.core.domain_actions import Action, allowed, ask_delete, run_action
from virtstudio.core.entities import Domain, StoragePool
from virtstudio.core.errors import UserError, VirtStudioError
from virtstudio.core.inventory import Inventory
from virtstudio.core.io_errors import describe_faults, paused_on_io_error
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.local_probe import LocalAccess
from virtstudio.machines.groups import Groups, groups_of, save_groups
from virtstudio.network.host_links import HostNetwork
from virtstudio.sandbox.manager import SandboxManager
from virtstudio.sandbox.store import ProfileStore
from virtstudio.storage.delete_plans import DeletePlan
from virtstudio.storage.volumes import create_volume
from virtstudio.ui.add_connection_dialog import AddConnectionDialog
from virtstudio.ui.bridge import relay
from virtstudio.ui.console_controller import ConsoleController
from virtstudio.ui.console_wall import ConsoleWall
from virtstudio.ui.delete_dialog import DeleteVmDialog, PlanRequests
from virtstudio.ui.details_pane import DetailsPane
from virtstudio.ui.error_dialog import error_box
from virtstudio.ui.first_run_page import FirstRunPage, root_banner
from virtstudio.ui.host_model import HostRole, HostTreeModel
from virtstudio.ui.icons import app_icon, icon
from virtstudio.ui.jobs_panel import JobsPanel
from virtstudio.ui.machine_actions import MachineActions
from virtstudio.ui.machine_list_view import MachineListView
from virtstudio.ui.network_model import NetworkListModel
from virtstudio.ui.networks_page import NetworksPage
from virtstudio.ui.new_vm_wizard import NewVmWizard, open_new_vm_wizard
from virtstudio.ui.plain_text import html, make_plain
from virtstudio.ui.pool_model import PoolListModel
from virtstudio.ui.sandbox_panel import SandboxPanel
from virtstudio.ui.settings import ConnectionSettings
from virtstudio.ui.sparkline import SparklineDelegate
from virtstudio.ui.storage_page import StorageTools
from virtstudio.ui.vm_model import VmColumn, VmFilterProxy, VmListModel, VmRole
from virtstudio.ui.volume_dialog import NewVolumeDialog
from virtstudio.ui.volume_model import VolumeListModel

_ACTION_ICONS = {
    Action.START: "start", Action.PAUSE: "pause", Action.RESUME: "resume",
    Action.SHUTDOWN: "shutdown", Action.REBOOT: "reboot", Action.FORCE_OFF: "force-off",
    Action.DELETE: "delete",
}
_ACTION_TIPS = {
    Action.START: "Start the virtual machine",
    Action.PAUSE: "Pause: freeze the machine in memory",
    Action.RESUME: "Resume a paused or suspended machine",
    Action.SHUTDOWN: "Ask the guest to shut down cleanly",
    Action.REBOOT: "Ask the guest to reboot",
    Action.FORCE_OFF: "Force off: stop at once, like pulling the plug",
    Action.DELETE: "Delete the machine and, if you choose, its disks",
}
DEMO_BANNER = ("Demo host: libvirt's test driver with made-up machines. "
               "Nothing you do here touches a real host.")


class MainWindow(QMainWindow):
    """Emits ``confirm_requested`` with each confirmation box it opens (for tests)."""

    confirm_requested = Signal(object)

    def __init__(self, inventory: Inventory, runner: JobRunner,
                 settings: ConnectionSettings | None = None,
                 sandboxes: tuple[SandboxManager, ProfileStore] | None = None,
                 host_network: HostNetwork | None = None) -> None:
        super().__init__()
        self.host_network = host_network
        self.inventory = inventory
        self.runner = runner
        self.sandboxes = sandboxes
        self.settings = settings or ConnectionSettings()
        self.setObjectName("mainWindow")
        self._sized = False
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)

        self.host_model = HostTreeModel(inventory, self)
        self.vm_model = VmListModel(inventory, self)
        self.vm_proxy = VmFilterProxy(self)
        self.vm_proxy.setSourceModel(self.vm_model)
        self.pool_model = PoolListModel(self)
        self.network_model = NetworkListModel(self)

        self._build_actions()
        self._build_toolbar()
        self._build_central()
        self._build_jobs_dock()
        self._build_status_bar()
        self.machine_actions = MachineActions(self)

        relay(inventory.connection_added, self._on_connection_added, self)
        relay(inventory.connection_removed, self._on_connections_changed, self)
        self.vm_model.dataChanged.connect(self._on_vm_data_changed)
        self.vm_model.rowsRemoved.connect(self._on_selection_changed)
        self.vm_model.rowsInserted.connect(self._update_status)
        self.vm_model.rowsRemoved.connect(self._update_status)
        self._on_connections_changed()
        self._on_selection_changed()

    # ---- construction -------------------------------------------------------------

    def _build_actions(self) -> None:
        self.add_connection_action = QAction(icon("add-connection"), "Add Connection…", self)
        self.add_connection_action.setObjectName("addConnectionAction")
        self.add_connection_action.setShortcut(QKeySequence("Ctrl+Shift+N"))
        self.add_connection_action.triggered.connect(self.show_add_connection)
        self.new_vm_action = QAction(icon("vm"), "New VM…", self, objectName="newVmAction",
                                     shortcut=QKeySequence("Ctrl+N"),
                                     toolTip="Create a virtual machine on the selected host")
        self.new_vm_action.triggered.connect(self.show_new_vm)
        self.vm_actions: dict[Action, QAction] = {}
        for action in Action:
            qaction = QAction(icon(_ACTION_ICONS[action]), action.value, self)
            qaction.setObjectName(f"{action.name.lower()}Action")
            qaction.setToolTip(_ACTION_TIPS[action])
            qaction.setStatusTip(_ACTION_TIPS[action])
            qaction.triggered.connect(lambda _=False, a=action: self.trigger(a))
            self.vm_actions[action] = qaction
        self.vm_actions[Action.DELETE].setShortcut(QKeySequence.StandardKey.Delete)
        self.vm_actions[Action.START].setShortcut(QKeySequence("Ctrl+Return"))
        self.wall_action = QAction(icon("console"), "Console Wall", self)
        self.wall_action.setObjectName("consoleWallAction")
        self.wall_action.setCheckable(True)
        self.wall_action.setToolTip("Live screens of every running machine on this host")
        self.wall_action.toggled.connect(self._toggle_wall)
        self.filter_action = QAction("Find", self)
        self.filter_action.setShortcut(QKeySequence.StandardKey.Find)
        self.filter_action.triggered.connect(lambda: self.filter_edit.setFocus())
        self.addAction(self.filter_action)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.addAction(quit_action)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main toolbar")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addAction(self.add_connection_action)
        bar.addAction(self.new_vm_action)
        bar.addSeparator()
        for action in (Action.START, Action.PAUSE, Action.RESUME, Action.SHUTDOWN,
                       Action.REBOOT, Action.FORCE_OFF):
            bar.addAction(self.vm_actions[action])
        bar.addSeparator()
        bar.addAction(self.vm_actions[Action.DELETE])
        bar.addSeparator()
        bar.addAction(self.wall_action)
        self.addToolBar(bar)
        self.toolbar = bar

    def _build_central(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)

        self.demo_banner = QLabel(DEMO_BANNER)
        self.demo_banner.setObjectName("demoBanner")
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setStyleSheet(
            "QLabel#demoBanner { background: #fff4ce; color: #5c4400; padding: 6px 10px;"
            " border-bottom: 1px solid #e0c46c; }")
        layout.addWidget(self.demo_banner)
        self.root_banner = root_banner()
        layout.addWidget(self.root_banner)
        # Stays until no machine is paused on a disk error any more.
        self.io_error_banner = QLabel()
        self.io_error_banner.setObjectName("ioErrorBanner")
        self.io_error_banner.setWordWrap(True)
        self.io_error_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.io_error_banner.setStyleSheet(
            "QLabel#ioErrorBanner { background: #fde7e9; color: #7a1c24; padding: 6px 10px;"
            " border-bottom: 1px solid #e8a0a8; }")
        self.io_error_banner.hide()
        layout.addWidget(self.io_error_banner)

        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.setObjectName("outerSplitter")
        self.host_view = QTreeView()
        self.host_view.setObjectName("hostTree")
        self.host_view.setModel(self.host_model)
        self.host_view.setHeaderHidden(True)
        self.host_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.host_view.customContextMenuRequested.connect(self._host_context_menu)
        self.host_view.selectionModel().currentChanged.connect(self._on_host_section_changed)
        self.host_view.setMinimumWidth(220)
        self.host_view.setAcceptDrops(True)
        self.host_view.setDropIndicatorShown(True)
        self.host_view.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.host_model.machines_dropped.connect(self.file_machines)
        self.host_model.rowsInserted.connect(self._expand_new_hosts)
        sidebar = QWidget()
        sidebar_layout = QVBoxLayout(sidebar)
        sidebar_layout.setContentsMargins(0, 0, 0, 0)
        sidebar_layout.setSpacing(4)
        sidebar_layout.addWidget(self.host_view, 1)
        self.local_list = QListWidget(objectName="localList")
        self.local_list.setMaximumHeight(48)
        if self.sandboxes is not None:
            sidebar_layout.addWidget(QLabel("  This computer"))
            item = QListWidgetItem(icon("sandbox"), "Application sandboxes")
            self.local_list.addItem(item)
            sidebar_layout.addWidget(self.local_list)
        self.local_list.itemSelectionChanged.connect(self._on_local_selected)
        outer.addWidget(sidebar)

        self.pages = QStackedWidget()
        self.pages.setObjectName("pages")
        vm_split = QSplitter(Qt.Orientation.Vertical)
        self.vm_view = MachineListView()
        self.vm_view.setObjectName("vmList")
        self.vm_view.setModel(self.vm_proxy)
        self.vm_view.setRootIsDecorated(False)
        self.vm_view.setUniformRowHeights(True)
        self.vm_view.setAlternatingRowColors(True)
        self.vm_view.setSortingEnabled(True)
        self.vm_view.sortByColumn(VmColumn.NAME, Qt.SortOrder.AscendingOrder)
        self.vm_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.vm_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.vm_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.vm_view.customContextMenuRequested.connect(self._vm_context_menu)
        self.vm_view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.vm_view.doubleClicked.connect(lambda _index: self.open_console())
        self.vm_view.activated.connect(lambda _index: self.open_console())
        self.sparklines = SparklineDelegate(self.vm_view)
        for column in (VmColumn.CPU, VmColumn.DISK_IO, VmColumn.NET_IO):
            self.vm_view.setItemDelegateForColumn(column, self.sparklines)
        header = self.vm_view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(VmColumn.NAME, QHeaderView.ResizeMode.Stretch)
        widths = {VmColumn.STATE: 120, VmColumn.HOST: 120, VmColumn.VCPUS: 60,
                  VmColumn.MEMORY: 90, VmColumn.CPU: 110, VmColumn.DISK_IO: 110,
                  VmColumn.NET_IO: 110, VmColumn.GROUPS: 170}
        for column, width in widths.items():
            header.resizeSection(column, width)
        # The filter sits on the list it narrows, so the toolbar can keep every action in view.
        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filterEdit")
        self.filter_edit.setPlaceholderText(
            "Filter by name, host, state, tag:web or folder:prod  (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.vm_proxy.set_text)
        list_box = QWidget()
        list_layout = QVBoxLayout(list_box)
        list_layout.setContentsMargins(0, 0, 0, 0)
        list_layout.setSpacing(4)
        list_layout.addWidget(self.filter_edit)
        list_layout.addWidget(self.vm_view)
        vm_split.addWidget(list_box)
        self.details = DetailsPane(runner=self.runner)
        vm_split.addWidget(self.details)
        self.consoles = ConsoleController(self.details.console, self)
        self.consoles.follow_hosts(self.inventory)  # a removed host's SSH tunnel closes
        self.details.tabs.currentChanged.connect(self._update_console)
        vm_split.setStretchFactor(0, 3)
        vm_split.setStretchFactor(1, 2)

        self.pages.addWidget(vm_split)
        self.vm_page = vm_split

        self.pool_view = self._entity_table("poolList", self.pool_model)
        self.volume_model = VolumeListModel(self)
        self.volume_view = self._entity_table("volumeList", self.volume_model)
        self.pool_view.selectionModel().currentRowChanged.connect(self._on_pool_selected)
        self.pool_model.dataChanged.connect(self._on_pool_data_changed)
        self.storage_page = QSplitter(Qt.Orientation.Vertical)
        self.storage_page.addWidget(self.pool_view)
        volumes = QWidget()
        volumes_layout = QVBoxLayout(volumes)
        volumes_layout.setContentsMargins(0, 0, 0, 0)
        volumes_layout.addWidget(self.volume_view)
        buttons = QHBoxLayout()
        self.new_volume_button = QPushButton("New Volume…", objectName="newVolumeButton")
        self.new_volume_button.clicked.connect(self.show_new_volume)
        self.delete_volume_button = QPushButton("Delete Volume…",
                                                objectName="deleteVolumeButton")
        self.delete_volume_button.clicked.connect(self._ask_delete_volume)
        buttons.addWidget(self.new_volume_button)
        buttons.addWidget(self.delete_volume_button)
        buttons.addStretch(1)
        volumes_layout.addLayout(buttons)
        self.storage_page.addWidget(volumes)
        self.pages.addWidget(self.storage_page)
        self.delete_plans = PlanRequests(self)
        self.storage_tools = StorageTools(self)
        # The Networks page lives in its own module; it only needs these handles.
        self.network_page = NetworksPage(
            self.network_model, self.runner, self.inventory, self.host_network,
            sandboxes=self.sandboxes[0] if self.sandboxes is not None else None)
        self.network_page.dialog_opened.connect(self.confirm_requested)
        self.network_view = self.network_page.virtual.view
        self.link_model = self.network_page.link_model
        self.pages.addWidget(self.network_page)

        self.sandbox_panel: SandboxPanel | None = None
        if self.sandboxes is not None:
            self.sandbox_panel = SandboxPanel(*self.sandboxes, self.runner)
            self.pages.addWidget(self.sandbox_panel)

        self.wall = ConsoleWall()
        self.wall.open_requested.connect(self._open_from_wall)
        self.pages.addWidget(self.wall)

        self.host_message = QLabel()
        self.host_message.setObjectName("hostMessage")
        self.host_message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.host_message.setWordWrap(True)
        self.pages.addWidget(self.host_message)

        self.first_run = FirstRunPage()
        self.first_run.dismissed.connect(self._leave_first_run)
        self.host_view.pressed.connect(self._leave_first_run)
        self.pages.addWidget(self.first_run)

        outer.addWidget(self.pages)
        outer.setStretchFactor(0, 0)
        outer.setStretchFactor(1, 1)
        outer.setSizes([260, 1020])
        layout.addWidget(outer, 1)
        self.setCentralWidget(central)

    def _entity_table(self, name: str, model: object) -> QTableView:
        view = QTableView()
        view.setObjectName(name)
        view.setModel(model)
        view.setSortingEnabled(False)
        view.setAlternatingRowColors(True)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.verticalHeader().setVisible(False)
        view.horizontalHeader().setStretchLastSection(True)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        return view

    def _build_jobs_dock(self) -> None:
        self.jobs_panel = JobsPanel(self.runner)
        self.jobs_panel.job_failed.connect(self._on_job_failed)
        self.jobs_panel.active_count_changed.connect(self._on_active_jobs)
        dock = QDockWidget("Tasks", self)
        dock.setObjectName("tasksDock")
        dock.setWidget(self.jobs_panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.jobs_dock = dock
        self.resizeDocks([dock], [110], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summaryLabel")
        self.statusBar().addWidget(self.summary_label, 1)
        self.jobs_label = QLabel()
        self.statusBar().addPermanentWidget(self.jobs_label)
        self.statusBar().addPermanentWidget(QLabel(f"VirtStudio {__version__}"))
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.setInterval(200)
        self._status_timer.timeout.connect(self._update_status_now)

    # ---- hosts ------------------------------------------------------------------------

    def _on_connection_added(self, conn: HostConnection) -> None:
        relay(conn.state_changed, self._on_host_state, self)
        relay(conn.pools_added, lambda *_: self._update_status(), self)
        relay(conn.domains_io_paused, self._on_io_paused, self)
        # The banner goes once no machine is paused on a disk error, whatever is selected.
        relay(conn.domains_changed, lambda *_: self._update_io_banner(), self)
        relay(conn.domains_removed, lambda *_: self._update_io_banner(), self)
        self._on_connections_changed()

    def _on_connections_changed(self, *_: object) -> None:
        # With one host every row would repeat its name: the room goes to the others.
        self.vm_view.setColumnHidden(VmColumn.HOST, len(self.inventory.connections) <= 1)
        demo = any(c.is_demo for c in self.inventory.connections)
        self.demo_banner.setVisible(demo)
        self.setWindowTitle("VirtStudio — Demo host" if demo else "VirtStudio")
        self._on_host_section_changed(self.host_view.currentIndex())
        self._update_status()

    def _on_host_state(self, conn: HostConnection) -> None:
        if conn.state is ConnectionState.LOST and conn.error is not None:
            self.statusBar().showMessage(f"{conn.name}: {conn.error.message}", 10000)
        if self._current_host() is conn:
            self._on_host_section_changed(self.host_view.currentIndex())
        self._on_selection_changed()
        self._update_status()

    def _expand_new_hosts(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return
        for row in range(first, last + 1):
            host = self.host_model.index(row, 0)
            self.host_view.expand(host)
            # Its folders arrive with its machines; the top ones show without a click.
            self.host_view.expand(self.host_model.index(0, 0, host))
        if not self.host_view.currentIndex().isValid():
            self.host_view.setCurrentIndex(self.host_model.index(first, 0))

    def _current_host(self) -> HostConnection | None:
        index = self.host_view.currentIndex()
        return index.data(HostRole.HOST) if index.isValid() else None

    def _toggle_wall(self, on: bool) -> None:
        if not on:
            self.wall.clear()
            self._on_host_section_changed(self.host_view.currentIndex())
            return
        index = self.host_view.currentIndex()
        host = index.data(HostRole.HOST) if index.isValid() else None
        if host is None and self.inventory.connections:
            host = self.inventory.connections[0]
        if host is None:
            self.wall_action.setChecked(False)
            return
        self.wall.show_domains(host, list(host.domains.values()))
        self.pages.setCurrentWidget(self.wall)

    def _open_from_wall(self, host: HostConnection, domain: Domain) -> None:
        self.wall_action.setChecked(False)
        self.vm_proxy.set_text("")
        self.filter_edit.clear()
        self.vm_model.flush_pending()  # the tile may show a machine the list has queued
        if self.select_domain(domain.name):
            self.open_console()

    def show_sandboxes(self) -> None:
        if self.sandbox_panel is not None:
            self.local_list.setCurrentRow(0)

    def _on_local_selected(self) -> None:
        if self.local_list.selectedItems() and self.sandbox_panel is not None:
            self.host_view.selectionModel().clearSelection()
            self.pages.setCurrentWidget(self.sandbox_panel)

    def _on_host_section_changed(self, index: QModelIndex, _previous: object = None) -> None:
        if self.pages.currentWidget() is self.wall and self.wall_action.isChecked():
            return  # the wall stays until the user leaves it
        if self.pages.currentWidget() is self.first_run:
            return  # so does the first-run page: hosts coming in do not hide it
        if index.isValid():
            self.local_list.clearSelection()
        elif self.pages.currentWidget() is self.sandbox_panel:
            return
        host: HostConnection | None = index.data(HostRole.HOST) if index.isValid() else None
        section = index.data(HostRole.SECTION) if index.isValid() else None
        self.vm_proxy.set_host(host.uri if host is not None else None)
        self.vm_proxy.set_folder(index.data(HostRole.FOLDER) if section == "folder" else None)
        if host is not None and host.state is not ConnectionState.CONNECTED:
            self.host_message.setText(self._host_state_text(host))
            if section in ("storage", "networks"):
                self.pages.setCurrentWidget(self.host_message)
                return
        if section == "storage":
            self.pool_model.set_host(host)
            self.pages.setCurrentWidget(self.storage_page)
            if self.pool_model.rowCount():
                self.pool_view.setCurrentIndex(self.pool_model.index(0, 0))
            else:
                self.volume_model.set_pool(None, None)
        elif section == "networks":
            self.network_model.set_host(host)
            self.pages.setCurrentWidget(self.network_page)
        else:
            self.pages.setCurrentWidget(self.vm_page)

    def show_first_run(self, access: LocalAccess) -> None:
        """Say why only the session daemon (or none) is open, and how to get system access."""
        self.first_run.show_access(access)
        self.pages.setCurrentWidget(self.first_run)

    def _leave_first_run(self, *_: object) -> None:
        if self.pages.currentWidget() is self.first_run:
            self.pages.setCurrentWidget(self.vm_page)
            self._on_host_section_changed(self.host_view.currentIndex())

    def _on_pool_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        pool = self.pool_model.pool_at(current.row()) if current.isValid() else None
        self.volume_model.set_pool(self.pool_model.host if pool is not None else None, pool)

    def current_pool(self) -> StoragePool | None:
        index = self.pool_view.currentIndex()
        return self.pool_model.pool_at(index.row()) if index.isValid() else None

    def show_new_volume(self) -> NewVolumeDialog | None:
        pool, host = self.current_pool(), self.pool_model.host
        if pool is None or host is None:
            return None
        dialog = NewVolumeDialog(pool, self)

        def create() -> None:
            spec = dialog.spec()
            if spec is not None:
                create_volume(self.runner, host, pool, spec)

        self.open_for_action(dialog, create, "The volume was not created")
        return dialog

    def open_for_action(self, dialog: QDialog, act: Callable[[], object], failure: str) -> None:
        """Open ``dialog``; once accepted run ``act``, showing a refusal under ``failure``."""

        def accepted() -> None:
            try:
                act()
            except VirtStudioError as exc:
                self.show_error(failure, UserError(exc.message))

        dialog.accepted.connect(accepted)
        dialog.open()
        self.confirm_requested.emit(dialog)

    def _ask_delete_volume(self) -> None:
        self.storage_tools.ask_delete_volume()

    def _on_pool_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex,
                              _roles: object = ()) -> None:
        current = self.pool_view.currentIndex()
        if current.isValid() and top_left.row() <= current.row() <= bottom_right.row():
            pool = self.pool_model.pool_at(current.row())
            if pool is not None:
                self.volume_model.update_pool(pool)

    @staticmethod
    def _host_state_text(host: HostConnection) -> str:
        text = f"<b>{html(host.name)}</b><br>{host.state.value}"
        if host.error is not None:
            text += f": {html(host.error.message)}"
        return text

    def show_new_vm(self) -> NewVmWizard | None:
        return open_new_vm_wizard(self)

    def show_add_connection(self) -> AddConnectionDialog:
        dialog = AddConnectionDialog([c.uri for c in self.inventory.connections], self)
        dialog.accepted.connect(lambda: self._add_connection(dialog.uri(), dialog.autoconnect()))
        dialog.open()
        return dialog

    def _add_connection(self, uri: str, autoconnect: bool) -> None:
        try:
            self.inventory.add(uri)
        except VirtStudioError as exc:
            self.show_error("Could not add the connection", UserError(exc.message, exc.detail))
            return
        # The dialog asked about any risky parameter before it closed.
        self.settings.add(uri, autoconnect, confirmed=True)

    def _host_context_menu(self, pos: QPoint) -> None:
        host = self.host_view.indexAt(pos).data(HostRole.HOST)
        menu = QMenu(self)
        if host is not None:
            if host.state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
                menu.addAction("Disconnect", host.close)
            else:
                menu.addAction("Connect now", host.reconnect_now)
            if not host.is_demo:
                saved = {s.uri: s for s in self.settings.load()}
                auto = menu.addAction("Connect automatically at start")
                auto.setCheckable(True)
                auto.setChecked(saved[host.uri].autoconnect if host.uri in saved else False)
                auto.toggled.connect(lambda on, h=host: self._set_autoconnect(h, on))
            menu.addSeparator()
            menu.addAction("Remove connection", lambda h=host: self.remove_connection(h))
            menu.addSeparator()
            menu.addAction(self.new_vm_action)
        menu.addAction(self.add_connection_action)
        menu.popup(self.host_view.viewport().mapToGlobal(pos))

    def file_machines(self, host: HostConnection, folder: str, uuids: list[str]) -> list[Job]:
        """File machines in ``folder`` ("" takes them out of any), keeping their tags."""
        jobs = []
        for uuid in uuids:
            domain = host.domains.get(uuid)
            if domain is None:
                continue
            groups = groups_of(domain)
            if groups.folder != folder:
                jobs.append(save_groups(self.runner, host, domain, Groups(folder, groups.tags)))
        names = ", ".join(job.target for job in jobs)
        if names:
            where = f"in {folder}" if folder else "out of their folder"
            self.statusBar().showMessage(f"Filing {names} {where}…", 5000)
        return jobs

    def _set_autoconnect(self, host: HostConnection, on: bool) -> None:
        if host.uri not in {s.uri for s in self.settings.load()}:
            self.settings.add(host.uri, on)
        else:
            self.settings.set_autoconnect(host.uri, on)

    def remove_connection(self, host: HostConnection) -> None:
        self.settings.remove(host.uri)
        self.inventory.remove(host, wait=False)

    # ---- machines ------------------------------------------------------------------

    def selected_domain(self) -> tuple[HostConnection, Domain] | None:
        rows = self.vm_view.selectionModel().selectedRows()
        if not rows:
            return None
        index = rows[0]
        domain = index.data(VmRole.DOMAIN)
        host = index.data(VmRole.HOST)
        if domain is None or host is None:
            return None
        return host, domain

    def select_domain(self, name: str) -> bool:
        """Select the first listed machine called ``name``; used by tests and scripting."""
        for row in range(self.vm_proxy.rowCount()):
            index = self.vm_proxy.index(row, 0)
            domain = index.data(VmRole.DOMAIN)
            if domain is not None and domain.name == name:
                self.vm_view.selectionModel().select(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows)
                self.vm_view.scrollTo(index)
                return True
        return False

    def _on_vm_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex,
                            _roles: object = ()) -> None:
        if top_left.column() > VmColumn.STATE:
            return  # statistics only
        selected = self.selected_domain()
        if selected is None:
            return
        row = self.vm_model.row_of(selected[0].uri, selected[1].uuid)
        if top_left.row() <= row <= bottom_right.row():
            self._on_selection_changed()
        self._update_status()

    def _on_selection_changed(self, *_: object) -> None:
        selected = self.selected_domain()
        for action, qaction in self.vm_actions.items():
            enabled = (selected is not None
                       and selected[0].state is ConnectionState.CONNECTED
                       and allowed(action, selected[1]))
            qaction.setEnabled(enabled)
        if selected is None:
            self.details.clear()
        else:
            self.details.show_domain(selected[1], selected[0].name, selected[0])
        self._update_console()

    def _update_console(self, *_: object) -> None:
        selected = self.selected_domain()
        visible = self.details.tabs.currentWidget() is self.details.console
        host, domain = selected if selected is not None else (None, None)
        self.consoles.show(host, domain, visible)

    def open_console(self) -> None:
        """Show the selected machine's screen (double-click or Enter on the list)."""
        if self.selected_domain() is not None:
            self.details.tabs.setCurrentWidget(self.details.console)
            self.details.console.view.setFocus()
            # The screen matters more than the list while it is shown.
            height = self.vm_page.height()
            self.vm_page.setSizes([height // 4, height - height // 4])

    def _vm_context_menu(self, pos: QPoint) -> None:
        if not self.vm_view.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        for action in (Action.START, Action.PAUSE, Action.RESUME, Action.SHUTDOWN,
                       Action.REBOOT, Action.FORCE_OFF):
            menu.addAction(self.vm_actions[action])
        menu.addSeparator()
        menu.addAction(self.vm_actions[Action.DELETE])
        self.machine_actions.add_to_menu(menu)
        menu.popup(self.vm_view.viewport().mapToGlobal(pos))

    def trigger(self, action: Action) -> None:
        selected = self.selected_domain()
        if selected is None or not allowed(action, selected[1]):
            return
        host, domain = selected
        if action is Action.DELETE:
            self._ask_delete(host, domain)
        elif action is Action.FORCE_OFF:
            self._confirm(
                f"Force off {domain.name}?",
                f"{domain.name} stops at once, like pulling the power plug. "
                "Anything the guest has not saved is lost.",
                "Force Off",
                lambda: run_action(self.runner, host, domain, action))
        else:
            run_action(self.runner, host, domain, action)

    def _ask_delete(self, host: HostConnection, domain: Domain) -> None:
        def show(plan: DeletePlan) -> None:
            dialog = DeleteVmDialog(domain, plan, self)
            dialog.accepted.connect(lambda: run_action(
                self.runner, host, domain, Action.DELETE, dialog.confirmed_plan()))
            dialog.open()
            self.confirm_requested.emit(dialog)

        self.delete_plans.ask(lambda: ask_delete(host, domain), show,
                              lambda error: self.show_error(f"{domain.name} was not deleted",
                                                            error))

    def _confirm(self, title: str, text: str, verb: str, then: object) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Cancel, self)
        make_plain(box)
        go = box.addButton(verb, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda button: then() if button is go else None)
        box.open()
        self.confirm_requested.emit(box)
        return box

    # ---- jobs, errors, status ---------------------------------------------------------

    def _on_io_paused(self, host: HostConnection, domains: list[Domain]) -> None:
        """A machine just stopped on a full or failing disk: say which disk, which pool."""
        text = " ".join(describe_faults(d, list(host.pools.values())) for d in domains)
        self.io_error_banner.setText(text)
        self.io_error_banner.show()
        self.statusBar().showMessage(text, 30000)

    def _update_io_banner(self) -> None:
        if self.io_error_banner.isHidden():
            return
        if not any(paused_on_io_error(d) for h in self.inventory.connections
                   for d in list(h.domains.values())):
            self.io_error_banner.hide()

    def _on_job_failed(self, job: Job) -> None:
        if job.error is not None:
            self.show_error(f"{job.title} failed", job.error)

    def show_error(self, title: str, error: UserError) -> QMessageBox:
        box = error_box(self, title, error)
        box.open()
        return box

    def _on_active_jobs(self, count: int) -> None:
        self.jobs_label.setText(f"{count} task{'s' if count != 1 else ''} running" if count else "")

    def _update_status(self, *_: object) -> None:
        self._status_timer.start()

    def _update_status_now(self) -> None:
        self._update_io_banner()
        hosts = self.inventory.connections
        connected = sum(1 for h in hosts if h.state is ConnectionState.CONNECTED)
        total = self.vm_model.rowCount()
        running = sum(1 for row in range(total)
                      if (d := self.vm_model.domain_at(row)) is not None and d.state.is_active)
        self.summary_label.setText(
            f"{connected} of {len(hosts)} host{'s' if len(hosts) != 1 else ''} connected · "
            f"{total} machine{'s' if total != 1 else ''}, {running} running")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized:
            # Splitter sizes only take once the window has its real size.
            self._sized = True
            QTimer.singleShot(0, self._split_evenly)

    def _split_evenly(self) -> None:
        height = self.vm_page.height()
        self.vm_page.setSizes([int(height * 0.6), height - int(height * 0.6)])

    def closeEvent(self, event: QCloseEvent) -> None:
        self.consoles.shutdown()
        self.wall.clear()
        self.settings.save_window("main", bytes(self.saveGeometry().data()))
        super().closeEvent(event)

    def restore_layout(self) -> None:
        geometry = self.settings.load_window("main")
        if geometry:
            self.restoreGeometry(geometry)
