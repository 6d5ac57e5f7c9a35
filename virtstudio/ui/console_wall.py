"""The console wall: live thumbnails of every running machine's screen; click to open one."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QSizePolicy, QWidget

from virtstudio.console.session import ConsoleSession
from virtstudio.core.connection import HostConnection
from virtstudio.core.entities import Domain
from virtstudio.ui.console_controller import console_problem, console_session
from virtstudio.ui.plain_text import plain_tooltip

MAX_TILES = 16
REPAINT_MS = 500  # thumbnails need not follow every update


class ConsoleTile(QWidget):
    clicked = Signal(object)  # the Domain

    def __init__(self, host: HostConnection, domain: Domain,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.domain = domain
        self.setObjectName(f"tile-{domain.name}")
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(plain_tooltip(f"{domain.name}: click to open its console"))
        self.problem = console_problem(host, domain)
        self.session: ConsoleSession | None = None
        if not self.problem:
            self.session = console_session(host, domain)
            self.session.start()

    def image(self) -> QImage | None:
        fb = self.session.framebuffer if self.session is not None else None
        if fb is None or self.session is None or self.session.state != "connected":
            return None
        return QImage(bytes(fb.data), fb.width, fb.height, fb.stride,
                      QImage.Format.Format_RGB32).copy()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202020"))
        caption = QRect(0, self.height() - 22, self.width(), 22)
        screen = self.rect().adjusted(4, 4, -4, -26)
        image = self.image()
        if image is not None and not image.isNull():
            scaled = image.size().scaled(screen.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(screen.center())
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, image)
        else:
            p.setPen(QColor("#bbbbbb"))
            text = self.problem or ("Connecting…" if self.session is not None else "")
            p.drawText(screen, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), text)
        p.fillRect(caption, QColor("#303030"))
        p.setPen(QColor("white"))
        p.drawText(caption.adjusted(8, 0, -8, 0),
                   int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                   f"{self.domain.name} — {self.domain.state.label}")
        p.end()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.domain)

    def close_session(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.stop()


class ConsoleWall(QScrollArea):
    open_requested = Signal(object, object)  # host, domain

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("consoleWall")
        self.setWidgetResizable(True)
        self.tiles: list[ConsoleTile] = []
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self.setWidget(self._grid_host)
        self._timer = QTimer(self)
        self._timer.setInterval(REPAINT_MS)
        self._timer.timeout.connect(lambda: [t.update() for t in self.tiles])

    def show_domains(self, host: HostConnection, domains: list[Domain]) -> None:
        """Tiles for the running ``domains`` (at most MAX_TILES); connections open now."""
        self.clear()
        running = sorted((d for d in domains if d.state.is_active), key=lambda d: d.name)
        if not running:
            label = QLabel("No machine is running on this host.", objectName="wallEmpty")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(label, 0, 0)
            return
        columns = 4 if len(running) > 9 else 3 if len(running) > 4 else 2
        for i, domain in enumerate(running[:MAX_TILES]):
            tile = ConsoleTile(host, domain)
            tile.clicked.connect(lambda d, h=host: self.open_requested.emit(h, d))
            self._grid.addWidget(tile, i // columns, i % columns)
            self.tiles.append(tile)
        if len(running) > MAX_TILES:
            more = QLabel(f"{len(running) - MAX_TILES} more running machines are not shown.")
            self._grid.addWidget(more, MAX_TILES // columns + 1, 0, 1, columns)
        self._timer.start()

    def clear(self) -> None:
        self._timer.stop()
        for tile in self.tiles:
            tile.close_session()
        self.tiles = []
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
