"""The Tasks panel: every job with its progress, a cancel button and its log."""

from __future__ import annotations

import enum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.ui.bridge import relay
from virtstudio.ui.plain_text import plain_tooltip

Index = QModelIndex | QPersistentModelIndex
JOB_ROLE = Qt.ItemDataRole.UserRole + 1


class JobColumn(enum.IntEnum):
    TASK = 0
    HOST = 1
    STATUS = 2
    PROGRESS = 3


_HEADERS = ("Task", "Host", "Status", "Progress")


class JobsModel(QAbstractTableModel):
    """Jobs, newest on top; each change is a dataChanged of that one row."""

    job_finished = Signal(object)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._finished: set[int] = set()
        relay(runner.job_added, self._on_added, self)
        relay(runner.job_changed, self._on_changed, self)
        for job in runner.jobs:
            self._on_added(job)

    def _on_added(self, job: Job) -> None:
        if job in self._jobs:
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._jobs.insert(0, job)
        self.endInsertRows()

    def _on_changed(self, job: Job) -> None:
        try:
            row = self._jobs.index(job)
        except ValueError:
            return
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(JobColumn) - 1))
        if job.state.finished and job.id not in self._finished:
            self._finished.add(job.id)
            self.job_finished.emit(job)

    def job_at(self, row: int) -> Job | None:
        return self._jobs[row] if 0 <= row < len(self._jobs) else None

    def active_count(self) -> int:
        return sum(1 for j in self._jobs if not j.state.finished)

    def clear_finished(self) -> None:
        for row in reversed(range(len(self._jobs))):
            if self._jobs[row].state.finished:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._jobs[row]
                self.endRemoveRows()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._jobs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(JobColumn)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        job = self.job_at(index.row()) if index.isValid() else None
        if job is None:
            return None
        col = JobColumn(index.column())
        if role == JOB_ROLE:
            return job
        if role == Qt.ItemDataRole.DisplayRole:
            if col is JobColumn.TASK:
                return job.title
            if col is JobColumn.HOST:
                return job.host
            if col is JobColumn.STATUS:
                if job.state is JobState.FAILED and job.error is not None:
                    return f"Failed: {job.error.message}"
                if job.state is JobState.RUNNING and job.status:
                    return job.status
                return job.state.value
            return None
        if role == Qt.ItemDataRole.ForegroundRole and job.state is JobState.FAILED:
            return QColor("#b3261e")
        if role == Qt.ItemDataRole.ToolTipRole:
            if job.error is not None:
                return plain_tooltip(job.error.message)
            return plain_tooltip(job.status or job.state.value)
        return None


class ProgressDelegate(QStyledItemDelegate):
    """A progress bar; busy (no known fraction) while a running job reports none."""

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: Index) -> None:
        job: Job | None = index.data(JOB_ROLE)
        if job is None:
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum = 0
        bar.maximum = 100
        bar.textVisible = True
        if job.state is JobState.RUNNING and job.progress is None:
            bar.maximum = 0  # Qt draws an indeterminate bar
            bar.text = ""
        else:
            fraction = 1.0 if job.state is JobState.DONE else (job.progress or 0.0)
            bar.progress = int(fraction * 100)
            bar.text = f"{bar.progress} %"
        bar.state = option.state
        QApplication.style().drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class JobLogDialog(QDialog):
    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setWindowTitle(f"Log: {job.title}")
        self.resize(640, 360)
        self.text = QPlainTextEdit(objectName="jobLog", readOnly=True)
        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        fixed.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(fixed)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self._refresh()
        self._relay = relay(job.changed, lambda _job: self._refresh(), self)

    def _refresh(self) -> None:
        self.text.setPlainText(self.job.log_text())
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def done(self, result: int) -> None:
        self._relay.detach()
        super().done(result)


class JobsPanel(QWidget):
    job_failed = Signal(object)
    active_count_changed = Signal(int)

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = JobsModel(runner, self)
        self.view = QTreeView(objectName="jobsView")
        self.view.setModel(self.model)
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setItemDelegateForColumn(JobColumn.PROGRESS, ProgressDelegate(self.view))
        header = self.view.header()
        header.setSectionResizeMode(JobColumn.TASK, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(JobColumn.HOST, 160)
        header.resizeSection(JobColumn.STATUS, 260)
        header.setStretchLastSection(False)
        header.resizeSection(JobColumn.PROGRESS, 140)

        self.cancel_button = QPushButton("Cancel", objectName="cancelJobButton")
        self.log_button = QPushButton("Show Log", objectName="showLogButton")
        self.clear_button = QPushButton("Clear Finished", objectName="clearJobsButton")
        buttons = QVBoxLayout()
        for b in (self.cancel_button, self.log_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)

        self.cancel_button.clicked.connect(self._cancel)
        self.log_button.clicked.connect(self.open_log)
        self.clear_button.clicked.connect(self.model.clear_finished)
        self.view.doubleClicked.connect(lambda _index: self.open_log())
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self.model.rowsInserted.connect(self._on_rows_inserted)
        self.model.job_finished.connect(self._on_finished)
        self._update_buttons()

    def selected_job(self) -> Job | None:
        rows = self.view.selectionModel().selectedRows()
        return self.model.job_at(rows[0].row()) if rows else None

    def _on_rows_inserted(self, *_: object) -> None:
        self.view.setCurrentIndex(self.model.index(0, 0))
        self.active_count_changed.emit(self.model.active_count())

    def _on_finished(self, job: Job) -> None:
        self.active_count_changed.emit(self.model.active_count())
        if job.state is JobState.FAILED:
            self.job_failed.emit(job)

    def _update_buttons(self, *_: object) -> None:
        job = self.selected_job()
        self.cancel_button.setEnabled(job is not None and job.cancellable
                                      and not job.state.finished and not job.cancel_requested)
        self.log_button.setEnabled(job is not None)

    def _cancel(self) -> None:
        job = self.selected_job()
        if job is not None:
            job.cancel()
        self._update_buttons()

    def open_log(self) -> JobLogDialog | None:
        job = self.selected_job()
        if job is None:
            return None
        dialog = JobLogDialog(job, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog
