"""The page view of the page dialog: a page image with its glyph boxes, edited by hand.

The boxes live in a Qt-free :class:`nomgui.pages.BoxEdit` (reading order, merge, split,
undo/redo); this widget only draws them and turns mouse and keys into its edits.

Mouse: drag on the paper adds a box; a press inside a box selects it (Ctrl+click adds or
removes it from the selection) and dragging moves it (all selected boxes when several are);
dragging a box's edge or corner resizes it; Shift+drag draws a band that selects the boxes
whose centres it holds. Ctrl+wheel zooms; the middle button, or Space held with the left
button, pans; the wheel and the scroll bars scroll.

Keys: + / - zoom, 0 fits the page; Tab / Shift+Tab and the arrows go to the next / previous
box in reading order (the arrows follow the page: for columns read right to left, Down and
Left go on); Delete removes the selected boxes; M merges them into one; S splits the
selected box at its lightest ink gap across its longer side (Shift+S across the shorter);
Ctrl+A selects all; Ctrl+Z undoes, Ctrl+Shift+Z / Ctrl+Y redoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from nomgui.pages import Box, BoxEdit, reading_order

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0
EDGE_PX = 5  # how near (in screen pixels) to a box's edge a press resizes it
MIN_BOX = 3  # smallest side, page pixels, of a box drawn or resized by hand

_RED, _BLUE, _ORANGE = QColor("#e74c3c"), QColor("#2471a3"), QColor("#e67e22")


class NumberTag(QGraphicsItem):
    """A box's reading-order number, the same size on screen at any zoom."""

    def __init__(self, number: int, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.NoButton)
        self.text = str(number)
        self.font = QFont()
        self.font.setPointSizeF(max(6.0, self.font.pointSizeF() * 0.8))
        m = QFontMetricsF(self.font)
        self._rect = QRectF(0, 0, m.horizontalAdvance(self.text) + 4, m.height())

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, _option, _widget=None) -> None:
        painter.fillRect(self._rect, QColor(255, 255, 255, 200))
        painter.setFont(self.font)
        painter.setPen(QColor("#1b2631"))
        painter.drawText(self._rect, Qt.AlignCenter, self.text)


class BoxItem(QGraphicsRectItem):
    """One glyph box; how it is drawn says whether it is selected and/or current."""

    def __init__(self, index: int, box: Box) -> None:
        super().__init__(QRectF(*box))
        self.index = index
        self.setAcceptedMouseButtons(Qt.NoButton)  # the view handles the mouse itself
        self.tag = NumberTag(index + 1, self)
        self.tag.setPos(QPointF(box[0], box[1]))
        self.set_state(False, False)

    def set_state(self, selected: bool, current: bool) -> None:
        self.selected, self.current = selected, current
        color = _BLUE if selected else _RED
        pen = QPen(_ORANGE if current else color, 3 if current or selected else 2)
        pen.setCosmetic(True)  # the same width on screen at any zoom
        self.setPen(pen)
        fill = QColor(color)
        fill.setAlpha(70 if selected else 35)
        self.setBrush(QBrush(fill))
        self.setZValue(2 if current else 1 if selected else 0)
        self.update()

    def paint(self, painter: QPainter, option, widget=None) -> None:
        super().paint(painter, option, widget)
        if self.selected:  # corner handles, a few screen pixels wide
            scale = max(painter.worldTransform().m11(), 1e-6)
            s = 6 / scale
            r = self.rect()
            painter.setPen(Qt.NoPen)
            painter.setBrush(_BLUE)
            for p in (r.topLeft(), r.topRight(), r.bottomLeft(), r.bottomRight()):
                painter.drawRect(QRectF(p.x() - s / 2, p.y() - s / 2, s, s))


@dataclass
class PageEdit(BoxEdit):
    """``BoxEdit`` whose undo also takes back a change of reading order, so the numbers
    on the page and the order chosen in the dialog always agree."""

    _orders_undo: list[str] = field(default_factory=list, repr=False)
    _orders_redo: list[str] = field(default_factory=list, repr=False)

    def _apply(self, new: list[Box]) -> list[Box]:
        self._orders_undo.append(self.order)
        self._orders_redo.clear()
        return super()._apply(new)

    def reorder_as(self, order: str) -> list[Box]:
        before = self.order
        self.order = order
        out = self.reorder()
        if self._orders_undo:  # (BoxEdit records its edits through _apply)
            self._orders_undo[-1] = before
        return out

    def undo(self) -> list[Box]:
        if self.can_undo() and self._orders_undo:
            self._orders_redo.append(self.order)
            self.order = self._orders_undo.pop()
        return super().undo()

    def redo(self) -> list[Box]:
        if self.can_redo() and self._orders_redo:
            self._orders_undo.append(self.order)
            self.order = self._orders_redo.pop()
        return super().redo()


