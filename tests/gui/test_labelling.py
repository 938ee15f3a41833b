"""Labelling the glyphs of a page in the annotation window, by keys and clicks: typing goes
to the label box and completes Nôm readings, Not a glyph, Accept all >= N%, a session per
page, proposals again after a refit, and the page export."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog

from nomgui.annotateui import PageDialog
from nomgui.annotation import NOT_A_GLYPH, PENDING
from tests.pagegen import BlobSource, make_page

pytestmark = pytest.mark.gui


def _page(path, seed: int, cols: int = 2, per_col: int = 3):
    p = make_page(BlobSource(), seed, scale=48, spacing="loose", noise="clean", lines=False,
                  cols=cols, per_col=per_col)
    Image.fromarray(p.image).save(path)
    return p


def test_label_a_page_by_keys_and_export_it(make_window, qtbot, tmp_path, dialogs,
                                            monkeypatch):
    w = make_window()
    first = _page(tmp_path / "one.png", 0)
    _page(tmp_path / "two.png", 1)
    monkeypatch.setattr(PageDialog, "exec", lambda self: QDialog.Accepted)  # "Cut glyphs"
    win = w.show_annotate()
    qtbot.waitExposed(win)
    avail = win.screen().availableGeometry()  # fits the screen (any QT_SCALE_FACTOR)
    assert win.width() <= avail.width() and win.height() <= avail.height()
    assert win.minimumSizeHint().width() <= avail.width()
    dialogs.texts += ["page one", "page two", "page one again"]
    win.open_page(tmp_path / "one.png")
    s1 = win.session
    assert len(s1.items) == len(first.boxes)
    assert [tuple(i.box) for i in s1.items] == first.boxes  # in reading order
    # a second page is a session of its own, not appended to the open one
    win.open_page(tmp_path / "two.png")
    s2 = win.session
    assert s2.folder != s1.folder and len(s1.items) == len(first.boxes)
    assert {i.source for i in s2.items} == {str(tmp_path / "two.png")}
    assert len(win.store.list()) == 2
    qtbot.waitUntil(lambda: all(i.proposals or i.problem for i in s2.items), timeout=30000)

    # proposals: the character large (at least twice the body text)
    b = win.proposal_buttons[0]
    assert b.isEnabled() and b.glyph.text()
    assert b.glyph.font().pointSizeF() >= 2 * win.font().pointSizeF()

    # typing in the list goes to the label box and offers characters by their reading
    win.queue.setFocus()
    item = win.current
    qtbot.keyClicks(win.queue, "sau")
    assert win.label_edit.text() == "sau" and win.label_edit.hasFocus()
    model = win.completer_model
    offered = [model.item(r).data(Qt.UserRole) for r in range(model.rowCount())]
    assert "𡢐" in offered[:4]
    popup = win.completer.popup()
    qtbot.waitUntil(popup.isVisible, timeout=3000)
    row = offered.index("𡢐")
    for _ in range(row + 1):  # Down from the box into the list, to the character
        qtbot.keyClick(popup, Qt.Key_Down)
    assert popup.currentIndex().row() == row
    qtbot.keyClick(popup, Qt.Key_Return)  # one Enter on the character labels the glyph
    assert (s2.get(item.id).decision, s2.get(item.id).label) == ("corrected", "𡢐")
    assert win.label_edit.text() == "" and not popup.isVisible()
    assert [i.label for i in s2.items].count("𡢐") == 1
    assert win.chosen_readings.get(item.id) == "sau"

    # the class set changes (labelled glyphs join it): the model proposes again
    before = win._request
    qtbot.mouseClick(win.join_button, Qt.LeftButton)
    # read at once: the new proposals, when they arrive, show the current glyph instead
    assert "1 glyph(s) added" in win.info.text()
    qtbot.waitUntil(lambda: win._request > before, timeout=30000)

    # Delete in the list: not a glyph (a decision), Ctrl+Z takes it back
    noise = win.current
    qtbot.keyClick(win.queue, Qt.Key_Delete)
    assert s2.get(noise.id).decision == NOT_A_GLYPH and s2.get(noise.id).label == ""
    qtbot.keyClick(win.queue, Qt.Key_Z, Qt.ControlModifier)
    assert s2.get(noise.id).decision == PENDING
    qtbot.mouseClick(win.noise_button, Qt.LeftButton)
    assert s2.get(noise.id).decision == NOT_A_GLYPH
    # Space skips; key 1 picks the first proposal
    skipped = win.current
    qtbot.keyClick(win.queue, Qt.Key_Space)
    assert s2.get(skipped.id).decision == "skipped"

    # Accept all >= N%: N typed in the spin box; one undo takes them all back
    spin = win.threshold
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "99")
    assert spin.value() == 99
    sure = [i.id for i in s2.queue() if i.proposals and i.confidence >= 0.99]
    assert win.accept_all_button.text() == f"Accept all ≥ 99% ({len(sure)})"
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "5")
    sure = [i.id for i in s2.queue() if i.proposals and i.confidence >= 0.05]
    assert len(sure) >= 2 and len(sure) < len(s2.queue()) + 1
    qtbot.mouseClick(win.accept_all_button, Qt.LeftButton)
    assert all(s2.get(i).decision == "accepted" for i in sure)
    qtbot.mouseClick(win.undo_button, Qt.LeftButton)  # one undo: all of them back
    assert all(s2.get(i).decision == PENDING for i in sure)
    qtbot.mouseClick(win.accept_all_button, Qt.LeftButton)
    assert not win.accept_all_button.isEnabled()

    # Export: the page export (transcription, COCO, YOLO, CSV, U+XXXX class folders)
    out = tmp_path / "export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(out)))
    qtbot.mouseClick(win.export_button, Qt.LeftButton)
    assert (out / "annotations.coco.json").is_file() and (out / "manifest.csv").is_file()
    assert list((out / "labels").glob("*.txt")) and (out / "classes.txt").is_file()
    nom = next((out / "transcription").glob("*.nom.txt")).read_text(encoding="utf-8")
    assert "𡢐" in nom
    assert (out / "glyphs" / "U+21890").is_dir()
    coco = json.loads((out / "annotations.coco.json").read_text(encoding="utf-8"))
    boxes = [a["bbox"] for a in coco["annotations"]]
    assert s2.get(noise.id).box not in boxes  # not a glyph: not exported
    assert len(boxes) == len(s2.items) - 1
    assert "Exported 1 page(s)" in win.info.text()
    qn = next((out / "transcription").glob("*.qn.txt")).read_text(encoding="utf-8")
    assert "sau" in qn.split()  # the reading picked from the list

    # the picked reading and the page's order are kept with the session: reopened after
    # another session, the export is the same
    win.open_page(tmp_path / "one.png")
    assert win.chosen_readings == {}
    dialogs.items.append(f"{s2.name}  ({s2.folder.name})")  # chosen in Sessions…
    qtbot.mouseClick(win.sessions_button, Qt.LeftButton)
    assert win.session.folder == s2.folder and win.chosen_readings == {item.id: "sau"}


@pytest.mark.parametrize("notes", ["garbage", "list", "fifo"])
def test_damaged_page_notes_are_defaults(make_window, qtbot, tmp_path, dialogs, notes):
    import os

    w = make_window(wait=False)
    win = w.show_annotate()
    s = win.store.create("old page")
    path = s.folder / "page-notes.json"
    if notes == "fifo":
        os.mkfifo(path)  # reading it would block the window for ever
    else:
        path.write_text("{not json" if notes == "garbage" else '["order", 1]')
    dialogs.items.append(f"{s.name}  ({s.folder.name})")
    qtbot.mouseClick(win.sessions_button, Qt.LeftButton)
    assert win.session.folder == s.folder
    assert win.session_order == "columns-rtl" and win.chosen_readings == {}


def test_text_from_an_input_method_goes_to_the_label_box(make_window, qtbot, tmp_path,
                                                         dialogs, monkeypatch):
    from PySide6.QtGui import QInputMethodEvent
    from PySide6.QtWidgets import QApplication

    w = make_window(wait=False)
    _page(tmp_path / "one.png", 0, cols=1, per_col=2)
    monkeypatch.setattr(PageDialog, "exec", lambda self: QDialog.Accepted)
    win = w.show_annotate()
    dialogs.texts.append("one")
    win.open_page(tmp_path / "one.png")
    win.queue.setFocus()
    ev = QInputMethodEvent()
    ev.setCommitString("sáu")  # what a Vietnamese input method hands over
    QApplication.sendEvent(win.queue, ev)
    assert win.label_edit.text() == "sáu"
    model = win.completer_model
    assert "𦒹" in [model.item(r).data(Qt.UserRole) for r in range(model.rowCount())]
