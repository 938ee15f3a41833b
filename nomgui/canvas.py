"""The drawing canvas: mouse, touch (as synthesised mouse events) and pen tablets.

Strokes are held as Qt points only while being drawn; a finished stroke is committed as a
plain :class:`~nomgui.glyph.Stroke` through the undo stack, and :meth:`DrawingCanvas.glyph`
hands out a Qt-free :class:`~nomgui.glyph.Glyph`. The canvas paints on a square "paper" of
``PAPER`` pixels whatever the widget's size, so a glyph's pixels do not depend on the window.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QTabletEvent,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from nomgui.glyph import Glyph, Stroke

PAPER = 256  # side of the drawing surface in glyph pixels
# Omniglot's ink is about 6% of a glyph's size; a drawing fills roughly 3/4 of the paper.
DEFAULT_PEN = 12.0


def stroke_path(points: np.ndarray) -> QPainterPath:
    """A smooth path through the points: quadratic curves between midpoints."""
    path = QPainterPath(QPointF(points[0, 0], points[0, 1]))
    if len(points) == 1:
        path.lineTo(QPointF(points[0, 0] + 0.01, points[0, 1]))
        return path
    for i in range(1, len(points) - 1):
        mid = (points[i, :2] + points[i + 1, :2]) / 2
        path.quadTo(QPointF(points[i, 0], points[i, 1]), QPointF(mid[0], mid[1]))
    path.lineTo(QPointF(points[-1, 0], points[-1, 1]))
    return path


def paint_strokes(painter: QPainter, strokes: list[Stroke], color: QColor) -> None:
    for s in strokes:
        pressures = s.points[:, 2]
        has_pressure = bool((pressures < 0.999).any())
        if not has_pressure:
            pen = QPen(color, s.width, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
            painter.setPen(pen)
            painter.drawPath(stroke_path(s.points))
            continue
        # Pressure: width varies along the stroke, segment by segment.
        for i in range(max(len(s.points) - 1, 1)):
            a, b = s.points[i], s.points[min(i + 1, len(s.points) - 1)]
            width = s.width * (0.3 + 0.9 * float((a[2] + b[2]) / 2))
            painter.setPen(QPen(color, width, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
            painter.drawLine(QPointF(a[0], a[1]), QPointF(b[0], b[1]))


class _AddStroke(QUndoCommand):
    def __init__(self, canvas: DrawingCanvas, stroke: Stroke) -> None:
        super().__init__("draw stroke")
        self.canvas, self.stroke = canvas, stroke

    def redo(self) -> None:
        self.canvas._strokes.append(self.stroke)
        self.canvas._changed()

    def undo(self) -> None:
        self.canvas._strokes.pop()
        self.canvas._changed()


class _SetContent(QUndoCommand):
    """Clear, or load an image: replaces strokes and background together."""

    def __init__(self, canvas: DrawingCanvas, text: str, background: np.ndarray | None) -> None:
        super().__init__(text)
        self.canvas = canvas
        self.before = (list(canvas._strokes), canvas._background)
        self.after: tuple[list[Stroke], np.ndarray | None] = ([], background)

    def redo(self) -> None:
        self.canvas._strokes, self.canvas._background = list(self.after[0]), self.after[1]
        self.canvas._changed()

    def undo(self) -> None:
        self.canvas._strokes, self.canvas._background = list(self.before[0]), self.before[1]
        self.canvas._changed()


class DrawingCanvas(QWidget):
    """Square drawing surface with undo/redo. ``strokeFinished`` fires after each stroke,
    ``contentChanged`` after any change (stroke, undo, redo, clear, load)."""

    strokeFinished = Signal()
    contentChanged = Signal()

    def __init__(self, parent: QWidget | None = None,
                 undo_stack: QUndoStack | None = None) -> None:
        super().__init__(parent)
        # The window passes its own stack so strokes and class-set edits share one history
        # (Ctrl+Z after teaching undoes the teach and brings the drawing back).
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self.pen_width = DEFAULT_PEN
        self._strokes: list[Stroke] = []
        self._background: np.ndarray | None = None  # a loaded glyph, dark on white
        self._live: list[tuple[float, float, float]] | None = None
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(200, 200)
        self.setAttribute(Qt.WA_TabletTracking, True)
        self.setCursor(Qt.CrossCursor)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setToolTip("Draw a glyph with the mouse, a pen or a finger. Drop image files here.")

    # -- geometry ------------------------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def _paper_rect(self) -> QRectF:
        side = min(self.width(), self.height()) - 8
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def _to_paper(self, pos: QPointF) -> tuple[float, float]:
        r = self._paper_rect()
        scale = PAPER / r.width()
        return (pos.x() - r.x()) * scale, (pos.y() - r.y()) * scale

    # -- content -------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return not self._strokes and self._background is None

    def holds_image(self) -> bool:
        """Whether the content is a loaded image (with or without strokes over it)."""
        return self._background is not None

    def strokes(self) -> list[Stroke]:
        return list(self._strokes)

    def clear(self) -> None:
        if not self.is_empty():
            self.undo_stack.push(_SetContent(self, "clear", None))

    def set_glyph_image(self, image: np.ndarray) -> None:
        """Show a loaded glyph (uint8 (H, W), dark on white) as the canvas content."""
        self.undo_stack.push(_SetContent(self, "load image", np.ascontiguousarray(image)))

    def _changed(self) -> None:
        self.update()
        self.contentChanged.emit()

    def render_image(self) -> np.ndarray:
        """uint8 (PAPER, PAPER) grayscale, dark ink on white: what the glyph is."""
        img = QImage(PAPER, PAPER, QImage.Format_Grayscale8)
        img.fill(255)
        p = QPainter(img)
        p.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
        self._paint_content(p, QColor(0, 0, 0))
        p.end()
        ptr = img.constBits()
        arr = np.frombuffer(ptr, np.uint8, count=img.sizeInBytes())
        return arr.reshape(PAPER, img.bytesPerLine())[:, :PAPER].copy()

    def glyph(self) -> Glyph:
        return Glyph(self.render_image(), tuple(self._strokes), "canvas")

    def _paint_content(self, p: QPainter, ink: QColor) -> None:
        if self._background is not None:
            bg = self._background
            h, w = bg.shape
            qimg = QImage(bg.data, w, h, bg.strides[0], QImage.Format_Grayscale8)
            scale = PAPER / max(h, w)
            target = QRectF((PAPER - w * scale) / 2, (PAPER - h * scale) / 2, w * scale,
                            h * scale)
            p.drawImage(target, qimg)
        paint_strokes(p, self._strokes, ink)

    # -- painting ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
        r = self._paper_rect()
        pal = self.palette()
        p.fillRect(self.rect(), pal.window())
        p.fillRect(r, QColor(255, 255, 255))
        p.setPen(QPen(pal.mid().color(), 1))
        p.drawRect(r)
        p.save()
        p.translate(r.topLeft())
        p.scale(r.width() / PAPER, r.height() / PAPER)
        p.setClipRect(QRectF(0, 0, PAPER, PAPER))
        self._paint_content(p, QColor(20, 20, 20))
        if self._live:
            paint_strokes(p, [Stroke(np.array(self._live, dtype=np.float32), self.pen_width)],
                          QColor(20, 20, 20))
        p.restore()
        if self.is_empty() and not self._live:
            p.setPen(pal.mid().color())
            p.drawText(r, Qt.AlignCenter, "Draw a glyph here\nor drop image files")

    # -- input ---------------------------------------------------------------------------
    def _begin(self, pos: QPointF, pressure: float) -> None:
        self._live = [(*self._to_paper(pos), pressure)]
        self.update()

    def _extend(self, pos: QPointF, pressure: float) -> None:
        if self._live is None:
            return
        x, y = self._to_paper(pos)
        lx, ly, _ = self._live[-1]
        if (x - lx) ** 2 + (y - ly) ** 2 >= 0.25:  # drop sub-pixel jitter
            self._live.append((x, y, pressure))
            self.update()

    def _end(self) -> None:
        if self._live is None:
            return
        pts = np.array(self._live, dtype=np.float32)
        self._live = None
        self.undo_stack.push(_AddStroke(self, Stroke(pts, self.pen_width)))
        self.strokeFinished.emit()

    def mousePressEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.LeftButton:
            self._begin(e.position(), 1.0)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:
        if e.buttons() & Qt.LeftButton:
            self._extend(e.position(), 1.0)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.LeftButton:
            self._end()

    def tabletEvent(self, e: QTabletEvent) -> None:
        pressure = max(0.05, min(float(e.pressure()), 0.998))
        t = e.type()
        if t == QTabletEvent.TabletPress:
            self._begin(e.position(), pressure)
        elif t == QTabletEvent.TabletMove:
            self._extend(e.position(), pressure)
        elif t == QTabletEvent.TabletRelease:
            self._end()
        e.accept()  # no synthesised mouse events: the stroke is drawn once
