"""Per-page export (nomgui.export): class folders by code point with the original pixels,
CSV, COCO, YOLO and the transcription in reading order."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from nomgui.export import (
    ExportError,
    Page,
    PageGlyph,
    class_folder,
    codepoints,
    export_page,
    export_pages,
    label_of,
    pages_from_items,
    transcription,
)
from nomgui.pages import cut_page
from nomgui.readings import Readings
from tests import pagegen

READINGS = Readings({"𡨸": ["chữ"], "喃": ["nôm", "nam"], "人": ["nhân"]})


def test_names_are_code_points():
    assert codepoints("人") == "U+4EBA" and codepoints("𡨸") == "U+21A38"
    assert class_folder("𡨸") == "U+21A38" and label_of("U+21A38") == "𡨸"
    assert class_folder("ab") == "U+0061_U+0062" and label_of("U+0061_U+0062") == "ab"
    assert class_folder("") == "unlabelled" and label_of("unlabelled") == ""
    assert all(class_folder(c).isascii() for c in "𡨸喃a/\\:*?")


def _page(tmp_path, mode="L", seed=6):
    """A generated two-column page saved in ``mode``; its glyphs in reading order."""
    page = pagegen.make_page(pagegen.BlobSource(), seed, scale=40, spacing="normal",
                             noise="clean", lines=False, cols=2, per_col=3)
    img = Image.fromarray(page.image)
    if mode != "L":
        img = img.convert(mode)
    path = tmp_path / f"scan page {mode}.png"
    img.save(path)
    return path, page


def test_transcription_in_reading_order():
    # two columns, right one first; the left one has an unlabelled glyph
    glyphs = [PageGlyph((100, 0, 20, 20), "𡨸"), PageGlyph((100, 30, 20, 20), "喃"),
              PageGlyph((60, 0, 20, 20), "人", reading="người"), PageGlyph((60, 30, 20, 20))]
    nom, qn = transcription(glyphs, READINGS)
    assert nom == "𡨸喃\n人□\n"
    assert qn == "chữ nôm\nngười ?\n"
    rows = [PageGlyph((0, 0, 20, 20), "𡨸"), PageGlyph((30, 0, 20, 20), "喃"),
            PageGlyph((0, 30, 20, 20), "人")]
    assert transcription(rows, READINGS, order="rows")[0] == "𡨸喃\n人\n"
    assert transcription([], READINGS) == ("", "")


def test_export_page_writes_every_format(tmp_path):
    path, _page_truth = _page(tmp_path)
    boxes = cut_page(np.asarray(Image.open(path)))
    assert len(boxes) == 6
    labels = ["𡨸", "喃", "人", "𡨸", "", "喃"]  # one left unlabelled
    glyphs = [PageGlyph(b, lab) for b, lab in zip(boxes, labels, strict=True)]
    out = tmp_path / "export"
    summary = export_page(out, path, glyphs, READINGS)
    assert (summary.pages, summary.glyphs, summary.unlabelled, summary.classes) == (1, 5, 1, 3)

    # class folders by code point, the original grey pixels of each box
    assert sorted(p.name for p in (out / "glyphs").iterdir()) == ["U+21A38", "U+4EBA",
                                                                  "U+5583"]
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["file", "page", "index", "codepoint", "character", "reading",
                             "source", "x", "y", "w", "h"]
    assert [r["character"] for r in rows] == ["𡨸", "喃", "人", "𡨸", "喃"]
    assert [r["reading"] for r in rows] == ["chữ", "nôm", "nhân", "chữ", "nôm"]
    assert {r["source"] for r in rows} == {str(path)}
    page_pixels = np.asarray(Image.open(path))
    for r in rows:
        x, y, w, h = (int(r[k]) for k in "xywh")
        with Image.open(out / r["file"]) as crop:
            assert crop.mode == "L"
            assert np.array_equal(np.asarray(crop), page_pixels[y:y + h, x:x + w])
        assert r["codepoint"] == codepoints(r["character"])
        assert r["file"].startswith(f"glyphs/{r['codepoint']}/")

    # the page image copied byte for byte; COCO and YOLO agree with the boxes
    coco = json.loads((out / "annotations.coco.json").read_text(encoding="utf-8"))
    image = coco["images"][0]
    assert (out / image["file_name"]).read_bytes() == path.read_bytes()
    assert [a["bbox"] for a in coco["annotations"]] == [list(b) for b in boxes]
    assert [a["reading_order"] for a in coco["annotations"]] == list(range(6))
    cats = {c["id"]: c for c in coco["categories"]}
    assert [cats[a["category_id"]]["character"] for a in coco["annotations"]] == labels
    assert cats[coco["annotations"][4]["category_id"]]["name"] == "unlabelled"
    classes = (out / "classes.txt").read_text(encoding="utf-8").split()
    yolo = (out / "labels" / (image["file_name"].split("/")[1].rsplit(".", 1)[0] + ".txt")
            ).read_text().splitlines()
    assert len(yolo) == 6
    for line, (x, y, w, h), lab in zip(yolo, boxes, labels, strict=True):
        k, cx, cy, fw, fh = (float(v) for v in line.split())
        assert classes[int(k)] == class_folder(lab)
        assert (cx, cy) == pytest.approx(((x + w / 2) / image["width"],
                                          (y + h / 2) / image["height"]), abs=1e-5)
        assert (fw, fh) == pytest.approx((w / image["width"], h / image["height"]), abs=1e-5)

    # the transcription: right column first, a line per column
    stem = image["file_name"].split("/")[1].rsplit(".", 1)[0]
    nom = (out / "transcription" / f"{stem}.nom.txt").read_text(encoding="utf-8")
    qn = (out / "transcription" / f"{stem}.qn.txt").read_text(encoding="utf-8")
    assert nom == "𡨸喃人\n𡨸□喃\n" and qn == "chữ nôm nhân\nchữ ? nôm\n"

    # the trainer reads the class folders as a data set
    from trainer.data.sources import load_folder

    assert load_folder(out / "glyphs", 28, cache_dir=None).num_classes == 3
    with pytest.raises(ExportError, match="not an empty folder"):
        export_page(out, path, glyphs)


def test_colour_pages_keep_their_mode_and_pages_are_named_apart(tmp_path):
    p1, _ = _page(tmp_path, "RGB", seed=1)
    p2, _ = _page(tmp_path, "RGBA", seed=2)
    pages = [Page(p, [PageGlyph(b, "人") for b in cut_page(np.asarray(Image.open(p)
                                                                       .convert("L")))])
             for p in (p1, p2)]
    summary = export_pages(tmp_path / "out", pages)
    assert summary.pages == 2 and summary.glyphs == 12
    modes = {Image.open(f).mode for f in (tmp_path / "out" / "glyphs" / "U+4EBA").iterdir()}
    assert modes == {"RGB", "RGBA"}
    assert len(list((tmp_path / "out" / "labels").iterdir())) == 2
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir())[0].startswith("p001")


def test_failures_leave_nothing_behind(tmp_path):
    path, _ = _page(tmp_path)
    with pytest.raises(ExportError, match="outside the page"):
        export_page(tmp_path / "out", path, [PageGlyph((5000, 5000, 10, 10), "人")])
    with pytest.raises(ExportError, match="cannot read"):
        export_page(tmp_path / "out", tmp_path / "missing.png", [])
    with pytest.raises(ExportError, match="no pages"):
        export_pages(tmp_path / "out", [])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_pages_from_annotation_items(tmp_path):
    from nomgui.annotation import Item

    path, page = _page(tmp_path)
    right, left = page.boxes[:3], page.boxes[3:]
    items = [Item("g1", "g1.png", str(path), list(left[0]), decision="accepted", label="人"),
             Item("g2", "g2.png", str(path), list(right[1]), decision="corrected", label="喃"),
             Item("g3", "g3.png", str(path), list(right[0]), decision="skipped"),
             Item("g4", "g4.png", "loose.png", None, decision="accepted", label="人")]
    (only,) = pages_from_items(items, readings={"g2": "nam"})
    assert only.source == path
    assert [g.box for g in only.glyphs] == [right[0], right[1], left[0]]  # reading order
    assert [g.label for g in only.glyphs] == ["", "喃", "人"]
    assert transcription(only.glyphs, READINGS)[1] == "? nam\nnhân\n"
