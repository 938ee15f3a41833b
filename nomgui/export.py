"""Export annotated pages: transcription, COCO, YOLO, a CSV and class folders. No Qt here.

The input is plain data, so the GUI, a script or a test can call it: for each page, the page
image file and its glyphs in reading order (box, label, and the reading the user chose).
``export_pages(target, pages, readings)`` writes, into a new or empty folder (built beside
it and moved in whole, so a failed export leaves nothing half-written)::

    glyphs/U+XXXX/<page>_<n>.png   each labelled glyph cut from the page with its original
                                   pixels and mode (grey stays grey); one folder per class,
                                   named by code point (U+4EBA; U+XXXX_U+YYYY for a label of
                                   several characters), safe on every file system and in zip
                                   tools. ``nomgui-train --dataset folder --data-root
                                   <target>/glyphs`` reads it as a data set.
    images/<page>.<ext>            the page images, copied byte for byte
    labels/<page>.txt              YOLO boxes: class x_centre y_centre width height (0..1)
    classes.txt                    YOLO class names (line n = class n), as the folders
    annotations.coco.json          COCO boxes, images and categories (with character and
                                   code point), each annotation with its reading-order index
    manifest.csv                   one row per glyph: file, page, index, codepoint,
                                   character, reading, source, x, y, w, h
    transcription/<page>.nom.txt   the page's text in reading order, a line per column
    transcription/<page>.qn.txt    the same in quốc ngữ readings (a word per character)

Glyphs without a label are kept in the transcription (as □ and "?"), in COCO and YOLO as
the class ``unlabelled`` (a detector must not learn that they are paper), and nowhere else.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from nomgui.pages import ORDERS, Box, reading_lines

UNLABELLED = "unlabelled"
MISSING_CHAR = "□"  # U+25A1 WHITE SQUARE: a glyph nobody labelled yet
MISSING_READING = "?"
_PNG_MODES = {"1", "L", "LA", "I;16", "RGB", "RGBA", "P"}


class ExportError(RuntimeError):
    """The export cannot be written; the message is for the user."""


@dataclass(frozen=True)
class PageGlyph:
    """One glyph of a page."""

    box: Box  # x, y, w, h in the page's pixels
    label: str = ""  # the character (or a class name); "" = not labelled
    reading: str = ""  # the quốc ngữ reading chosen for it; "" = its first known reading


@dataclass
class Page:
    """A page image file and its glyphs, in reading order."""

    source: Path
    glyphs: list[PageGlyph] = field(default_factory=list)
    order: str = "columns-rtl"  # how the page reads (for the transcription's lines)


@dataclass
class Summary:
    pages: int = 0
    glyphs: int = 0  # labelled glyphs written to class folders
    unlabelled: int = 0
    classes: int = 0


# -- names ------------------------------------------------------------------------------------
def codepoints(label: str) -> str:
    """'人' -> 'U+4EBA'; several characters -> 'U+0061 U+0062'; '' -> ''."""
    return " ".join(f"U+{ord(c):04X}" for c in unicodedata.normalize("NFC", label))


def class_folder(label: str) -> str:
    """The folder name of a class: its code points joined by '_' ('U+4EBA', 'U+2A6A5',
    'U+0061_U+0062'). ASCII only and reversible (``label_of``)."""
    if not label:
        return UNLABELLED
    return codepoints(label).replace(" ", "_")


def label_of(folder: str) -> str:
    """The label of a class folder name made by ``class_folder``."""
    if folder == UNLABELLED:
        return ""
    return "".join(chr(int(part[2:], 16)) for part in folder.split("_"))


def reading_of(glyph: PageGlyph, readings=None) -> str:
    """The glyph's chosen reading, else the first known reading of its character (from a
    ``nomgui.readings.Readings`` or a dict char -> [readings]), else ''."""
    if glyph.reading:
        return glyph.reading
    if readings is None or len(glyph.label) != 1:
        return ""
    known = readings.of(glyph.label) if hasattr(readings, "of") else readings.get(glyph.label, [])
    return known[0] if known else ""


# -- per page ---------------------------------------------------------------------------------
def transcription(glyphs: Sequence[PageGlyph], readings=None, order: str = "columns-rtl"
                  ) -> tuple[str, str]:
    """(Nôm text, quốc ngữ text) of a page's glyphs in reading order: a line per column
    (``order="rows"``: per row), unlabelled glyphs as □ and unknown readings as ?."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    nom, qn = [], []
    for line in reading_lines([g.box for g in glyphs], order, keep_order=True):
        nom.append("".join(glyphs[i].label or MISSING_CHAR for i in line))
        qn.append(" ".join(reading_of(glyphs[i], readings) or MISSING_READING for i in line))
    return "\n".join(nom) + ("\n" if nom else ""), "\n".join(qn) + ("\n" if qn else "")


def yolo_lines(glyphs: Sequence[PageGlyph], width: int, height: int,
               class_ids: dict[str, int]) -> list[str]:
    """YOLO rows 'class cx cy w h' (fractions of the page), one per glyph."""
    out = []
    for g in glyphs:
        x, y, w, h = g.box
        out.append(f"{class_ids[g.label]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} "
                   f"{w / width:.6f} {h / height:.6f}")
    return out


