"""Fields in which the user types a name before a button may act on what it names.

Two consents take this form: letting something read a backing file outside every
storage pool (one field per file, its base name typed) and erasing a device that
carries something (its device name, typed exactly).  The dialog keeps its button off
until ``confirmed`` says so; ``changed`` tells it to look again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QVBoxLayout, QWidget

from virtstudio.storage.backing_chains import confirmed_by_name


def _exactly(typed: str, wanted: str) -> bool:
    return typed == wanted != ""


class TypedNameField(QWidget):
    """A prompt and a line edit in which ``wanted`` must be typed; hidden while nothing
    is wanted."""

    changed = Signal()

    def __init__(self, object_name: str, *, label_name: str = "",
                 matches: Callable[[str, str], bool] = _exactly,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.wanted = ""
        self._matches = matches
        self.label = QLabel(objectName=label_name, wordWrap=True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # file and device names as they are
        self.edit = QLineEdit(objectName=object_name)
        self.edit.textChanged.connect(lambda _text: self.changed.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.edit)

    def ask(self, wanted: str, prompt: str, placeholder: str = "") -> None:
        self.wanted = wanted
        self.label.setText(prompt)
        self.edit.setPlaceholderText(placeholder)
        self.setHidden(not wanted)

    def confirmed(self) -> bool:
        return bool(self.wanted) and self._matches(self.edit.text(), self.wanted)


class BackingFileConfirm(QWidget):
    """One field per backing file outside every storage pool, named
    ``<prefix>ConfirmName<i>``; typing a file's name lets ``reader`` read it."""

    changed = Signal()

    def __init__(self, prefix: str, reader: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._prefix, self._reader = prefix, reader
        self.fields: dict[str, TypedNameField] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    @property
    def edits(self) -> dict[str, QLineEdit]:
        return {path: field.edit for path, field in self.fields.items()}

    def show_paths(self, paths: Iterable[str]) -> None:
        """Fields for ``paths``; those shown already keep what was typed in them."""
        paths = tuple(dict.fromkeys(paths))
        if tuple(self.fields) == paths:
            return
        for field in self.fields.values():
            self._layout.removeWidget(field)
            field.setParent(None)  # gone from findChild at once, not at the next event
            field.deleteLater()
        self.fields = {}
        for i, path in enumerate(paths):
            field = TypedNameField(f"{self._prefix}ConfirmName{i}", matches=confirmed_by_name,
                                   parent=self)
            field.ask(path, f"{path} is outside every storage pool. Type its name to let the "
                            f"{self._reader} read it:",
                      f"type {Path(path).name} to read it")
            field.changed.connect(self.changed)
            self._layout.addWidget(field)
            self.fields[path] = field

    def confirmed(self) -> set[str]:
        """The files whose names the user typed."""
        return {path for path, field in self.fields.items() if field.confirmed()}
