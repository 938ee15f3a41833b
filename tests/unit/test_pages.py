"""The page cutter (nomgui.pages), measured on synthetic pages with known boxes, its
command line, reading order, and the Qt-free box editing helpers."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nomgui.pages import (
    BoxEdit,
    cut_page,
    load_gray,
    merge_boxes,
    reading_order,
    split_box,
)
from tests import pagegen

GOALS = {"recall": 0.95, "precision": 0.95, "order": 0.98}


def _measure(source, conditions, layout="columns"):
    """Scores pooled over the pages' characters: recall, precision, order."""
    total = {"truth": 0, "found": 0, "matched": 0, "pairs": 0, "in_order": 0}
    for seed, cond in conditions:
        page = pagegen.make_page(source, seed, layout=layout, **cond)
        boxes = cut_page(page.image, order="columns-rtl" if layout == "columns" else "rows")
        s = pagegen.score(page.boxes, boxes)
        for k in total:
            total[k] += s[k]
    return {"recall": total["matched"] / total["truth"],
            "precision": total["matched"] / max(total["found"], 1),
            "order": total["in_order"] / max(total["pairs"], 1)}


def _conditions(n: int, seed: int = 0):
    """n seeded pages over every scale, spacing and noise level, half with ruling lines."""
    grid = [(sc, sp, no) for sc in pagegen.SCALES for sp in pagegen.SPACINGS
            for no in pagegen.NOISES]
    rng = random.Random(seed)
    rng.shuffle(grid)
    return [(seed + i, {"scale": sc, "spacing": sp, "noise": no, "lines": i % 2 == 0})
            for i, (sc, sp, no) in enumerate((grid * (n // len(grid) + 1))[:n])]


def _assert_goals(scores):
    for k, goal in GOALS.items():
        assert scores[k] >= goal, f"{k} {scores[k]:.3f} < {goal} ({scores})"


def test_cutter_meets_the_goals_on_generated_glyphs():
    """Generated glyphs (a fifth of them stacked bars, like 一 二 三, whose pieces must be
    joined): needs nothing installed."""
    _assert_goals(_measure(pagegen.BlobSource(), _conditions(10, seed=500)))


@pytest.mark.skipif(not pagegen.CROPS_ZIP.is_file(), reason="needs the real woodblock crops")
def test_cutter_meets_the_goals_on_real_woodblock_crops():
    _assert_goals(_measure(pagegen.CropSource(), _conditions(12, seed=700)))


def test_cutter_meets_the_goals_on_a_cjk_font():
    from trainer.data.sources import DataError

    try:
        source = pagegen.FontSource()
    except DataError as exc:  # names the packages to install
        pytest.skip(f"no CJK font installed ({exc})")
    _assert_goals(_measure(source, _conditions(8, seed=900)))


def test_rows_order_reads_left_to_right_top_to_bottom():
    _assert_goals(_measure(pagegen.BlobSource(), _conditions(4, seed=1100), layout="rows"))


def test_blank_and_odd_pages():
    assert cut_page(np.full((80, 60), 230, np.uint8)) == []
    assert cut_page(np.zeros((0, 0), np.uint8)) == []
    one = np.full((60, 60), 230, np.uint8)
    one[20:40, 25:35] = 20
    assert cut_page(one) == [(25, 20, 10, 20)]
    with pytest.raises(ValueError, match="order"):
        cut_page(one, order="ltr-columns")
    assert cut_page(np.stack([one] * 3, axis=2)) == [(25, 20, 10, 20)]  # colour


def test_segment_page_is_the_new_cutter():
    from nomgui.annotation import segment_page

    page = pagegen.make_page(pagegen.BlobSource(), 3, scale=32, lines=False)
    assert segment_page(page.image, order="columns-rtl") == cut_page(page.image)


def test_command_line_prints_the_boxes_in_reading_order(tmp_path):
    page = pagegen.make_page(pagegen.BlobSource(), 7, scale=32, spacing="normal",
                             noise="clean", lines=True)
    Image.fromarray(page.image).convert("RGBA").save(tmp_path / "page.png")
    out = subprocess.run([sys.executable, "-m", "nomgui.pages", str(tmp_path / "page.png"),
                          "--json"], capture_output=True, text=True, check=True, timeout=120)
    boxes = json.loads(out.stdout)["boxes"]
    assert boxes == [list(b) for b in cut_page(load_gray(tmp_path / "page.png"))]
    s = pagegen.score(page.boxes, [tuple(b) for b in boxes])
    assert s["recall"] >= 0.95 and s["order"] >= 0.98
    rows = subprocess.run([sys.executable, "-m", "nomgui.pages", str(tmp_path / "page.png"),
                           "--order", "rows", "--json"], capture_output=True, text=True,
                          check=True, timeout=120)
    assert sorted(json.loads(rows.stdout)["boxes"]) == sorted(boxes)  # same boxes, other order
    bad = subprocess.run([sys.executable, "-m", "nomgui.pages", str(tmp_path / "nope.png")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_no_qt_in_the_page_and_export_modules():
    code = ("import sys, nomgui.pages, nomgui.export; "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide', 'PyQt', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_reading_order_of_shuffled_boxes():
    page = pagegen.make_page(pagegen.BlobSource(), 11, scale=32, spacing="normal")
    shuffled = list(page.boxes)
    random.Random(0).shuffle(shuffled)
    assert reading_order(shuffled) == page.boxes
    rows = pagegen.make_page(pagegen.BlobSource(), 12, scale=32, spacing="normal",
                             layout="rows")
    shuffled = list(rows.boxes)
    random.Random(1).shuffle(shuffled)
    assert reading_order(shuffled, "rows") == rows.boxes
    assert reading_order([]) == []


def _two_glyphs() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Two blocks of ink one above the other, with a light gap between them at y 48-52."""
    g = np.full((100, 60), 235, np.uint8)
    g[10:48, 15:45] = 30
    g[52:90, 12:48] = 30
    return g, (10, 5, 45, 90)


def test_merge_and_split():
    assert merge_boxes([(10, 10, 5, 5), (20, 0, 5, 30)]) == (10, 0, 15, 30)
    with pytest.raises(ValueError):
        merge_boxes([])
    g, box = _two_glyphs()
    top, bottom = split_box(g, box, "y")
    assert top == (15, 10, 30, 38) and bottom == (12, 52, 36, 38)
    left, right = split_box(g, box, "x")
    assert left[0] + left[2] <= right[0]
    assert split_box(g, (0, 0, 2, 2)) == [(0, 0, 2, 2)]  # too small: unchanged


def test_box_edit_undo_redo():
    g, box = _two_glyphs()
    e = BoxEdit([box, (100, 0, 10, 10)])
    assert not e.can_undo()
    e.split(g, 0)  # [top, bottom, other]
    assert len(e.boxes) == 3
    e.merge([0, 1])
    assert e.boxes[0] == (12, 10, 36, 80)
    e.remove([1])
    assert e.boxes == [(12, 10, 36, 80)]
    e.add((100, 50, 10, 10))  # a column further right: read first
    assert e.boxes == [(100, 50, 10, 10), (12, 10, 36, 80)]
    e.move(1, (13, 11, 36, 80))
    assert e.boxes == [(100, 50, 10, 10), (13, 11, 36, 80)]
    history = []
    while e.can_undo():
        history.append(list(e.boxes))
        e.undo()
    assert e.boxes == [box, (100, 0, 10, 10)]
    for state in reversed(history):
        e.redo()
        assert e.boxes == state
    e.undo()
    e.set([])
    assert not e.can_redo() and e.boxes == []
