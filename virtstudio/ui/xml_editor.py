"""The XML tab: the machine's XML, editable, with checks and a diff before anything applies.

The text replaces the whole saved configuration, so Apply first reads it
again: when someone changed it since the tab loaded it, the user sees what
changed and chooses between their text and a reload; nothing is defined
silently over another party's change.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.machines.concurrent_edit import review
from virtstudio.machines.xml_edit import (
    CHANGED_AGAIN,
    check_xml_edit,
    define_edited_xml,
    read_inactive_xml,
    xml_diff,
)
from virtstudio.ui.confirm import confirm_box
from virtstudio.ui.job_watch import when_done, when_finished
from virtstudio.ui.plain_text import plain_label

ERROR_STYLE = "color: #b3261e;"


def monospace_edit(name: str) -> QPlainTextEdit:
    edit = QPlainTextEdit(objectName=name)
    edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    fixed.setStyleHint(QFont.StyleHint.Monospace)
    edit.setFont(fixed)
    return edit


class XmlEditor(QWidget):
    """Shows the live XML; Edit loads the saved configuration for changing it."""

    def __init__(self, runner: JobRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.host: HostConnection | None = None
        self.domain: Domain | None = None
        self.original: str | None = None  # the saved XML being edited; None when viewing
        self.question: QMessageBox | None = None

        self.text = monospace_edit("xmlView")
        self.text.setReadOnly(True)
        self.diff_view = monospace_edit("xmlDiff")
        self.diff_view.setReadOnly(True)
        self.diff_view.setPlaceholderText("What will change shows here as you edit.")
        self.diff_view.hide()
        self.status = plain_label(objectName="xmlStatus", wordWrap=True)
        self.error = plain_label(objectName="xmlError", wordWrap=True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.edit_button = QPushButton("Edit", objectName="xmlEditButton")
        self.apply_button = QPushButton("Apply", objectName="xmlApplyButton")
        self.cancel_button = QPushButton("Cancel", objectName="xmlCancelButton")
        self.edit_button.clicked.connect(self.start_editing)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.stop_editing)
        self.text.textChanged.connect(self._validate)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.text)
        split.addWidget(self.diff_view)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for button in (self.edit_button, self.cancel_button, self.apply_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split, 1)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self._show_buttons()

    @property
    def editing(self) -> bool:
        return self.original is not None

    def show_domain(self, host: HostConnection | None, domain: Domain) -> None:
        same = self.domain is not None and self.domain.uuid == domain.uuid
        if not same:
            self.stop_editing()
        self.host, self.domain = host, domain
        if not self.editing and self.text.toPlainText() != domain.xml:
            scroll = self.text.verticalScrollBar().value()
            self.text.setPlainText(domain.xml)
            self.text.verticalScrollBar().setValue(scroll)
        self._show_buttons()

    def _show_buttons(self) -> None:
        can_edit = (self.host is not None and self.runner is not None
                    and self.domain is not None and self.domain.persistent)
        self.edit_button.setVisible(not self.editing)
        self.edit_button.setEnabled(can_edit)
        self.cancel_button.setVisible(self.editing)
        self.apply_button.setVisible(self.editing)
        self.diff_view.setVisible(self.editing)

    def start_editing(self) -> None:
        host, domain = self.host, self.domain
        if host is None or domain is None or self.editing:
            return
        self.edit_button.setEnabled(False)
        self.status.setText("Reading the saved configuration…")
        uuid = domain.uuid
        future = host.call(read_inactive_xml, uuid)
        when_done(future, lambda f: self._loaded(uuid, f), self)

    def _loaded(self, uuid: str, future: Future[Any]) -> None:
        if self.domain is None or self.domain.uuid != uuid:
            return
        exc = future.exception()
        if exc is not None:
            self.status.clear()
            self.error.setText(f"The configuration could not be read: {describe(exc).message}")
            self._show_buttons()
            return
        xml = future.result()
        self.original = xml
        self.text.setReadOnly(False)
        self.text.setPlainText(xml)
        running = self.domain.state.is_active
        self.status.setText("Editing the saved configuration"
                            + (": changes apply at next boot." if running else "."))
        self._show_buttons()
        self._validate()

    def stop_editing(self) -> None:
        self._drop_question()
        self.original = None
        self.text.setReadOnly(True)
        self.error.clear()
        self.diff_view.clear()
        if self.domain is not None:
            self.text.setPlainText(self.domain.xml)
        self._show_buttons()

    def _validate(self) -> None:
        if self.original is None:
            return
        edited = self.text.toPlainText()
        problem = check_xml_edit(self.original, edited)
        diff = "" if problem else xml_diff(self.original, edited)
        self.error.setText(problem)
        self.diff_view.setPlainText(diff if diff or problem else "No changes yet.")
        self.apply_button.setEnabled(not problem and bool(diff))

    def apply(self) -> None:
        """Read the saved XML again; define the text only if nobody changed it meanwhile."""
        if self.original is None or self.host is None or self.domain is None:
            return
        if self.runner is None or not self.apply_button.isEnabled():
            return
        uuid = self.domain.uuid
        self.apply_button.setEnabled(False)
        self.status.setText("Checking the saved configuration…")
        future = self.host.call(read_inactive_xml, uuid)
        when_done(future, lambda f: self._checked(uuid, f), self)

    def _checked(self, uuid: str, future: Future[Any]) -> None:
        if self.original is None or self.domain is None or self.domain.uuid != uuid:
            return
        exc = future.exception()
        if exc is not None:
            self.status.setText("Nothing was changed.")
            self.error.setText(f"The configuration could not be read: {describe(exc).message}")
            self._validate()
            return
        current = future.result()
        found = review(self.original, current)
        if not found.changed:
            self._define(uuid, current)
            return
        self._validate()
        self.status.setText("The saved configuration changed meanwhile: nothing saved yet.")
        self._drop_question()
        self.question = confirm_box(
            self, f"{self.domain.name} changed meanwhile",
            f"{found.text(self.domain.name)}\n\nYour text replaces the whole configuration: "
            "applying it discards those changes. Reload shows the configuration as it is "
            "now, in place of your text.",
            "Apply my text anyway (discards theirs)", lambda: self._define(uuid, current),
            name="changedMeanwhileBox",
            other=("Reload", "reloadButton", lambda: self._reload(uuid, current)))

    def _drop_question(self) -> None:
        """Close an older question: its answer would apply to a configuration now stale."""
        if self.question is not None:
            self.question.close()
            self.question.deleteLater()
            self.question = None

    def _define(self, uuid: str, saved: str) -> None:
        """Define the text, provided the saved XML is still ``saved`` when the job runs."""
        if self.original is None or self.host is None or self.domain is None:
            return
        if self.runner is None or self.domain.uuid != uuid:
            return
        try:
            job = define_edited_xml(self.runner, self.host, uuid, self.original,
                                    self.text.toPlainText(), saved=saved)
        except VirtStudioError as exc:
            self.error.setText(exc.message)
            return
        self.apply_button.setEnabled(False)
        self.status.setText("Saving…")
        when_finished(job, self._applied, self)

    def _reload(self, uuid: str, current: str) -> None:
        """Start over from the saved XML as it is now (the user's text is dropped)."""
        if self.original is None or self.domain is None or self.domain.uuid != uuid:
            return
        self.original = current
        self.text.setPlainText(current)
        self.status.setText("Reloaded the saved configuration; your text was discarded.")
        self._validate()

    def _applied(self, job: Job) -> None:
        if job.state is JobState.DONE:
            running = self.domain is not None and self.domain.state.is_active
            self.stop_editing()
            self.status.setText("Saved. The running machine keeps its old configuration "
                                "until its next boot." if running else "Saved.")
        else:
            message = job.error.message if job.error is not None else job.state.value
            self.status.setText("Nothing was changed.")
            if job.error is not None and job.error.detail == CHANGED_AGAIN:
                self.error.setText(message)
                self._validate()  # Apply again shows what changed this time
                return
            self.error.setText(f"libvirt refused the XML: {message}")
            # Apply stays off until the text changes: the same XML would fail again.
