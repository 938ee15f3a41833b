"""The page dialog, used as a user uses it: mouse presses, drags, wheel and keys on a
synthetic vertical page (tests/pagegen.py) whose true boxes are known."""

from __future__ import annotations

import math

import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from nomgui.annotateui import PageDialog
from tests.pagegen import CROPS_ZIP, BlobSource, CropSource, iou, make_page

pytestmark = pytest.mark.gui


@pytest.fixture
def page(tmp_path):
    """A clean page of 3 columns x 4 glyphs, read right to left; the cutter finds exactly
    its 12 true boxes (checked below)."""
    p = make_page(BlobSource(), 0, scale=48, spacing="loose", noise="clean", lines=False,
                  cols=3, per_col=4)
    path = tmp_path / "page.png"
    Image.fromarray(p.image).save(path)
    return path, p


@pytest.fixture
def dialog(qtbot, page):
    d = PageDialog(page[0])
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    return d


def _vp(view, x: float, y: float) -> QPointF:
    """A page (scene) point in the view's viewport coordinates."""
    return QPointF(view.mapFromScene(QPointF(x, y)))


def _send(view, kind, pos: QPointF, button, buttons, mods=Qt.NoModifier) -> None:
    vp = view.viewport()
    ev = QMouseEvent(kind, pos, QPointF(vp.mapToGlobal(pos.toPoint())), button, buttons, mods)
    QApplication.sendEvent(vp, ev)


def drag(view, a: tuple[float, float], b: tuple[float, float], button=Qt.LeftButton,
         mods=Qt.NoModifier, steps: int = 6) -> None:
    """Press at page point a, move in steps, release at page point b."""
    pa, pb = _vp(view, *a), _vp(view, *b)
    _send(view, QEvent.MouseButtonPress, pa, button, button, mods)
    for k in range(1, steps + 1):
        p = pa + (pb - pa) * (k / steps)
        _send(view, QEvent.MouseMove, p, Qt.NoButton, button, mods)
    _send(view, QEvent.MouseButtonRelease, pb, button, Qt.NoButton, mods)


def click(qtbot, view, x: float, y: float, mods=Qt.NoModifier) -> None:
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, mods, _vp(view, x, y).toPoint())


def near(a, b, view) -> bool:
    """Boxes equal up to what a mouse position rounded to the screen's pixels allows (a
    page pixel is less than a screen pixel when the page is shown small: a large
    QT_SCALE_FACTOR on a small screen)."""
    tol = max(1, math.ceil(1.5 / view.zoom()))
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


def centre(box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def wheel(view, dy: int, mods) -> None:
    pos = QPointF(view.viewport().rect().center())
    ev = QWheelEvent(pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0),
                     QPoint(0, dy), Qt.NoButton, mods, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), ev)


def visible(view):
    return view.mapToScene(view.viewport().rect()).boundingRect()


def test_boxes_numbered_in_reading_order_and_select_versus_add(qtbot, dialog, page):
    v, truth = dialog.view, page[1]
    assert v.boxes() == truth.boxes  # the cutter's boxes, columns right to left
    assert [item.tag.text for item in v.items_] == [str(i) for i in range(1, 13)]
    assert "vertical columns, right to left" in dialog.hint.text()
    # the whole page fits the view at first, and the dialog fits the screen
    assert visible(v).adjusted(-2, -2, 2, 2).contains(v.sceneRect())
    avail = QGuiApplication.primaryScreen().availableGeometry()
    assert dialog.width() <= avail.width() and dialog.height() <= avail.height()

    # a press inside a box selects it: no new box
    click(qtbot, v, *centre(truth.boxes[5]))
    assert v.selected == {5} and v.current == 5 and len(v.boxes()) == 12
    # Ctrl+click adds another
    click(qtbot, v, *centre(truth.boxes[6]), Qt.ControlModifier)
    assert v.selected == {5, 6} and "2 selected" in dialog.count.text()
    # a drag on the paper adds a box, put in reading order (the top right corner: first)
    W = v.gray.shape[1]
    drag(v, (W - 25, 4), (W - 5, 30))
    assert len(v.boxes()) == 13 and near(v.boxes()[0], (W - 25, 4, 20, 26), v)
    assert v.selected == {0} and v.items_[0].tag.text == "1"
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert len(v.boxes()) == 13
    qtbot.mouseClick(dialog.undo_button, Qt.LeftButton)
    assert v.boxes() == truth.boxes and dialog.redo_button.isEnabled()


