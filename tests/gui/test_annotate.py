"""Annotation in the app: the model proposes, the user accepts / corrects / undoes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from nomgui.annotateui import PageDialog
from nomgui.annotation import Session
from tests.gui.test_pageview import click, drag
from tests.unit.test_annotation import make_page

pytestmark = pytest.mark.gui


def _unlabelled_digits(resources, folder):
    """The starter digits, turned and thickened a little, as unlabelled files."""
    folder.mkdir()
    truth = {}
    for digit in "0123456789":
        img = Image.open(resources / "starter" / "digits" / digit / "serif.png").convert("L")
        img = img.rotate(12, fillcolor=255, expand=True)
        name = f"scan_{ord(digit) * 7 % 97:02d}.png"
        img.save(folder / name)
        truth[name] = digit
    Image.new("L", (40, 40), 255).save(folder / "blank.png")  # nothing to recognise
    (folder / "readme.txt").write_text("not a glyph")
    return truth


def test_annotate_a_folder_accept_correct_undo_export_and_join(
        make_window, qtbot, resources, tmp_path, dialogs):
    w = make_window()
    truth = _unlabelled_digits(resources, tmp_path / "scans")
    win = w.show_annotate()
    dialogs.texts.append("scans")
    win.open_folder(tmp_path / "scans")
    s = win.session
    assert len(s.items) == 11
    qtbot.waitUntil(lambda: sum(bool(i.proposals) for i in s.items) == 10, timeout=30000)

    queue = s.queue()
    sure = [i.confidence for i in queue[:-1]]
    assert sure == sorted(sure)  # least confident first...
    assert not queue[-1].proposals and "no ink" in queue[-1].problem  # ...blank last
    assert win.current.id == queue[0].id  # the least confident is shown first
    right = sum(i.proposals[0][0] == truth.get(Path(i.source).name) for i in s.items
                if i.proposals)
    assert right >= 7  # the bundled model knows most of these digits

    first = win.current
    qtbot.keyClick(win.queue, Qt.Key_Return)  # Enter accepts the proposal
    assert s.get(first.id).decision == "accepted"
    second = win.current
    assert second.id != first.id
    win.pick(1)  # key 2: the second candidate
    assert (s.get(second.id).decision, s.get(second.id).label) == (
        "corrected", second.proposals[1][0])
    third = win.current
    win.label_edit.setText("a new glyph")
    win.correct_typed()
    assert s.get(third.id).label == "a new glyph"
    win.undo()
    assert s.get(third.id).decision == "pending" and win.current.id == third.id
    win.label_edit.setText("a new glyph")
    win.correct_typed()
    win.skip_current()

    n = win.export(tmp_path / "export")
    assert n == 3
    rows = list(csv.DictReader((tmp_path / "export" / "manifest.csv").open(encoding="utf-8")))
    assert {r["label"] for r in rows} >= {"a new glyph"}
    assert all(r["source_image"].startswith(str(tmp_path / "scans")) for r in rows)

    before = sum(len(c.examples) for c in w.classset.classes)
    win.join_classset()
    assert sum(len(c.examples) for c in w.classset.classes) == before + 3
    assert w.classset.find_by_name("a new glyph") is not None
    qtbot.waitUntil(lambda: w.fitted, timeout=30000)
    win.join_classset()  # nothing is added twice
    assert sum(len(c.examples) for c in w.classset.classes) == before + 3
    assert "broken" not in " ".join(dialogs.warnings)

    # closing mid-way loses nothing: the session reopens as it was
    again = Session.open(s.folder)
    assert again.counts() == s.counts() and again.counts()["pending"] == 7


def test_cut_a_page_into_glyphs_with_corrections(make_window, qtbot, tmp_path, dialogs,
                                                 monkeypatch):
    w = make_window()
    make_page(tmp_path / "page.png", rows=1, cols=4)

    def correct(self) -> int:  # the user removes one box and drags a new one
        self.show()
        qtbot.waitExposed(self)
        v = self.view
        boxes = v.boxes()
        assert len(boxes) == 4
        x, y, bw, bh = boxes[0]
        click(qtbot, v, x + bw / 2, y + bh / 2)
        qtbot.keyClick(v, Qt.Key_Delete)
        drag(v, (5, 5), (35, 35))
        assert len(v.boxes()) == 4 and (5, 5, 30, 30) in v.boxes()
        return QDialog.Accepted

    monkeypatch.setattr(PageDialog, "exec", correct)
    win = w.show_annotate()
    dialogs.texts.append("page one")
    win.open_page(tmp_path / "page.png")
    assert win.session is not None and len(win.session.items) == 4
    assert all(i.box for i in win.session.items)
    qtbot.waitUntil(lambda: all(i.proposals for i in win.session.items
                                if i.box != [5, 5, 30, 30]), timeout=30000)


def test_a_bad_page_file_is_a_message(make_window, tmp_path, dialogs):
    w = make_window()
    bad = tmp_path / "page.png"
    bad.write_text("not an image")
    assert w.show_annotate().open_page(bad) is None
    assert any("not an image" in m for m in dialogs.warnings)
