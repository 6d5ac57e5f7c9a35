"""Folder and tags of the selected machine, saved in its metadata."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton

from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.core.jobs import Job, JobRunner, JobState
from virtstudio.machines.groups import Groups, check_groups, groups_of, parse_tags, save_groups
from virtstudio.ui.job_watch import when_finished
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.xml_editor import ERROR_STYLE


class GroupsEditor(QGroupBox):
    def __init__(self, runner: JobRunner | None = None) -> None:
        super().__init__("Folder and tags")
        self.runner = runner
        self.host: HostConnection | None = None
        self.domain: Domain | None = None
        self._loaded = Groups()
        self.folder_edit = QLineEdit(objectName="folderEdit", placeholderText="e.g. prod/web")
        self.tags_edit = QLineEdit(objectName="tagsEdit", placeholderText="e.g. web, db")
        self.error = plain_label(objectName="groupsError", wordWrap=True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.save_button = QPushButton("Save", objectName="groupsSaveButton")
        self.save_button.clicked.connect(self.save)
        hint = QLabel("Folders show in the sidebar under the host's machines (drag a machine "
                      "onto one to file it there); find tags with tag:web in the filter box.")
        hint.setEnabled(False)
        form = QFormLayout(self)
        form.addRow("Folder:", self.folder_edit)
        row = QHBoxLayout()
        row.addWidget(self.tags_edit, 1)
        row.addWidget(self.save_button)
        form.addRow("Tags:", row)
        form.addRow(self.error)
        form.addRow(hint)
        for edit in (self.folder_edit, self.tags_edit):
            edit.textChanged.connect(self._validate)
            edit.returnPressed.connect(self.save)
        self._validate()

    def typed(self) -> Groups:
        return Groups(self.folder_edit.text().strip(), parse_tags(self.tags_edit.text()))

    @property
    def dirty(self) -> bool:
        return self.typed() != self._loaded

    def show_domain(self, host: HostConnection | None, domain: Domain) -> None:
        same = self.domain is not None and self.domain.uuid == domain.uuid
        self.host, self.domain = host, domain
        if same and self.dirty:
            return  # keep what the user is typing
        self._loaded = groups_of(domain)
        self.folder_edit.setText(self._loaded.folder)
        self.tags_edit.setText(", ".join(self._loaded.tags))
        self._validate()

    def _validate(self, *_: object) -> None:
        problem = check_groups(self.folder_edit.text(), self.tags_edit.text())
        self.error.setText(problem)
        self.save_button.setEnabled(not problem and self.dirty and self.runner is not None
                                    and self.host is not None)

    def save(self) -> None:
        if not self.save_button.isEnabled() or self.runner is None:
            return
        assert self.host is not None and self.domain is not None
        self.save_button.setEnabled(False)
        wanted = self.typed()
        job = save_groups(self.runner, self.host, self.domain, wanted)
        when_finished(job, lambda j: self._saved(j, wanted), self)

    def _saved(self, job: Job, wanted: Groups) -> None:
        if job.state is JobState.DONE:
            self._loaded = wanted
        elif job.error is not None:
            self.error.setText(job.error.message)
        self._validate()