def test_move_resize_delete_with_undo(qtbot, dialog, page):
    v, truth = dialog.view, page[1]
    x, y, w, h = truth.boxes[1]
    drag(v, centre(truth.boxes[1]), (x + w / 2 + 6, y + h / 2 + 4))
    assert near(v.boxes()[1], (x + 6, y + 4, w, h), v) and v.selected == {1}
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes

    # dragged past the page's edge, a box stops at it (same size)
    drag(v, centre(truth.boxes[0]), (v.gray.shape[1] + 50, -40))
    _x0, _y0, w0, h0 = truth.boxes[0]
    assert v.boxes()[0] == (v.gray.shape[1] - w0, 0, w0, h0) and v.selected == {0}
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes and v.selected == {0}

    # resize by the bottom edge (zoomed in so the edge is easy to hit)
    for _ in range(3):
        qtbot.keyClick(v, Qt.Key_Plus)
    v.ensureVisible(v.items_[1].rect(), 10, 10)
    qtbot.wait(10)
    drag(v, (x + w / 2, y + h), (x + w / 2, y + h + 7))
    resized = v.boxes()[1]
    assert near(resized, (x, y, w, h + 7), v) and resized[:3] == (x, y, w)
    # a box's edge: press and release without moving changes nothing
    drag(v, (x + w / 2, y + resized[3]), (x + w / 2, y + resized[3]), steps=1)
    assert v.boxes()[1] == resized
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes
    qtbot.keyClick(v, Qt.Key_0)

    click(qtbot, v, *centre(truth.boxes[3]))
    qtbot.keyClick(v, Qt.Key_Delete)
    assert v.boxes() == truth.boxes[:3] + truth.boxes[4:]
    assert v.current == 3  # the box that followed is now current
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes
    qtbot.keyClick(v, Qt.Key_Y, Qt.ControlModifier)
    assert len(v.boxes()) == 11


def test_zoom_pan_and_reading_order_navigation(qtbot, dialog, page):
    v, truth = dialog.view, page[1]
    fit = v.zoom()
    wheel(v, 240, Qt.ControlModifier)
    assert v.zoom() == pytest.approx(fit * 1.25 ** 2)
    qtbot.keyClick(v, Qt.Key_Minus)
    assert v.zoom() == pytest.approx(fit * 1.25)
    for _ in range(4):
        qtbot.keyClick(v, Qt.Key_Plus)
    assert v.zoom() > 2.5 * fit
    qtbot.keyClick(v, Qt.Key_0)
    assert v.zoom() == pytest.approx(fit)
    qtbot.mouseClick(dialog.zoom_in_button, Qt.LeftButton)
    assert v.zoom() == pytest.approx(fit * 1.25)
    qtbot.mouseClick(dialog.fit_button, Qt.LeftButton)
    assert v.zoom() == pytest.approx(fit)

    for _ in range(8):
        qtbot.keyClick(v, Qt.Key_Plus)
    # middle-button drag pans (the page moves with the mouse), no box is added
    hs, vs = v.horizontalScrollBar(), v.verticalScrollBar()
    before = (hs.value(), vs.value())
    c = visible(v).center()
    drag(v, (c.x(), c.y()), (c.x() + 20, c.y() + 20), button=Qt.MiddleButton)
    assert (hs.value(), vs.value()) != before and len(v.boxes()) == 12
    # so does Space + left drag
    before = (hs.value(), vs.value())
    qtbot.keyPress(v, Qt.Key_Space)
    c = visible(v).center()
    drag(v, (c.x(), c.y()), (c.x() - 15, c.y() - 15))
    qtbot.keyRelease(v, Qt.Key_Space)
    assert (hs.value(), vs.value()) != before and len(v.boxes()) == 12

    # Tab goes through the boxes in reading order, each scrolled into view
    for i in range(12):
        qtbot.keyClick(v, Qt.Key_Tab)
        assert v.current == i and v.selected == {i}
        assert visible(v).contains(v.items_[i].rect())
    qtbot.keyClick(v, Qt.Key_Backtab)
    assert v.current == 10
    qtbot.keyClick(v, Qt.Key_Up)
    assert v.current == 9
    qtbot.keyClick(v, Qt.Key_Left)  # columns read right to left: Left goes on
    assert v.current == 10
    qtbot.keyClick(v, Qt.Key_Down)
    assert v.current == 11 and v.items_[11].current

    # rows instead of columns: renumbered left to right, top to bottom
    qtbot.keyClick(dialog.order_box, Qt.Key_Down)
    assert v.order == "rows" and "horizontal rows" in dialog.hint.text()
    first = v.boxes()[0]
    assert first[1] == min(b[1] for b in truth.boxes) or first[0] < truth.boxes[0][0]
    assert sorted(v.boxes()) == sorted(truth.boxes)
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)  # the order change is undone too
    assert v.boxes() == truth.boxes and dialog.order_box.currentData() == "columns-rtl"


