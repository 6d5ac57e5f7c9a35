"""Thin pools of the selected LVM pool: data and metadata use, a warning, autoextend.

LVM is read on a short-lived thread (lvs can take a moment and needs root);
results come back through a relay.  Autoextend changes run as a job through
the privileged helper.
"""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from virtstudio.core.entities import StoragePool
from virtstudio.core.errors import VirtStudioError, describe
from virtstudio.core.jobs import Job, JobRunner
from virtstudio.core.signal import Signal as CoreSignal
from virtstudio.core.units import format_bytes
from virtstudio.privileged.client import run_privileged
from virtstudio.storage import lvm
from virtstudio.storage.lvm import ThinVolume
from virtstudio.storage.sizes import parse_size
from virtstudio.storage.thin import Autoextend, ThinUsage, read_autoextend, thin_usage
from virtstudio.ui.bridge import relay
from virtstudio.ui.host_devices_view import DEVICE_MIME, device_mime_data
from virtstudio.ui.plain_text import html, plain_label

REREAD_MS = 15000


def volume_group_of(pool: StoragePool) -> str:
    if pool.pool_type != "logical":
        return ""
    return ET.fromstring(pool.xml).findtext("source/name", "") or \
        pool.target_path.rstrip("/").rsplit("/", 1)[-1]


class ThinVolumeList(QListWidget):
    """Thin volumes whose drags carry their /dev path, for dropping onto a machine."""

    def mimeData(self, items: list[QListWidgetItem]) -> QMimeData:
        return device_mime_data([item.data(Qt.ItemDataRole.UserRole) for item in items])

    def mimeTypes(self) -> list[str]:
        return [DEVICE_MIME]


