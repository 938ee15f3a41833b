"""Annotation sessions (saved as you go, undo, export) and page segmentation; no Qt."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from PIL import Image

from nomgui.annotation import AnnotationError, Session, SessionStore, segment_page
from tests.conftest import draw_glyph, glyph_strokes


def make_page(path, rows: int = 2, cols: int = 4, cell: int = 90, seed: int = 0):
    """Generated multi-stroke glyphs on a page, one per cell; returns the cell count."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", (cols * cell + 40, rows * cell + 40), 235)  # grey paper
    for r in range(rows):
        for c in range(cols):
            glyph = draw_glyph(glyph_strokes(rng), rng, size=cell - 24)
            page.paste(glyph, (20 + c * cell + 12, 20 + r * cell + 12),
                       Image.eval(glyph, lambda v: 255 - v))  # ink only, paper shows through
    page.save(path)
    return rows * cols


def test_segment_page_finds_each_glyph_in_reading_order(tmp_path):
    n = make_page(tmp_path / "page.png")
    gray = np.asarray(Image.open(tmp_path / "page.png"))
    boxes = segment_page(gray)
    assert len(boxes) == n
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in boxes]
    assert [round((cy - 20) // 90) for _, cy in centres] == [0] * 4 + [1] * 4  # rows in order
    assert all(a[0] < b[0] for a, b in itertools.pairwise(centres[:4]))
    assert segment_page(np.full((50, 50), 240, np.uint8)) == []  # blank page: no boxes


def _session(tmp_path, n: int = 4) -> Session:
    rng = np.random.default_rng(1)
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    for i in range(n):
        draw_glyph(glyph_strokes(rng), rng).save(folder / f"g{i}.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    s = SessionStore(tmp_path / "annotations").create("test")
    problems = s.add_folder(folder)
    assert len(problems) == 1 and "broken.png" in problems[0]  # .txt is not even tried
    return s


def test_decisions_are_saved_undone_and_exported(tmp_path):
    s = _session(tmp_path)
    ids = [i.id for i in s.items]
    s.set_proposals({ids[0]: [["a", 0.9], ["b", 0.1]], ids[1]: [["b", 0.4], ["a", 0.3]],
                     ids[2]: [["a", 0.6]], ids[3]: [["b", 0.55]]})
    assert [i.id for i in s.queue()] == [ids[1], ids[3], ids[2], ids[0]]  # least sure first
    s.decide(ids[1], "accepted")
    s.decide(ids[3], "corrected", "a")
    s.decide(ids[2], "corrected", "new label")
    s.decide(ids[0], "skipped")
    with pytest.raises(AnnotationError, match="type or pick"):
        s.decide(ids[0], "corrected", "  ")
    assert s.undo().id == ids[0] and s.get(ids[0]).decision == "pending"

    again = Session.open(s.folder)  # everything was on disk already
    assert [(i.decision, i.label) for i in again.items] == [
        ("pending", ""), ("accepted", "b"), ("corrected", "new label"), ("corrected", "a")]

    assert again.export(tmp_path / "out") == 3
    rows = list(csv.DictReader((tmp_path / "out" / "manifest.csv").open(encoding="utf-8")))
    assert {r["label"] for r in rows} == {"a", "b", "new label"}
    assert all((tmp_path / "out" / r["file"]).is_file() for r in rows)
    assert {r["decision"] for r in rows} == {"accepted", "corrected"}
    from trainer.data.sources import load_folder  # the trainer reads the export

    glyphs = load_folder(tmp_path / "out", 28, cache_dir=None)
    assert glyphs.num_classes == 3
    with pytest.raises(AnnotationError, match="not empty"):
        again.export(tmp_path / "out")


def test_cut_boxes_and_a_damaged_session(tmp_path):
    make_page(tmp_path / "page.png", rows=1, cols=3)
    s = SessionStore(tmp_path / "a").create("page")
    boxes = segment_page(np.asarray(Image.open(tmp_path / "page.png")))
    assert s.add_boxes(tmp_path / "page.png", boxes) == 3
    item = s.items[0]
    assert item.box == list(boxes[0]) and s.path(item).is_file()
    assert Image.open(s.path(item)).size == (boxes[0][2], boxes[0][3])
    (s.folder / "session.json").write_text("{ truncated")
    with pytest.raises(AnnotationError, match=r"cannot be read.*glyph files are kept"):
        Session.open(s.folder)
    assert "(unreadable)" in SessionStore(tmp_path / "a").list()[0][1]