def crop(image: Image.Image, box: Box) -> Image.Image:
    """The box's pixels as they are in the page (mode kept where PNG can store it; boxes
    reaching past the page are clipped to it)."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(image.width, x + w), min(image.height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ExportError(f"box {tuple(box)} lies outside the page ({image.width} x "
                          f"{image.height})")
    part = image.crop((x0, y0, x1, y1))
    if part.mode not in _PNG_MODES:
        part = part.convert("RGBA" if "A" in part.getbands() else "RGB")
    return part


def pages_from_items(items, order: str = "columns-rtl", readings: dict | None = None
                     ) -> list[Page]:
    """Pages from annotation items (``nomgui.annotation.Item``, or anything with
    ``source``, ``box``, ``label`` and ``decision``): the items cut from each page image
    (``box`` set), in reading order; a glyph counts as labelled when it was accepted or
    corrected. ``readings``: item id -> the reading chosen for it, if the GUI keeps one.
    Loaded glyph images (no box) are not pages and are left out."""
    by_source: dict[str, list] = {}
    for item in items:
        if item.box:
            by_source.setdefault(str(item.source), []).append(item)
    pages = []
    for source, its in by_source.items():
        boxes = [tuple(int(v) for v in i.box) for i in its]
        glyphs = []
        for line in reading_lines(boxes, order):
            for k in line:
                i = its[k]
                labelled = i.decision in ("accepted", "corrected") and i.label
                glyphs.append(PageGlyph(boxes[k], i.label if labelled else "",
                                        (readings or {}).get(getattr(i, "id", ""), "")))
        pages.append(Page(Path(source), glyphs, order))
    return pages


# -- the whole export -------------------------------------------------------------------------
def export_pages(target: Path, pages: Sequence[Page], readings=None) -> Summary:
    """Write the export of ``pages`` into ``target`` (new or empty); see the module's
    docstring for the layout. ``readings``: ``nomgui.readings.Readings`` (or a dict char ->
    list of readings) for glyphs without a chosen reading."""
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} is not an empty folder; choose a new one")
    if not pages:
        raise ExportError("no pages to export")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        summary = _write(tmp, pages, readings)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"cannot write the export to {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def export_page(target: Path, source: Path, glyphs: Sequence[PageGlyph], readings=None,
                order: str = "columns-rtl") -> Summary:
    """One page: ``export_pages(target, [Page(source, glyphs, order)], readings)``."""
    return export_pages(target, [Page(Path(source), list(glyphs), order)], readings)


def _page_names(pages: Sequence[Page]) -> list[str]:
    """A unique, file-system-safe stem per page ('p001_scan12')."""
    out = []
    for i, p in enumerate(pages, start=1):
        stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_"
                       for c in Path(p.source).stem)[:60]
        out.append(f"p{i:03d}_{stem}" if stem else f"p{i:03d}")
    return out


def _write(root: Path, pages: Sequence[Page], readings) -> Summary:
    for sub in ("glyphs", "images", "labels", "transcription"):
        (root / sub).mkdir(parents=True)
    labels = sorted({g.label for p in pages for g in p.glyphs if g.label})
    has_unlabelled = any(not g.label for p in pages for g in p.glyphs)
    names = [class_folder(lab) for lab in labels] + ([UNLABELLED] if has_unlabelled else [])
    class_ids = {lab: i for i, lab in enumerate(labels)}
    if has_unlabelled:
        class_ids[""] = len(labels)
    (root / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    coco: dict = {
        "info": {"description": "nomgui page export", "version": "1"},
        "images": [], "annotations": [],
        "categories": [{"id": class_ids[lab] + 1, "name": class_folder(lab), "character": lab,
                        "codepoint": codepoints(lab), "supercategory": "glyph"}
                       for lab in labels],
    }
    if has_unlabelled:
        coco["categories"].append({"id": class_ids[""] + 1, "name": UNLABELLED, "character": "",
                                   "codepoint": "", "supercategory": "glyph"})
    summary = Summary(pages=len(pages), classes=len(labels))
    rows = []
    ann_id = 0
    for page_id, (page, name) in enumerate(zip(pages, _page_names(pages), strict=True),
                                           start=1):
        source = Path(page.source)
        try:
            with Image.open(source) as img:
                img.load()
                image = img.copy()
        except (OSError, ValueError) as exc:
            raise ExportError(f"{source}: cannot read the page image ({exc})") from exc
        image_file = f"images/{name}{source.suffix.lower() or '.png'}"
        shutil.copyfile(source, root / image_file)
        coco["images"].append({"id": page_id, "file_name": image_file, "width": image.width,
                               "height": image.height, "source": str(source)})
        for index, g in enumerate(page.glyphs):
            x, y, w, h = (int(v) for v in g.box)
            ann_id += 1
            coco["annotations"].append({
                "id": ann_id, "image_id": page_id, "category_id": class_ids[g.label] + 1,
                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "reading_order": index,
                "reading": reading_of(g, readings)})
            if not g.label:
                summary.unlabelled += 1
                continue
            folder = class_folder(g.label)
            rel = f"glyphs/{folder}/{name}_{index + 1:04d}.png"
            (root / "glyphs" / folder).mkdir(exist_ok=True)
            crop(image, (x, y, w, h)).save(root / rel)
            rows.append([rel, image_file, index, codepoints(g.label), g.label,
                         reading_of(g, readings), str(source), x, y, w, h])
            summary.glyphs += 1
        (root / "labels" / f"{name}.txt").write_text(
            "".join(line + "\n" for line in yolo_lines(page.glyphs, image.width, image.height,
                                                       class_ids)), encoding="utf-8")
        nom, qn = transcription(page.glyphs, readings, page.order)
        (root / "transcription" / f"{name}.nom.txt").write_text(nom, encoding="utf-8")
        (root / "transcription" / f"{name}.qn.txt").write_text(qn, encoding="utf-8")
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "page", "index", "codepoint", "character", "reading", "source",
                    "x", "y", "w", "h"])
        w.writerows(rows)
    (root / "annotations.coco.json").write_text(json.dumps(coco, ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    return summary
