"""Icons: the project's SVGs where present, else Qt's standard ones or drawn shapes."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication, QStyle

from virtstudio.core.demo import resources_dir
from virtstudio.core.entities import DomainState

_STANDARD = {
    "start": QStyle.StandardPixmap.SP_MediaPlay,
    "resume": QStyle.StandardPixmap.SP_MediaPlay,
    "pause": QStyle.StandardPixmap.SP_MediaPause,
    "shutdown": QStyle.StandardPixmap.SP_MediaStop,
    "force-off": QStyle.StandardPixmap.SP_BrowserStop,
    "reboot": QStyle.StandardPixmap.SP_BrowserReload,
    "delete": QStyle.StandardPixmap.SP_TrashIcon,
    "add-connection": QStyle.StandardPixmap.SP_FileDialogNewFolder,
    "host": QStyle.StandardPixmap.SP_ComputerIcon,
    "host-disconnected": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "vm": QStyle.StandardPixmap.SP_DesktopIcon,
    "storage": QStyle.StandardPixmap.SP_DriveHDIcon,
    "network": QStyle.StandardPixmap.SP_DriveNetIcon,
    "sandbox": QStyle.StandardPixmap.SP_DirClosedIcon,
    "folder": QStyle.StandardPixmap.SP_DirIcon,
    "console": QStyle.StandardPixmap.SP_DesktopIcon,
}

_STATE_FILES = {
    DomainState.RUNNING: ("running", "#2e9d48"),
    DomainState.BLOCKED: ("running", "#2e9d48"),
    DomainState.PAUSED: ("paused", "#d69a00"),
    DomainState.SHUTDOWN: ("shutoff", "#8a8a8a"),
    DomainState.SHUTOFF: ("shutoff", "#8a8a8a"),
    DomainState.CRASHED: ("crashed", "#c8372d"),
    DomainState.PMSUSPENDED: ("suspended", "#3a76c4"),
    DomainState.NOSTATE: ("unknown", "#8a8a8a"),
}


def _svg(folder: str, name: str) -> QIcon | None:
    path = resources_dir() / "icons" / folder / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else None


@cache
def icon(name: str) -> QIcon:
    found = _svg("actions", name)
    if found is not None:
        return found
    style = QApplication.style()
    if name in _STANDARD and style is not None:
        return style.standardIcon(_STANDARD[name])
    return QIcon()


def _drawn_state(kind: str, color: str) -> QIcon:
    pix = QPixmap(32, 32)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(color))
    p.drawEllipse(QRectF(2, 2, 28, 28))
    p.setBrush(QColor("white"))
    if kind == "running":
        p.drawPolygon(QPolygonF([QPointF(12, 9), QPointF(24, 16), QPointF(12, 23)]))
    elif kind == "paused":
        p.drawRect(QRectF(10, 9, 4, 14))
        p.drawRect(QRectF(18, 9, 4, 14))
    elif kind == "shutoff":
        p.drawRect(QRectF(10, 10, 12, 12))
    elif kind == "crashed":
        p.drawRect(QRectF(14, 7, 4, 12))
        p.drawRect(QRectF(14, 21, 4, 4))
    elif kind == "suspended":
        p.drawEllipse(QRectF(9, 9, 14, 14))
        p.setBrush(QColor(color))
        p.drawEllipse(QRectF(13, 7, 12, 12))
    else:
        p.drawEllipse(QRectF(13, 13, 6, 6))
    p.end()
    return QIcon(pix)


@cache
def state_icon(state: DomainState) -> QIcon:
    kind, color = _STATE_FILES[state]
    return _svg("states", kind) or _drawn_state(kind, color)


@cache
def app_icon() -> QIcon:
    path = resources_dir() / "icons" / "hicolor" / "scalable" / "apps" / "virtstudio.svg"
    return QIcon(str(path)) if path.is_file() else icon("vm")
