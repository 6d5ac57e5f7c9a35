"""Add Connection: pick a kind of host, fill in where it is, see the URI, connect."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core import uri as uri_mod
from virtstudio.core.errors import VirtStudioError
from virtstudio.ui.plain_text import plain_label
from virtstudio.ui.uri_confirm import confirm_uri


class AddConnectionDialog(QDialog):
    def __init__(self, existing_uris: Iterable[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add Connection")
        self.setMinimumWidth(480)
        self._existing = set(existing_uris)
        self._uri = ""
        self.question: QMessageBox | None = None  # open while a risky URI is asked about

        self.preset_combo = QComboBox(objectName="presetCombo")
        for preset in uri_mod.PRESETS:
            self.preset_combo.addItem(preset.label, preset.key)
        self.user_edit = QLineEdit(objectName="userEdit", placeholderText="root")
        self.host_edit = QLineEdit(objectName="hostEdit", placeholderText="kvm1.example.com")
        self.uri_edit = QLineEdit(objectName="uriEdit",
                                  placeholderText="e.g. qemu+tls://host/system")
        self.preview = plain_label(objectName="uriPreview")
        self.preview.setStyleSheet("font-family: monospace;")
        self.autoconnect_check = QCheckBox("Connect automatically when VirtStudio starts",
                                           objectName="autoconnectCheck")
        self.autoconnect_check.setChecked(True)
        self.error_label = plain_label(objectName="errorLabel", wordWrap=True)
        self.error_label.setStyleSheet("color: #b3261e;")

        self.form = QFormLayout()
        self.form.addRow("Hypervisor:", self.preset_combo)
        self.form.addRow("User name:", self.user_edit)
        self.form.addRow("Host:", self.host_edit)
        self.form.addRow("URI:", self.uri_edit)
        self.form.addRow("Will connect to:", self.preview)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Connect")
        self.ok_button.setObjectName("connectButton")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.autoconnect_check)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        for edit in (self.user_edit, self.host_edit, self.uri_edit):
            edit.textChanged.connect(self._validate)
        self._preset_changed()

    def _preset(self) -> uri_mod.Preset:
        key = self.preset_combo.currentData()
        return next(p for p in uri_mod.PRESETS if p.key == key)

    def _preset_changed(self, *_: object) -> None:
        preset = self._preset()
        custom = preset.key == "custom"
        for widget, visible in ((self.user_edit, preset.needs_host),
                                (self.host_edit, preset.needs_host),
                                (self.uri_edit, custom),
                                (self.preview, not custom)):
            self.form.setRowVisible(widget, visible)
        self._validate()
        (self.host_edit if preset.needs_host else self.uri_edit if custom
         else self.preset_combo).setFocus()

    def _validate(self, *_: object) -> None:
        preset = self._preset()
        error = ""
        uri = ""
        try:
            if preset.key == "custom":
                uri = self.uri_edit.text().strip()
            else:
                uri = uri_mod.preset_uri(preset, self.user_edit.text(), self.host_edit.text())
            uri_mod.parse(uri)
        except VirtStudioError as exc:
            error = exc.message
            if preset.needs_host and not self.host_edit.text().strip():
                error = "Enter the host to connect to."
        if not error and uri in self._existing:
            error = f"Already connected to {uri}."
        self._uri = "" if error else uri
        self.preview.setText(uri or "—")
        self.error_label.setText(error)
        self.ok_button.setEnabled(not error)

    def uri(self) -> str:
        return self._uri

    def autoconnect(self) -> bool:
        return self.autoconnect_check.isChecked()

    def accept(self) -> None:
        """Close with the URI; one that runs a program or names a key is confirmed first."""
        if not self._uri:
            return
        uri = self._uri
        self.question = confirm_uri(self, uri, "you entered",
                                    lambda: super(AddConnectionDialog, self).accept()
                                    if self._uri == uri else None)