def test_merge_and_split_with_undo(qtbot, dialog, page):
    v, truth = dialog.view, page[1]
    # Shift+drag a band round the first two glyphs of the first (right) column
    a, b = truth.boxes[0], truth.boxes[1]
    left = min(a[0], b[0]) - 3
    right = max(a[0] + a[2], b[0] + b[2]) + 3
    drag(v, (left, a[1] - 3), (right, b[1] + b[3] + 3), mods=Qt.ShiftModifier)
    assert v.selected == {0, 1} and len(v.boxes()) == 12
    assert dialog.merge_button.isEnabled()
    qtbot.keyClick(v, Qt.Key_M)
    merged = v.boxes()[0]
    assert len(v.boxes()) == 11 and merged == (left + 3, a[1], right - left - 6,
                                               b[1] + b[3] - a[1])
    assert v.selected == {0}
    # S splits it at its lightest ink gap (a tall box: into top and bottom)
    qtbot.keyClick(v, Qt.Key_S)
    assert len(v.boxes()) == 12
    top, bottom = v.boxes()[0], v.boxes()[1]
    assert top[1] + top[3] <= bottom[1]
    assert top[1] == a[1] and bottom[1] + bottom[3] == b[1] + b[3]
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes()[0] == merged
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert v.boxes() == truth.boxes
    # by the buttons: select two with Ctrl+click, Merge, then Split
    click(qtbot, v, *centre(truth.boxes[4]))
    click(qtbot, v, *centre(truth.boxes[5]), Qt.ControlModifier)
    qtbot.mouseClick(dialog.merge_button, Qt.LeftButton)
    assert len(v.boxes()) == 11
    qtbot.mouseClick(dialog.split_button, Qt.LeftButton)
    assert len(v.boxes()) == 12
    # Delete by the button, Ctrl+A and Delete, undo brings all back
    qtbot.keyClick(v, Qt.Key_A, Qt.ControlModifier)
    qtbot.mouseClick(dialog.delete_button, Qt.LeftButton)
    assert v.boxes() == []
    qtbot.keyClick(v, Qt.Key_Z, Qt.ControlModifier)
    assert len(v.boxes()) == 12
    qtbot.mouseClick(dialog.again_button, Qt.LeftButton)
    assert v.boxes() == truth.boxes


def test_every_button_of_the_page_dialog(qtbot, dialog):
    """Every button, with nothing selected, one box and two: no exception in any slot."""
    from tests.gui.test_every_button import press_everything

    v = dialog.view
    skip = ("Cut glyphs", "Cancel")
    assert press_everything(qtbot, dialog, skip=skip)
    qtbot.mouseClick(dialog.again_button, Qt.LeftButton)
    click(qtbot, v, *centre(v.boxes()[2]))
    press_everything(qtbot, dialog, skip=skip)
    qtbot.mouseClick(dialog.again_button, Qt.LeftButton)
    click(qtbot, v, *centre(v.boxes()[2]))
    click(qtbot, v, *centre(v.boxes()[3]), Qt.ControlModifier)
    press_everything(qtbot, dialog, skip=skip)
    assert dialog.isVisible()
    qtbot.keyClick(v, Qt.Key_Escape)  # Esc leaves without cutting
    assert not dialog.isVisible() and dialog.result() == 0


@pytest.mark.skipif(not CROPS_ZIP.is_file(), reason="the real woodblock crops are not here")
def test_merge_then_split_real_woodblock_glyphs(qtbot, tmp_path):
    """On a page of real crops (read in place, never committed): two glyphs of a column
    merged by the user come apart again at the gap between them."""
    p = make_page(CropSource(), 0, scale=32, spacing="normal", noise="clean", lines=False,
                  cols=4, per_col=8)
    path = tmp_path / "crops.png"
    Image.fromarray(p.image).save(path)
    d = PageDialog(path)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    v = d.view
    found = v.boxes()
    assert sum(max(iou(t, f) for f in found) >= 0.5 for t in p.boxes) >= 0.9 * len(p.boxes)
    a, b = found[0], found[1]
    click(qtbot, v, *centre(a))
    click(qtbot, v, *centre(b), Qt.ControlModifier)
    qtbot.keyClick(v, Qt.Key_M)
    assert len(v.boxes()) == len(found) - 1
    qtbot.keyClick(v, Qt.Key_S)
    top, bottom = v.boxes()[0], v.boxes()[1]
    assert iou(top, a) >= 0.7 and iou(bottom, b) >= 0.7
