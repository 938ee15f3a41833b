"""Synthetic Nôm pages with known character boxes, for measuring the page cutter.

A page is laid out like a woodblock print: vertical columns read top to bottom, right to
left (or horizontal rows, ``layout="rows"``), one glyph per cell, with a chosen glyph size,
column and character spacing, jitter, optional ruling lines and frame, a paper level with a
gradient and blotches, and Gaussian noise. Glyphs come from one of three sources:

* ``crops``: the real woodblock crops (``nom_woodblock_crops.zip``; research data of unclear
  licence, read in place, never committed). Each crop is pasted whole, with the bits of its
  neighbours that the crop box caught; the true box is the character's own ink, found with
  ``trainer.glyphs.clean_print`` (border-touching fragments dropped).
* ``fonts``: Nôm characters rendered with an installed CJK font (fonts-hanazono, ...).
* ``blobs``: generated multi-stroke glyphs, a fifth of them flat bars stacked like 一 二 三
  (several pieces that must be joined into one character); needs nothing installed.

Report (means and medians over seeded pages, per source and per condition)::

    python -m tests.pagegen --pages 40 --report [--source crops fonts blobs] [--layout rows]

``--cutter segment_page`` measures ``nomgui.annotation.segment_page`` instead (rows order).
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

Box = tuple[int, int, int, int]
SHARED_NOM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nom"
CROPS_ZIP = SHARED_NOM / "nom_woodblock_crops.zip"

SCALES = (20, 32, 48, 72)  # cell height in pixels (the real crops are ~21-36 px)
SPACINGS = {"tight": (0.0, 0.08), "normal": (0.1, 0.25), "loose": (0.3, 0.5)}  # x cell size
NOISES = {"clean": 0.0, "noisy": 12.0}  # Gaussian noise sigma, grey levels


@dataclass
class Glyph:
    dark: np.ndarray  # float32 (h, w), ink darkness 0..255 on a cell, paper 0
    box: Box  # the character's own ink inside the cell
    char: str


@dataclass
class Page:
    image: np.ndarray  # uint8 (H, W), dark ink on light paper
    boxes: list[Box]  # true character boxes in reading order
    chars: list[str]
    source: str
    params: dict = field(default_factory=dict)


# -- glyph sources ----------------------------------------------------------------------------
class CropSource:
    """Real woodblock crops from the zip, read in place."""

    name = "crops"

    def __init__(self, path: Path = CROPS_ZIP) -> None:
        self.zip = zipfile.ZipFile(path)
        self.names = sorted(n for n in self.zip.namelist() if n.endswith(".png"))

    def glyph(self, rng: np.random.Generator, height: int) -> Glyph:
        from trainer.glyphs import clean_print

        while True:
            name = self.names[int(rng.integers(len(self.names)))]
            with Image.open(io.BytesIO(self.zip.read(name))) as img:
                crop = img.convert("L")
            f = height / crop.height
            crop = crop.resize((max(3, round(crop.width * f)), height), Image.Resampling.BILINEAR)
            a = np.asarray(crop, dtype=np.float32)
            paper = np.percentile(a, 90)
            dark = np.clip(paper - a, 0, 255)
            kept = clean_print(dark / 255.0) > 0
            if dark.max() > 40 and kept.any() and kept.sum() < kept.size:
                ys, xs = np.nonzero(kept)
                box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                       int(ys.max() - ys.min() + 1))
                cp = name.rsplit("/", 2)[-2]
                return Glyph(np.where(dark > 10, dark, 0), box, chr(int(cp[2:], 16)))


class FontSource:
    """Characters of nom_codepoints.tsv (or a built-in list) drawn with a CJK font."""

    name = "fonts"
    CHARS = "𡨸喃𠊛𡗶𤾓𠀧𠄩𡥵渃𡶀永國家人天地日月山水一二三上下小川"

    def __init__(self) -> None:
        from trainer.data.nom_fonts import installed_fonts

        spec = installed_fonts()[0]  # raises DataError when no CJK font is installed
        self.files = spec.files
        self.index = spec.index
        self.fonts: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}

    def glyph(self, rng: np.random.Generator, height: int) -> Glyph:
        char = self.CHARS[int(rng.integers(len(self.CHARS)))]
        px = max(8, round(height * 0.9))
        plane = 0 if ord(char) < 0x10000 else 1
        font = self.fonts.get((plane, px))
        if font is None:
            font = self.fonts[(plane, px)] = ImageFont.truetype(self.files[plane], px,
                                                                index=self.index)
        img = Image.new("L", (height, height), 0)
        d = ImageDraw.Draw(img)
        b = d.textbbox((0, 0), char, font=font)
        d.text(((height - (b[2] - b[0])) / 2 - b[0], (height - (b[3] - b[1])) / 2 - b[1]),
               char, fill=int(rng.uniform(150, 230)), font=font)
        return _glyph_from_dark(np.asarray(img, dtype=np.float32), char)


class BlobSource:
    """Generated glyphs: 2-4 random strokes, or (a fifth) 1-3 stacked bars like 一 二 三."""

    name = "blobs"

    def glyph(self, rng: np.random.Generator, height: int) -> Glyph:
        w = max(6, round(height * rng.uniform(0.8, 1.0)))
        img = Image.new("L", (w, height), 0)
        d = ImageDraw.Draw(img)
        width = max(1, round(height * rng.uniform(0.06, 0.11)))
        ink = int(rng.uniform(150, 230))
        m = 0.08
        if rng.random() < 0.2:
            n = int(rng.integers(1, 4))
            ys = np.linspace(0.3, 0.7, n) if n > 1 else [rng.uniform(0.4, 0.6)]
            for y in ys:
                x0, x1 = rng.uniform(m, 0.25), rng.uniform(0.75, 1 - m)
                d.line([(x0 * w, y * height), (x1 * w, y * height)], fill=ink, width=width)
            char = "一二三"[n - 1]
        else:
            for _ in range(int(rng.integers(2, 5))):
                pts = rng.uniform(m, 1 - m, size=(3, 2)) * (w, height)
                d.line([tuple(p) for p in pts], fill=ink, width=width, joint="curve")
            char = "?"
        return _glyph_from_dark(np.asarray(img, dtype=np.float32), char)


def _glyph_from_dark(dark: np.ndarray, char: str) -> Glyph:
    ys, xs = np.nonzero(dark > 0.3 * dark.max())
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
           int(ys.max() - ys.min() + 1))
    return Glyph(dark, box, char)


def sources(names: list[str] | None = None) -> dict[str, object]:
    """The glyph sources available here (crops need the zip, fonts a CJK font)."""
    out: dict[str, object] = {}
    for name in names or ["crops", "fonts", "blobs"]:
        try:
            if name == "crops":
                if CROPS_ZIP.is_file():
                    out[name] = CropSource()
            elif name == "fonts":
                out[name] = FontSource()
            elif name == "blobs":
                out[name] = BlobSource()
        except Exception as exc:  # a missing font is reported by the caller, not fatal
            print(f"{name}: not available ({exc})", file=sys.stderr)
    return out


# -- pages ------------------------------------------------------------------------------------
def make_page(source, seed: int, *, scale: int | None = None, spacing: str | None = None,
              noise: str | None = None, lines: bool | None = None, cols: int | None = None,
              per_col: int | None = None, layout: str = "columns") -> Page:
    """One synthetic page; unset conditions are drawn from ``seed``. ``layout="rows"`` lays
    horizontal rows read left to right, top to bottom, instead of columns."""
    rng = np.random.default_rng(seed)
    scale = scale or int(rng.choice(SCALES))
    spacing = spacing or str(rng.choice(list(SPACINGS)))
    noise = noise or str(rng.choice(list(NOISES)))
    lines = bool(rng.random() < 0.5) if lines is None else lines
    cols = cols or int(rng.integers(5, 10))
    per_col = per_col or int(rng.integers(8, 14))
    lo, hi = SPACINGS[spacing]
    gap_along = scale * rng.uniform(lo, hi)  # between characters of a column
    gap_across = scale * rng.uniform(max(lo, 0.15), hi + 0.3)  # between columns
    glyphs = [[source.glyph(rng, scale) for _ in range(per_col)] for _ in range(cols)]
    if cols > 1 and rng.random() < 0.5:  # the last column is often short
        glyphs[-1] = glyphs[-1][: int(rng.integers(1, per_col + 1))]
    cell_w = max(g.dark.shape[1] for col in glyphs for g in col)
    margin = int(scale * rng.uniform(0.6, 1.5))
    across = margin * 2 + cols * cell_w + (cols - 1) * gap_across
    along = margin * 2 + per_col * scale + (per_col - 1) * gap_along
    width, height = (int(across), int(along)) if layout == "columns" else (int(along), int(across))
    dark = np.zeros((height, width), np.float32)
    boxes: list[Box] = []
    chars: list[str] = []
    for c, col in enumerate(glyphs):
        for r, g in enumerate(col):
            gh, gw = g.dark.shape
            a = margin + c * (cell_w + gap_across) + (cell_w - gw) / 2 + rng.normal(0, 0.03) * scale
            b = margin + r * (scale + gap_along) + rng.normal(0, 0.02) * scale
            if layout == "columns":
                x, y = round(width - a - gw), round(b)  # right to left
            else:
                x, y = round(b), round(a)
            x, y = min(max(x, 0), width - gw), min(max(y, 0), height - gh)
            np.maximum(dark[y:y + gh, x:x + gw], g.dark, out=dark[y:y + gh, x:x + gw])
            bx, by, bw, bh = g.box
            boxes.append((x + bx, y + by, bw, bh))
            chars.append(g.char)
    if lines:  # ruling lines between columns (rows) and a frame round the text
        lw = max(1, round(scale / 18))
        level = rng.uniform(120, 200)
        for c in range(cols + 1):
            a = margin + c * (cell_w + gap_across) - gap_across / 2
            a = round(width - a if layout == "columns" else a)
            span = slice(max(0, a - lw // 2), a + lw - lw // 2)
            if layout == "columns":
                dark[margin // 3: height - margin // 3, span] = level
            else:
                dark[span, margin // 3: width - margin // 3] = level
        t = margin // 3
        if layout == "columns":
            dark[t: t + lw, t: width - t] = level
            dark[height - t - lw: height - t, t: width - t] = level
        else:
            dark[t: height - t, t: t + lw] = level
            dark[t: height - t, width - t - lw: width - t] = level
    paper = rng.uniform(185, 240)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = (rng.normal(0, 25) * (xx / width - 0.5) + rng.normal(0, 25) * (yy / height - 0.5))
    blotch = ndimage.gaussian_filter(rng.normal(0, 1, (height, width)).astype(np.float32),
                                     scale * 2)
    blotch -= blotch.mean()  # a stain, not a shift of the whole paper
    blotch *= rng.uniform(0, 12) / max(float(blotch.std()), 1e-6)
    ink_level = rng.uniform(0.75, 1.0)
    img = paper + gradient + blotch - dark * ink_level * (paper / 255.0)
    img += rng.normal(0, NOISES[noise], img.shape)
    params = {"scale": scale, "spacing": spacing, "noise": noise, "lines": lines,
              "cols": cols, "per_col": per_col, "layout": layout}
    return Page(np.clip(img, 0, 255).astype(np.uint8), boxes, chars, source.name, params)


# -- scoring ----------------------------------------------------------------------------------
def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def score(truth: list[Box], found: list[Box], threshold: float = 0.5) -> dict[str, float]:
    """Recall and precision at IoU >= threshold (one-to-one, best pairs first), and reading
    order: of the consecutive true characters both found, the fraction whose boxes are
    consecutive, in the same order, in the output."""
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)
                    if iou(t, f) >= threshold), reverse=True)
    match: dict[int, int] = {}
    used: set[int] = set()
    for _v, i, j in pairs:
        if i not in match and j not in used:
            match[i] = j
            used.add(j)
    both = [(match[i], match[i + 1]) for i in range(len(truth) - 1)
            if i in match and i + 1 in match]
    return {"recall": len(match) / max(len(truth), 1),
            "precision": len(match) / max(len(found), 1) if found else float(not truth),
            "order": sum(b == a + 1 for a, b in both) / len(both) if both else 1.0,
            "truth": len(truth), "found": len(found), "matched": len(match),
            "pairs": len(both), "in_order": sum(b == a + 1 for a, b in both)}


# -- report -----------------------------------------------------------------------------------
def _cutter(name: str, layout: str):
    order = "columns-rtl" if layout == "columns" else "rows"
    if name == "segment_page":  # whatever nomgui.annotation.segment_page does now
        from nomgui.annotation import segment_page

        return segment_page
    from nomgui.pages import cut_page

    return lambda gray: cut_page(gray, order=order)


def evaluate(source, seeds, cutter: str = "new", layout: str = "columns", **conditions):
    """Scores of one source over seeded pages; returns (list of score dicts, seconds)."""
    cut = _cutter(cutter, layout)
    out, spent = [], 0.0
    for seed in seeds:
        page = make_page(source, seed, layout=layout, **conditions)
        t = time.perf_counter()
        found = cut(page.image)
        spent += time.perf_counter() - t
        s = score(page.boxes, found)
        s.update(page.params)
        out.append(s)
    return out, spent


def summarise(rows: list[dict]) -> str:
    def col(k):
        v = np.array([r[k] for r in rows], dtype=np.float64)
        return f"{100 * v.mean():5.1f} {100 * np.median(v):5.1f}"
    return (f"{len(rows):4d} pages {sum(r['truth'] for r in rows):6d} chars | recall "
            f"{col('recall')} | precision {col('precision')} | order {col('order')}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.pagegen", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--pages", type=int, default=40, help="pages per source and condition")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source", nargs="+", default=["crops", "fonts", "blobs"])
    p.add_argument("--layout", choices=["columns", "rows"], default="columns")
    p.add_argument("--cutter", choices=["new", "segment_page"], default="new")
    p.add_argument("--report", action="store_true", help="print the figures")
    p.add_argument("--save", type=Path, help="write page PNGs and truth JSON here")
    a = p.parse_args(argv)
    found = sources(a.source)
    if a.save:
        import json

        a.save.mkdir(parents=True, exist_ok=True)
        for name, src in found.items():
            for s in range(a.pages):
                page = make_page(src, a.seed + s, layout=a.layout)
                Image.fromarray(page.image).save(a.save / f"{name}_{s:03d}.png")
                (a.save / f"{name}_{s:03d}.json").write_text(json.dumps(
                    {"boxes": page.boxes, "chars": page.chars, **page.params},
                    ensure_ascii=False))
    if not a.report:
        return 0
    print(f"cutter {a.cutter}, layout {a.layout}, {a.pages} pages per condition (condition k: "
          f"seeds {a.seed} + 1000 k + 0..{a.pages - 1}); recall / precision / order as mean "
          "median (%) over pages, IoU >= 0.5")
    for name, src in found.items():
        everything = []
        print(f"\n[{name}]")
        grid = itertools.product(SCALES, SPACINGS, NOISES)
        for k, (scale, spacing, noise) in enumerate(grid):
            seeds = range(a.seed + 1000 * k, a.seed + 1000 * k + a.pages)  # other pages each
            rows, spent = evaluate(src, seeds, a.cutter, a.layout, scale=scale,
                                   spacing=spacing, noise=noise)
            everything += rows
            print(f"  scale {scale:2d} {spacing:6s} {noise:5s} {summarise(rows)} "
                  f"| {1000 * spent / len(rows):4.0f} ms/page")
        print(f"  all {' ' * 17}{summarise(everything)}")
        lined = [r for r in everything if r["lines"]]
        plain = [r for r in everything if not r["lines"]]
        print(f"  with ruling lines {summarise(lined)}\n  without lines     {summarise(plain)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
