"""The topology view: interfaces, networks, machines and sandboxes as a live graph.

The graph comes from ``virtstudio.network.topology`` and is rebuilt (coalesced)
whenever netlink, a host or the sandbox manager reports a change; items that
stay keep their place.  Dragging a machine onto a bridge or a virtual network
asks to connect it there.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPen, QShowEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from virtstudio.core.inventory import Inventory
from virtstudio.network.host_links import HostNetwork
from virtstudio.network.topology import COLUMN_TITLES, COLUMNS, Graph, Node, build_graph, layout
from virtstudio.ui.bridge import relay
from virtstudio.ui.plain_text import plain_tooltip

NODE_W, NODE_H = 170, 40
COLUMN_GAP, ROW_GAP = 220, 58
TITLE_GAP = 30  # the column headings sit this far above the first row
_COLORS = {"vm": "#dbe9ff", "sandbox": "#e8dcff", "network": "#d7f5e3", "bridge": "#ffe9c7",
           "vlan": "#ffd9d9", "virtual": "#eeeeee", "nic": "#d9eef5"}
DROP_TARGETS = ("network", "bridge")


class NodeItem(QGraphicsRectItem):
    def __init__(self, node: Node, view: TopologyView) -> None:
        super().__init__(0, 0, NODE_W, NODE_H)
        self.node = node
        self.view = view
        self.home = QPointF()
        self.edges: list[EdgeItem] = []
        self.setBrush(QBrush(QColor(_COLORS.get(node.kind, "#ffffff"))))
        self.setPen(QPen(QColor("#666666")))
        self.setZValue(1)
        self.text = QGraphicsSimpleTextItem(self)
        self.set_node(node)
        flags = QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
        if node.kind == "vm":
            flags |= (QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setFlags(flags)

    def set_node(self, node: Node) -> None:
        self.node = node
        # Long names are cut to the box with an ellipsis; the tooltip has them whole.
        metrics = QFontMetricsF(self.text.font())
        self.text.setText("\n".join(
            metrics.elidedText(line, Qt.TextElideMode.ElideRight, NODE_W - 12)
            for line in node.label.splitlines()))
        hint = "\n\nDrag onto a bridge or a virtual network to connect it there"
        self.setToolTip(plain_tooltip(*(node.label + (hint if node.kind == "vm" else ""))
                                        .splitlines()))
        box = self.text.boundingRect()
        self.text.setPos((NODE_W - box.width()) / 2, (NODE_H - box.height()) / 2)

    def center(self) -> QPointF:
        return self.scenePos() + QPointF(NODE_W / 2, NODE_H / 2)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.follow()
        return super().itemChange(change, value)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        if self.node.kind != "vm" or self.pos() == self.home:
            return
        target = self.view.target_at(self.center(), exclude=self)
        self.setPos(self.home)  # the graph, not the drag, decides where it is drawn
        if target is not None:
            self.view.connect_requested.emit(self.node, target.node)


class EdgeItem(QGraphicsLineItem):
    def __init__(self, a: NodeItem, b: NodeItem, label: str) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.setPen(QPen(QColor("#888888"), 1.5))
        self.setZValue(0)
        self.setToolTip(plain_tooltip(label))
        # VLANs are worth seeing at a glance; tap names only on hovering.
        self.caption = QGraphicsSimpleTextItem("VLAN " + label.split("VLAN ")[1]
                                               if "VLAN " in label else "", self)
        a.edges.append(self)
        b.edges.append(self)
        self.follow()

    def follow(self) -> None:
        a, b = self.a.center(), self.b.center()
        # Lines leave and enter at the sides facing each other, so a fan of
        # machines on one network never runs underneath the machines' boxes.
        if abs(a.x() - b.x()) > NODE_W:
            side = QPointF(NODE_W / 2 if a.x() < b.x() else -NODE_W / 2, 0)
            a, b = a + side, b - side
        self.setLine(a.x(), a.y(), b.x(), b.y())
        self.caption.setPos((a + b) / 2)

    def detach(self) -> None:
        for end in (self.a, self.b):
            if self in end.edges:
                end.edges.remove(self)


class TopologyView(QGraphicsView):
    """``connect_requested(machine node, target node)`` when a machine is dropped on a target."""

    connect_requested = Signal(object, object)
    rebuilt = Signal()

    def __init__(self, inventory: Inventory, host_network: HostNetwork | None,
                 sandboxes: object | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("topologyView")
        self.inventory = inventory
        self.host_network = host_network
        self.sandboxes = sandboxes
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.items_by_id: dict[str, NodeItem] = {}
        self.edge_items: list[EdgeItem] = []
        self.titles: list[QGraphicsSimpleTextItem] = []
        self.graph = Graph()
        self._timer = QTimer(self, singleShot=True, interval=50)
        self._stale = False
        self._timer.timeout.connect(self.rebuild)
        if host_network is not None:
            for sig in (host_network.links_added, host_network.links_changed,
                        host_network.links_removed):
                relay(sig, self.schedule, self)
        if sandboxes is not None:
            for sig in (sandboxes.started, sandboxes.changed, sandboxes.exited):
                relay(sig, self.schedule, self)
        relay(inventory.connection_added, self._watch_host, self)
        relay(inventory.connection_removed, self.schedule, self)
        for host in list(inventory.connections):
            self._watch_host(host)
        self.rebuild()

    def _watch_host(self, host: object) -> None:
        for sig in (host.domains_added, host.domains_removed, host.domains_changed,
                    host.networks_added, host.networks_removed, host.networks_changed):
            relay(sig, self.schedule, self)
        self.schedule()

    def schedule(self, *_: object) -> None:
        """Coalesce bursts (a VM start changes a domain, a tap and a bridge at once).

        A hidden view only notes that it is stale: a host filling in thousands of
        machines must not lay out a graph nobody sees on every batch."""
        if not self.isVisible():
            self._stale = True
        elif not self._timer.isActive():
            self._timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.rebuild()

    def rebuild(self) -> None:
        links = list(self.host_network.links.values()) if self.host_network else []
        running = list(getattr(self.sandboxes, "sandboxes", []) or [])
        self.set_graph(build_graph(links, list(self.inventory.connections), running))

    def set_graph(self, graph: Graph) -> None:
        self.graph = graph
        scene = self.scene()
        for edge in self.edge_items:
            edge.detach()
            scene.removeItem(edge)
        self.edge_items = []
        for node_id in list(self.items_by_id):
            if node_id not in graph.nodes:
                scene.removeItem(self.items_by_id.pop(node_id))
        places = layout(graph)
        for node in graph.nodes.values():
            item = self.items_by_id.get(node.id)
            if item is None:
                item = NodeItem(node, self)
                scene.addItem(item)
                self.items_by_id[node.id] = item
            elif item.node != node:
                item.set_node(node)
            column, row = places[node.id]
            item.home = QPointF(column * COLUMN_GAP, row * ROW_GAP)
            if scene.mouseGrabberItem() is not item:
                item.setPos(item.home)
        self._set_titles(sorted({node.kind for node in graph.nodes.values()},
                                key=COLUMNS.index))
        for edge in graph.edges:
            a, b = self.items_by_id.get(edge.a), self.items_by_id.get(edge.b)
            if a is not None and b is not None:
                line = EdgeItem(a, b, edge.label)
                scene.addItem(line)
                self.edge_items.append(line)
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-20, -20, 20, 20))
        self.rebuilt.emit()

    def _set_titles(self, kinds: list[str]) -> None:
        """A heading over each column, so a reader knows a bridge from a network."""
        scene = self.scene()
        for title in self.titles:
            scene.removeItem(title)
        self.titles = []
        for column, kind in enumerate(kinds):
            title = QGraphicsSimpleTextItem(COLUMN_TITLES[kind])
            font = title.font()
            font.setBold(True)
            title.setFont(font)
            title.setBrush(QBrush(QColor("#444444")))
            width = title.boundingRect().width()
            title.setPos(column * COLUMN_GAP + (NODE_W - width) / 2, -TITLE_GAP)
            scene.addItem(title)
            self.titles.append(title)

    def target_at(self, point: QPointF, exclude: NodeItem | None = None) -> NodeItem | None:
        for item in self.scene().items(point):
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if item is not None and item is not exclude and item.node.kind in DROP_TARGETS:
                return item
        return None

    def node_rect(self, node_id: str) -> QRectF:
        """Where a node is drawn, in view coordinates (for tests and tooltips)."""
        item = self.items_by_id[node_id]
        return self.mapFromScene(item.sceneBoundingRect()).boundingRect().toRectF()