class ThinPanel(QWidget):
    """Shown for logical pools; says how full each thin pool is and how it grows."""

    updated = Signal()

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("thinPanel")
        self.runner = runner
        self.vg = ""
        self.usage: list[ThinUsage] = []
        self.autoextend: dict[str, Autoextend] = {}
        self.usage_label = QLabel(objectName="thinUsage", wordWrap=True)
        self.warning = plain_label(objectName="thinWarning", wordWrap=True)
        self.warning.setStyleSheet("color: #b3261e; font-weight: bold;")
        self.warn_at = QSpinBox(objectName="thinWarnAt", minimum=1, maximum=100, value=80,
                                suffix=" %")
        self.warn_at.valueChanged.connect(self._show_warning)
        self.grow_at = QSpinBox(objectName="thinGrowAt", minimum=50, maximum=100, value=80,
                                suffix=" %")
        self.grow_by = QSpinBox(objectName="thinGrowBy", minimum=0, maximum=100, value=20,
                                suffix=" %")
        self.apply_button = QPushButton("Set autoextend", objectName="thinApply")
        self.apply_button.clicked.connect(self.apply_autoextend)
        self.autoextend_label = plain_label(objectName="thinAutoextend", wordWrap=True)
        self.volumes: list[ThinVolume] = []
        self.volume_list = ThinVolumeList(objectName="thinVolumes")
        self.volume_list.setDragEnabled(True)
        self.volume_list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.volume_list.setMaximumHeight(90)
        self.volume_list.hide()
        self.new_name = QLineEdit(objectName="thinVolumeName", placeholderText="vm-disk1")
        self.new_size = QLineEdit(objectName="thinVolumeSize", placeholderText="100G")
        self.new_button = QPushButton("New Thin Volume", objectName="thinVolumeCreate")
        self.new_button.clicked.connect(self.create_volume)
        self.new_error = plain_label(objectName="thinVolumeError", wordWrap=True)
        self.new_error.setStyleSheet("color: #b3261e;")
        self.new_name.setMaximumWidth(220)
        self.new_size.setMaximumWidth(110)
        for spin in (self.warn_at, self.grow_at, self.grow_by):
            spin.setFixedWidth(80)
        new_row = QHBoxLayout()
        new_row.addWidget(QLabel("New thin volume:"))
        new_row.addWidget(self.new_name)
        new_row.addWidget(self.new_size)
        new_row.addWidget(self.new_button)
        new_row.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Warn at"))
        row.addWidget(self.warn_at)
        row.addSpacing(16)
        row.addWidget(QLabel("Grow by itself at (100 = never)"))
        row.addWidget(self.grow_at)
        row.addWidget(QLabel("by"))
        row.addWidget(self.grow_by)
        row.addWidget(self.apply_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        layout.setSpacing(2)
        layout.addWidget(self.usage_label)
        layout.addWidget(self.volume_list)
        layout.addWidget(self.warning)
        layout.addLayout(row)
        layout.addWidget(self.autoextend_label)
        layout.addLayout(new_row)
        layout.addWidget(self.new_error)
        self._reads_started = 0
        self._reads_shown = 0
        self._read = CoreSignal("thin pools read")
        relay(self._read, self._show, self)
        self._timer = QTimer(self, interval=REREAD_MS)
        self._timer.timeout.connect(self.reread)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.hide()

    def show_pool(self, pool: StoragePool | None) -> None:
        vg = volume_group_of(pool) if pool is not None and pool.active else ""
        self.setVisible(bool(vg))
        if vg != self.vg:
            self.usage, self.autoextend = [], {}
            self.usage_label.setText("Reading the thin pools…" if vg else "")
            self.warning.clear()
        self.vg = vg
        if vg:
            self.reread()
            self._timer.start()
        else:
            self._timer.stop()

    def reread(self) -> None:
        vg = self.vg
        self._reads_started += 1
        seq = self._reads_started

        def read() -> None:
            try:
                usage = thin_usage(vg)
                settings = {u.pool: read_autoextend(vg, u.pool) for u in usage}
                self._read.emit(seq, vg, usage, settings, lvm.thin_volumes(vg), "")
            except Exception as exc:
                message = describe(exc).message
                if os.geteuid() != 0:  # LVM's tools report only to root
                    message = f"this needs administrator rights ({message})"
                self._read.emit(seq, vg, [], {}, [], message)

        threading.Thread(target=read, name="thin pools", daemon=True).start()

    def _show(self, seq: int, vg: str, usage: list[ThinUsage], settings: dict[str, Autoextend],
              volumes: list[ThinVolume], error: str) -> None:
        # Reads run on their own threads and may finish out of order: never show an older one.
        if vg != self.vg or seq < self._reads_shown:
            return
        self._reads_shown = seq
        self.usage, self.autoextend, self.volumes = usage, settings, volumes
        if error:
            self.usage_label.setText(f"The thin pools of {vg} could not be read: {error}")
        elif not usage:
            self.usage_label.setText(f"{vg} has no thin pool.")
        else:
            self.usage_label.setText("<br>".join(
                f"<b>{html(u.vg)}/{html(u.pool)}</b> ({format_bytes(u.size)}): "
                f"data {u.data_percent:.1f} %, "
                f"metadata {u.metadata_percent:.1f} %" for u in usage) + "<br>" + (
                "Thin volumes (block devices, which libvirt's logical pool does not list; "
                "drag one onto a machine to attach it):" if volumes
                else "No thin volumes yet."))
            self.autoextend_label.setText(" ".join(
                f"{pool}: {s.describe()}" for pool, s in settings.items()))
        self.volume_list.clear()
        for volume in volumes:
            item = QListWidgetItem(f"{volume.path} ({format_bytes(volume.size)} promised, "
                                   f"{volume.data_percent:.1f} % written)")
            item.setData(Qt.ItemDataRole.UserRole, volume.path)
            self.volume_list.addItem(item)
        self.volume_list.setVisible(bool(volumes))
        self._show_warning()
        self.updated.emit()

    def _show_warning(self, *_: object) -> None:
        self.warning.setText("\n".join(w for u in self.usage
                                       if (w := u.warning(self.warn_at.value()))))
        self.warning.setVisible(bool(self.warning.text()))

    def create_volume(self) -> Job | None:
        """A thin volume of any virtual size in the first thin pool, checked first."""
        self.new_error.clear()
        name, size_text = self.new_name.text().strip(), self.new_size.text().strip()
        try:
            if not self.usage:
                raise VirtStudioError(f"{self.vg} has no thin pool to put the volume in.")
            pool = self.usage[0]
            lvm.validate_name(name, "thin volume")
            if any(v.name == name for v in self.volumes):
                raise VirtStudioError(f"{self.vg} has a volume called {name} already.")
            size = parse_size(size_text)
            if pool.data_percent >= 100.0 or pool.metadata_percent >= 100.0:
                raise VirtStudioError(f"The thin pool {pool.pool} is full: grow it before "
                                      "adding volumes. Nothing was created.")
        except VirtStudioError as exc:
            self.new_error.setText(exc.message)
            return None
        vg = self.vg

        def work(job: Job) -> None:
            job.report(None, f"Creating thin volume {vg}/{name} ({format_bytes(size)} promised)")
            run_privileged("create_thin_volume", vg=vg, pool=pool.pool, name=name, size=size)

        job = self.runner.submit(f"New thin volume {name}", work, host="This computer",
                                 target=name)
        relay(job.changed, self._read_after, self)
        self.new_name.clear()
        return job

    def apply_autoextend(self) -> Job | None:
        if not self.usage:
            return None
        vg, threshold, percent = self.vg, self.grow_at.value(), self.grow_by.value()
        pools = [u.pool for u in self.usage]

        def work(job: Job) -> None:
            for pool in pools:
                job.report(None, str(run_privileged("set_thin_autoextend", vg=vg, pool=pool,
                                                    threshold=threshold, percent=percent)))

        job = self.runner.submit(f"Autoextend for {vg}", work, host="This computer", target=vg)
        relay(job.changed, self._read_after, self)
        return job

    def _read_after(self, job: Job) -> None:
        if job.state.finished:
            self.reread()