def _box_of(rect: QRectF) -> Box:
    r = rect.normalized()
    return (round(r.x()), round(r.y()), round(r.width()), round(r.height()))


class PageView(QGraphicsView):
    """A page with its glyph boxes in reading order; see the module's docstring."""

    changed = Signal()  # the boxes, the selection or the current box changed

    def __init__(self, page: QPixmap, gray: np.ndarray | None = None,
                 boxes: Sequence[Box] = (), order: str = "columns-rtl") -> None:
        super().__init__()
        self.scene_ = QGraphicsScene(self)
        self.setScene(self.scene_)
        self.page_item = QGraphicsPixmapItem(page)
        self.page_item.setZValue(-1)
        self.scene_.addItem(self.page_item)
        self.scene_.setSceneRect(QRectF(page.rect()))
        self.gray = gray if gray is not None else np.zeros((page.height(), page.width()),
                                                           np.uint8)
        self.edit = PageEdit(reading_order(boxes, order), order)
        self.items_: list[BoxItem] = []
        self._shown: list[Box] = []
        self.selected: set[int] = set()
        self.current: int | None = None
        self.setDragMode(QGraphicsView.NoDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(True)
        self._drag: dict | None = None  # the gesture under way (add, move, resize, band, pan)
        self._space = False
        self._fitted_once = False
        self._sync()

    # -- boxes ---------------------------------------------------------------------------------
    def boxes(self) -> list[Box]:
        """The boxes in reading order (as they will be cut)."""
        return list(self.edit.boxes)

    @property
    def order(self) -> str:
        return self.edit.order

    def _sync(self, select: Sequence[Box] | None = None, current: Box | None = None) -> None:
        """Redraw the boxes after an edit; ``select`` / ``current``: the boxes (by value) to
        select and make current, else the selection is kept where its boxes still are."""
        boxes = self.edit.boxes
        shown = self._shown  # the boxes as drawn before this edit (not a drag's preview)
        if select is None:
            select = [shown[i] for i in sorted(self.selected) if i < len(shown)]
        if current is None and self.current is not None and self.current < len(shown):
            current = shown[self.current]
        self._shown = list(boxes)
        for item in self.items_:
            self.scene_.removeItem(item)
        self.items_ = [BoxItem(i, b) for i, b in enumerate(boxes)]
        for item in self.items_:
            self.scene_.addItem(item)
        wanted = set(select)
        self.selected = {i for i, b in enumerate(boxes) if b in wanted}
        self.current = next((i for i, b in enumerate(boxes) if b == current), None)
        if self.current is None and self.selected:
            self.current = min(self.selected)
        self._restyle()

    def _restyle(self) -> None:
        for item in self.items_:
            item.set_state(item.index in self.selected, item.index == self.current)
        self.changed.emit()

    def set_boxes(self, boxes: Sequence[Box]) -> None:
        """Replace all boxes (undoable), put into reading order."""
        self.edit.set(reading_order(boxes, self.order))
        self._sync(select=[])

    def set_order(self, order: str) -> None:
        """Read the page in ``order`` ("columns-rtl" or "rows"): the boxes are renumbered
        (undoable)."""
        if order == self.edit.order:
            return
        self.edit.reorder_as(order)
        self._sync()

    def add_box(self, rect: QRectF) -> None:
        box = self._clip(_box_of(rect))
        if box is None:
            return
        self.edit.add(box)
        self._sync(select=[box], current=box)

    def delete_selected(self) -> None:
        if not self.selected:
            return
        after = max(self.selected) - len(self.selected) + 1  # the box that followed them
        self.edit.remove(sorted(self.selected))
        nxt = self.edit.boxes[min(after, len(self.edit.boxes) - 1)] if self.edit.boxes else None
        self.current = None
        self._sync(select=[], current=nxt)

    def merge_selected(self) -> None:
        if len(self.selected) < 2:
            return
        first = min(self.selected)
        self.edit.merge(sorted(self.selected))
        box = self.edit.boxes[first]
        self._sync(select=[box], current=box)

    def split_selected(self, other_axis: bool = False) -> None:
        """Split the one selected (else the current) box in two at its lightest ink gap:
        across its longer side (a tall box into top and bottom), or the shorter one."""
        index = (next(iter(self.selected)) if len(self.selected) == 1 else
                 self.current if not self.selected else None)
        if index is None:
            return
        _x, _y, w, h = self.edit.boxes[index]
        axis = "y" if h >= w else "x"
        if other_axis:
            axis = "x" if axis == "y" else "y"
        before = len(self.edit.boxes)
        self.edit.split(self.gray, index, axis)
        if len(self.edit.boxes) == before:
            return
        parts = self.edit.boxes[index: index + 2]
        self._sync(select=parts, current=parts[0])

    def undo(self) -> None:
        if self.edit.can_undo():
            self.edit.undo()
            self._sync_back()

    def redo(self) -> None:
        if self.edit.can_redo():
            self.edit.redo()
            self._sync_back()

    def _sync_back(self) -> None:
        """After undo / redo: the boxes it brought back are selected (else the selection
        stays where its boxes still are)."""
        before = set(self._shown)
        back = [b for b in self.edit.boxes if b not in before]
        if back:
            self._sync(select=back, current=back[0])
        else:
            self._sync()

    def select_all(self) -> None:
        self.selected = set(range(len(self.edit.boxes)))
        self._restyle()

    def go(self, step: int) -> None:
        """Make the next (``step=1``) or previous box in reading order current (and the
        only one selected), and scroll it into view."""
        n = len(self.edit.boxes)
        if not n:
            return
        i = (0 if step > 0 else n - 1) if self.current is None else \
            min(max(self.current + step, 0), n - 1)
        self.current, self.selected = i, {i}
        self._restyle()
        self.ensureVisible(self.items_[i].rect(), 40, 40)

    def _clip(self, box: Box) -> Box | None:
        """The box within the page; None when it is too small to be a glyph."""
        x, y, w, h = box
        H, W = self.gray.shape[:2]
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(W, x + w), min(H, y + h)
        if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
            return None
        return (x0, y0, x1 - x0, y1 - y0)

    # -- zoom ----------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        f = min(max(self.zoom() * factor, MIN_ZOOM), MAX_ZOOM) / self.zoom()
        self.scale(f, f)

    def fit(self) -> None:
        self.fitInView(self.scene_.sceneRect(), Qt.KeepAspectRatio)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._fitted_once:
            self._fitted_once = True
            self.fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._fitted_once and self.isVisible():
            self.fit()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.ControlModifier:
            dy = event.angleDelta().y()
            if dy:
                self.zoom_by(ZOOM_STEP ** (dy / 120))
            event.accept()
            return
        super().wheelEvent(event)

    # -- the mouse -----------------------------------------------------------------------------
    def _hit(self, pos: QPointF) -> int | None:
        """The smallest box under a scene point."""
        best = None
        for i, (x, y, w, h) in enumerate(self.edit.boxes):
            if x <= pos.x() <= x + w and y <= pos.y() <= y + h and (
                    best is None or w * h < self.edit.boxes[best][2] * self.edit.boxes[best][3]):
                best = i
        return best

    def _edges(self, pos: QPointF) -> tuple[int | None, str]:
        """(box, edges) when the point lies on a box's edge or corner: edges among 'lrtb'."""
        tol = EDGE_PX / max(self.zoom(), 1e-6)
        for i in sorted(range(len(self.edit.boxes)), key=lambda i: (i not in self.selected, i)):
            x, y, w, h = self.edit.boxes[i]
            if w < 3 * tol or h < 3 * tol:  # too small on screen: a press moves it
                continue
            if not (x - tol <= pos.x() <= x + w + tol and y - tol <= pos.y() <= y + h + tol):
                continue
            edges = ("l" if abs(pos.x() - x) <= tol else "r" if abs(pos.x() - x - w) <= tol
                     else "") + ("t" if abs(pos.y() - y) <= tol else
                                 "b" if abs(pos.y() - y - h) <= tol else "")
            if edges:
                return i, edges
        return None, ""

    def _dashed_rect(self, pos: QPointF, color: QColor) -> QGraphicsRectItem:
        """A dashed rectangle at ``pos`` that a drag grows (a selection band, a new box)."""
        item = QGraphicsRectItem(QRectF(pos, pos))
        pen = QPen(color, 1, Qt.DashLine)
        pen.setCosmetic(True)
        item.setPen(pen)
        item.setZValue(5)
        self.scene_.addItem(item)
        return item

    def mousePressEvent(self, event) -> None:
        pos = self.mapToScene(event.position().toPoint())
        mods = event.modifiers()
        self.setFocus()
        if event.button() == Qt.MiddleButton or (event.button() == Qt.LeftButton
                                                 and self._space):
            self._drag = {"kind": "pan", "last": event.position()}
            self.viewport().setCursor(Qt.ClosedHandCursor)
            return
        if event.button() != Qt.LeftButton:
            super().mousePressEvent(event)
            return
        if mods & Qt.ShiftModifier:
            band = self._dashed_rect(pos, _BLUE)
            self._drag = {"kind": "band", "origin": pos, "item": band,
                          "add": bool(mods & Qt.ControlModifier)}
            return
        hit = self._hit(pos)
        if mods & Qt.ControlModifier:
            if hit is not None:
                self.selected ^= {hit}
                self.current = hit
                self._restyle()
            return
        index, edges = self._edges(pos)
        if index is not None:
            self.selected, self.current = {index}, index
            self._restyle()
            self._drag = {"kind": "resize", "index": index, "edges": edges, "origin": pos,
                          "moved": False}
            return
        if hit is not None:
            if hit not in self.selected:
                self.selected = {hit}
            self.current = hit
            self._restyle()
            self._drag = {"kind": "move", "index": hit, "origin": pos, "moved": False,
                          "group": sorted(self.selected)}
            return
        self.selected, self.current = set(), None
        self._restyle()
        draft = self._dashed_rect(pos, _RED)
        self._drag = {"kind": "add", "origin": pos, "item": draft}

    def mouseMoveEvent(self, event) -> None:
        d = self._drag
        if d is None:
            if not self._space:
                _i, edges = self._edges(self.mapToScene(event.position().toPoint()))
                self.viewport().setCursor(
                    Qt.SizeFDiagCursor if edges in ("lt", "rb") else
                    Qt.SizeBDiagCursor if edges in ("rt", "lb") else
                    Qt.SizeHorCursor if edges in ("l", "r") else
                    Qt.SizeVerCursor if edges in ("t", "b") else Qt.ArrowCursor)
            super().mouseMoveEvent(event)
            return
        pos = self.mapToScene(event.position().toPoint())
        if d["kind"] == "pan":
            delta = event.position() - d["last"]
            d["last"] = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value()
                                                - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value()
                                              - round(delta.y()))
        elif d["kind"] in ("add", "band"):
            d["item"].setRect(QRectF(d["origin"], pos).normalized())
        elif d["kind"] == "move":
            dx, dy = pos.x() - d["origin"].x(), pos.y() - d["origin"].y()
            # the boxes stay on the page: they stop at its edges
            H, W = self.gray.shape[:2]
            group = [self.edit.boxes[i] for i in d["group"]]
            dx = min(max(dx, -min(b[0] for b in group)), W - max(b[0] + b[2] for b in group))
            dy = min(max(dy, -min(b[1] for b in group)), H - max(b[1] + b[3] for b in group))
            d["moved"] = d["moved"] or abs(dx) >= 1 or abs(dy) >= 1
            for i in d["group"]:
                x, y, w, h = self.edit.boxes[i]
                self.items_[i].setRect(QRectF(x + dx, y + dy, w, h))
                self.items_[i].tag.setPos(QPointF(x + dx, y + dy))
        elif d["kind"] == "resize":
            x, y, w, h = self.edit.boxes[d["index"]]
            x0, y0, x1, y1 = float(x), float(y), float(x + w), float(y + h)
            e = d["edges"]
            if "l" in e:
                x0 = pos.x()
            if "r" in e:
                x1 = pos.x()
            if "t" in e:
                y0 = pos.y()
            if "b" in e:
                y1 = pos.y()
            d["moved"] = True
            item = self.items_[d["index"]]
            item.setRect(QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized())
            item.tag.setPos(item.rect().topLeft())

    def mouseReleaseEvent(self, event) -> None:
        d, self._drag = self._drag, None
        if d is None:
            super().mouseReleaseEvent(event)
            return
        if d["kind"] == "pan":
            self.viewport().setCursor(Qt.OpenHandCursor if self._space else Qt.ArrowCursor)
        elif d["kind"] == "add":
            rect = d["item"].rect()
            self.scene_.removeItem(d["item"])
            self.add_box(rect)
        elif d["kind"] == "band":
            rect = d["item"].rect()
            self.scene_.removeItem(d["item"])
            inside = {i for i, (x, y, w, h) in enumerate(self.edit.boxes)
                      if rect.contains(QPointF(x + w / 2, y + h / 2))}
            self.selected = (self.selected | inside) if d["add"] else inside
            self.current = min(self.selected) if self.selected else None
            self._restyle()
        elif d["kind"] == "move":
            if not d["moved"]:
                if len(d["group"]) > 1:  # a click in a selection picks that one box
                    self.selected = {d["index"]}
                    self._restyle()
                return
            moved = {i: self._clip(_box_of(self.items_[i].rect())) for i in d["group"]}
            if any(b is None for b in moved.values()):  # dragged off the page: no change
                self._sync()
                return
            new = [moved.get(i, b) for i, b in enumerate(self.edit.boxes)]
            self.edit.set(reading_order(new, self.order))  # one undo step for the group
            self._sync(select=list(moved.values()), current=moved[d["index"]])
        elif d["kind"] == "resize":
            box = self._clip(_box_of(self.items_[d["index"]].rect()))
            if not d["moved"] or box is None or box == self.edit.boxes[d["index"]]:
                self._sync()
                return
            self.edit.move(d["index"], box)
            self._sync(select=[box], current=box)

    # -- keys ----------------------------------------------------------------------------------
    _KEYS = frozenset({Qt.Key_Space, Qt.Key_Plus, Qt.Key_Equal, Qt.Key_Minus,
                       Qt.Key_Underscore, Qt.Key_0, Qt.Key_Delete, Qt.Key_Backspace, Qt.Key_M,
                       Qt.Key_S, Qt.Key_Up, Qt.Key_Down, Qt.Key_Left, Qt.Key_Right})

    def event(self, event) -> bool:
        # The page's keys are the page's, even where a window behind has a shortcut on them
        # (the main window's Delete removes an example).
        if event.type() == QEvent.ShortcutOverride and (
                event.key() in self._KEYS or (event.modifiers() & Qt.ControlModifier
                                              and event.key() in (Qt.Key_Z, Qt.Key_Y,
                                                                  Qt.Key_A))):
            event.accept()
            return True
        # Tab walks the boxes (reading order) instead of moving the focus out of the view.
        if event.type() == QEvent.KeyPress and event.key() in (Qt.Key_Tab, Qt.Key_Backtab) \
                and not event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            back = event.key() == Qt.Key_Backtab or bool(event.modifiers() & Qt.ShiftModifier)
            self.go(-1 if back else 1)
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        key, mods = event.key(), event.modifiers()
        ctrl, shift = bool(mods & Qt.ControlModifier), bool(mods & Qt.ShiftModifier)
        rtl = self.order == "columns-rtl"
        if key == Qt.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.OpenHandCursor)
        elif key == Qt.Key_Space:
            pass
        elif ctrl and key == Qt.Key_Z:
            self.redo() if shift else self.undo()
        elif ctrl and key == Qt.Key_Y:
            self.redo()
        elif ctrl and key == Qt.Key_A:
            self.select_all()
        elif key in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key in (Qt.Key_Minus, Qt.Key_Underscore):
            self.zoom_by(1 / ZOOM_STEP)
        elif key == Qt.Key_0:
            self.fit()
        elif key in (Qt.Key_Delete, Qt.Key_Backspace):
            self.delete_selected()
        elif key == Qt.Key_M and not ctrl:
            self.merge_selected()
        elif key == Qt.Key_S and not ctrl:
            self.split_selected(other_axis=shift)
        elif key == Qt.Key_Down or (key == Qt.Key_Left and rtl) or (key == Qt.Key_Right
                                                                     and not rtl):
            self.go(1)
        elif key == Qt.Key_Up or (key == Qt.Key_Right and rtl) or (key == Qt.Key_Left
                                                                    and not rtl):
            self.go(-1)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.ArrowCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False  # a Space released elsewhere must not leave the view panning
        super().focusOutEvent(event)
