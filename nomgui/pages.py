"""Cut a page of Nôm (or any CJK) text into character boxes, in reading order. No Qt here.

Nôm pages read in vertical columns, top to bottom, right to left; ``order="rows"`` reads
horizontal rows, left to right, top to bottom (the same method on the transposed page).

The method (``cut_page``):

1. Ink: the paper level is estimated by a grey-level closing wider than a stroke (it erases
   the strokes, so gradients and stains stay) and subtracted; Otsu's threshold on what is
   left, floored at a few times the paper's noise, separates ink from paper; specks go.
2. Ruling lines and frames: ink pieces far longer than a character is tall lose the pixels
   that lie on long straight runs (a line), so characters touching a line keep theirs.
3. Columns: runs of the ink's projection on the x axis; runs split by a gap narrower than a
   stroke-free gutter are one column, runs much wider than the others are split at their
   weakest point, and faint narrow runs (fragments, line remnants) are dropped.
4. Characters within a column: the character pitch P (distance between consecutive
   characters) is measured on the whole page from the autocorrelation of the columns' ink
   profiles. Candidate cuts are the blank gaps and ink minima of the column's profile; a
   dynamic programme chooses the cuts that make cells closest to P while crossing the least
   ink. So the separate pieces of 二 or 三 are joined (cutting between them makes two cells
   far shorter than P) and two touching characters are split.
5. Boxes: each cell's ink, without small pieces at its edges (neighbour fragments).

``python -m nomgui.pages PAGE.png [--order columns-rtl|rows] --json`` prints
``{"boxes": [[x, y, w, h], ...]}`` in reading order.

Also here, for the page view's editing (Qt-free so they are tested headless):
``reading_order`` (sort any boxes), ``merge_boxes``, ``split_box`` (at the lightest ink gap)
and ``BoxEdit`` (the boxes of a page with undo/redo).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

Box = tuple[int, int, int, int]  # x, y, w, h in page pixels
ORDERS = ("columns-rtl", "rows")
_EIGHT = np.ones((3, 3), bool)


# -- loading ----------------------------------------------------------------------------------
def load_gray(path: str | Path) -> np.ndarray:
    """A page image file as uint8 grey (H, W); transparency is composited onto white."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        return np.asarray(img.convert("L"), dtype=np.uint8)


# -- ink --------------------------------------------------------------------------------------
def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of non-negative values (a 256-bin histogram over their range)."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    hist, edges = np.histogram(values, bins=256, range=(0.0, top))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centers)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = 0.0
    return float(centers[int(np.argmax(between))])


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width of an ink mask: twice the mean distance to paper at the
    strokes' ridges (the local maxima of the distance transform)."""
    if not mask.any():
        return 1.0
    dist = ndimage.distance_transform_edt(mask)
    ridge = (dist == ndimage.maximum_filter(dist, size=3)) & mask
    return float(max(1.0, 2.0 * np.median(dist[ridge])))


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Ink (True) of a page of dark ink on light paper of any level, gradient or stains.

    ``gray``: (H, W) uint8 or float 0..255. Returns bool (H, W).
    """
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2 or g.size == 0 or float(g.max() - g.min()) < 16:  # blank
        return np.zeros(g.shape[:2], bool)
    dark = g.max() - g
    rough = dark > _otsu(dark)  # global Otsu: only to measure the strokes
    sw = _stroke_width(rough)
    # paper: a closing (max then min) wider than any stroke erases the ink; done on a
    # subsampled page for speed, then smoothed and brought back to full size
    step = max(1, int(sw // 2))
    small = g[::step, ::step]
    k = max(3, round(3 * sw / step) | 1)
    paper = ndimage.grey_closing(small, size=(k, k))
    paper = ndimage.uniform_filter(paper, size=k)
    if step > 1:
        paper = np.repeat(np.repeat(paper, step, 0), step, 1)[: g.shape[0], : g.shape[1]]
    # a slight blur takes most of the scanner's grain off while strokes stay
    signed = ndimage.gaussian_filter(paper - g, sigma=min(1.0, max(0.6, sw / 4)))
    # on a grainy page the closing rides on the grain's peaks: most of the page is paper,
    # so its median is the paper level
    offset = float(np.median(signed))
    signed -= offset
    diff = np.clip(signed, 0, None)
    t = _otsu(diff)
    quiet = signed[signed < t]  # the paper, lighter and darker than its level
    noise = 1.4826 * float(np.median(np.abs(quiet - np.median(quiet)))) if quiet.size else 0.0
    strong = float(np.percentile(diff, 99))  # the ink's own darkness
    # hysteresis: sure ink, grown into the fainter ink it touches (faint strokes of a
    # character whose other strokes are sure)
    high = max(t, 4.0 * noise, 0.3 * strong, 12.0)
    sure = diff > high
    faint = diff > max(0.6 * high, 2.5 * noise, 8.0)
    labels, n = ndimage.label(faint, _EIGHT)
    if n:
        hit = np.zeros(n + 1, bool)
        hit[np.unique(labels[sure])] = True
        hit[0] = False
        ink = hit[labels]
    else:
        ink = sure
    # the blur spread the ink by a pixel: keep only pixels dark enough without it
    ink &= (paper - g - offset) > 0.5 * high
    # specks: pieces too small to be a stroke
    labels, n = ndimage.label(ink, _EIGHT)
    if n:
        area = ndimage.sum_labels(ink, labels, np.arange(1, n + 1))
        keep = np.concatenate([[False], area >= max(3.0, 0.8 * sw * sw)])
        ink = keep[labels]
    return ink


def _remove_lines(ink: np.ndarray, size: float) -> np.ndarray:
    """Drop ruling lines and frames: pixels of straight runs longer than ~2.5 characters, in
    pieces longer than that (a character never is)."""
    long = max(8, round(2.5 * size))
    labels, n = ndimage.label(ink, _EIGHT)
    if not n:
        return ink
    out = ink.copy()
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = sl
        if ys.stop - ys.start < long and xs.stop - xs.start < long:
            continue
        piece = labels[sl] == i
        line = np.zeros_like(piece)
        for axis, extent in ((0, ys.stop - ys.start), (1, xs.stop - xs.start)):
            if extent >= long:  # an opening by a straight line of length ``long``
                run = ndimage.minimum_filter1d(piece, long | 1, axis=axis, mode="constant")
                line |= ndimage.maximum_filter1d(run, long | 1, axis=axis, mode="constant")
        # a line is a few pixels wide: also take the pixels right beside it (anti-aliasing)
        line = ndimage.binary_dilation(line, np.ones((3, 3), bool)) & piece
        out[sl] &= ~line
    return out


def _char_size(ink: np.ndarray) -> float:
    """Rough character size across the columns: the ink-weighted median width of the ink
    pieces after joining strokes closer than a stroke width. Widths, because the pieces of
    a tightly set column may join into one tall piece, but never wider than the column."""
    sw = _stroke_width(ink)
    joined = ndimage.binary_closing(ink, np.ones((3, 3), bool), iterations=max(1, int(sw)))
    labels, n = ndimage.label(joined, _EIGHT)
    if not n:
        return 10.0
    sizes, weights = [], []
    h, w = ink.shape
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = sl
        ph, pw = ys.stop - ys.start, xs.stop - xs.start
        if ph > 0.5 * h and pw > 0.5 * w:  # a frame
            continue
        if min(ph, pw) <= 3 * sw and max(ph, pw) > 8 * min(ph, pw):  # a ruling line
            continue
        sizes.append(pw)
        weights.append(float((labels[sl] == i).sum()))
    if not sizes:
        return 10.0
    order = np.argsort(sizes)
    cum = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(sizes)[order][np.searchsorted(cum, cum[-1] / 2)])


# -- columns ----------------------------------------------------------------------------------
def _runs(profile: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs where profile > 0."""
    on = np.concatenate([[0], (profile > 0).astype(np.int8), [0]])
    d = np.diff(on)
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist(),
                    strict=True))


def _columns(ink: np.ndarray, size: float) -> tuple[list[tuple[int, int]], float]:
    """Column spans [x0, x1) of ink, left to right, each widened into its gutters, and
    the typical width of a column's core."""
    prof = ink.sum(0).astype(np.float64)
    rows = np.nonzero(ink.any(1))[0]
    if not rows.size:
        return [], 0.0
    # a gutter may hold specks and stray bits: blank is under 1% of the text's height
    extent = float(np.percentile(rows, 98) - np.percentile(rows, 2) + 1)
    level = ndimage.uniform_filter1d(prof, 3)
    runs = _runs(level - 0.01 * extent)
    if not runs:
        return [], 0.0
    # a gap narrower than a tenth of a character is inside a column (between the strokes
    # of its characters, where no other character fills it)
    merged = [list(runs[0])]
    for a, b in runs[1:]:
        if a - merged[-1][1] < 0.1 * size:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    widths = np.array([b - a for a, b in merged], np.float64)
    inks = np.array([prof[a:b].sum() for a, b in merged])
    wide = float(np.median(widths[widths >= 0.3 * np.median(widths)]))
    cols: list[tuple[int, int]] = []
    for (a, b), wd, amount in zip(merged, widths, inks, strict=True):
        if wd < 0.35 * wide and amount < 0.15 * np.median(inks):
            continue  # a fragment or a line remnant, not a column
        cols += _split_wide(prof, a, b, wide)
    # widen each column into its gutters (up to the middle, at most a third of a column),
    # so strokes that stick out of the column's core stay with their character
    out = []
    for i, (a, b) in enumerate(cols):
        left = cols[i - 1][1] if i else 0
        right = cols[i + 1][0] if i + 1 < len(cols) else ink.shape[1]
        reach = int(wide / 3)
        out.append((max((a + left + 1) // 2, a - reach, 0),
                    min((b + right) // 2, b + reach, ink.shape[1])))
    return out, wide


def _split_wide(prof: np.ndarray, a: int, b: int, wide: float) -> list[tuple[int, int]]:
    """Split a run much wider than a column at its weakest points (two columns touching)."""
    n = round((b - a) / wide)
    if n < 2 or (b - a) < 1.6 * wide:
        return [(a, b)]
    smooth = ndimage.uniform_filter1d(prof[a:b], max(1, int(wide / 8)))
    cuts = []
    for k in range(1, n):
        c = k * (b - a) / n
        lo, hi = int(c - wide / 3), int(c + wide / 3)
        cuts.append(a + lo + int(np.argmin(smooth[lo:hi])))
    edges = [a, *cuts, b]
    return [(edges[i], edges[i + 1]) for i in range(n)]


# -- characters in a column -------------------------------------------------------------------
def _pitch(strips: list[np.ndarray], width: float) -> float:
    """Distance between consecutive characters along the columns, from the autocorrelation
    of the columns' ink profiles (their first strong peak between 0.7 and 2.2 column
    widths); without a clear peak, the column width plus the median blank gap."""
    lo, hi = max(2, int(0.7 * width)), max(3, int(2.2 * width))
    acc = np.zeros(hi + 1)
    gaps = []
    extents = [0]
    for p in strips:
        rows = np.nonzero(p)[0]
        extents.append(int(rows[-1] - rows[0] + 1) if rows.size else 0)
        if extents[-1] < 2.2 * width:  # a character or two: no period to see
            continue
        q = np.sqrt(p.astype(np.float64))  # damps the darkest characters' weight
        q -= q.mean()
        f = np.fft.rfft(q, 2 * len(q))
        ac = np.fft.irfft(f * np.conj(f))[: hi + 1]
        if ac[0] > 0:
            acc[: len(ac)] += ac / ac[0]
        gaps += [b - a for a, b in _runs((p == 0).astype(np.int8))[1:-1]]
    fallback = width + (float(np.median(gaps)) if gaps else 0.2 * width)
    if not acc.any():  # no column is long enough: a character or two
        longest = max(extents)
        return float(longest) if fallback < longest < 2.2 * width else fallback
    seg = acc[lo: hi + 1]
    k = int(np.argmax(seg))
    peak = seg[k]
    # the first strong peak, not a multiple of the pitch
    strong = np.nonzero(seg >= 0.6 * peak)[0]
    for s in strong:
        if 0 < s < len(seg) - 1 and seg[s] >= seg[s - 1] and seg[s] >= seg[s + 1]:
            k = int(s)
            break
    if peak <= 0.03 * len(strips):  # no period to speak of
        return fallback
    return float(lo + k)


def _refine_pitch(strips: list[np.ndarray], pitch: float) -> float:
    """The pitch within 20% of ``pitch`` whose evenly spaced cuts, at the best offset in
    each column, cross the least ink: a matched comb, sharper than the autocorrelation
    when the characters nearly touch."""
    cands = np.arange(0.8 * pitch, 1.2 * pitch + 0.25, 0.25)
    if pitch < 4 or not strips:
        return pitch
    total = np.zeros(len(cands))
    for p in strips:
        rows = np.nonzero(p)[0]
        if rows.size < 2 or rows[-1] - rows[0] < 2.5 * pitch:
            continue
        q = np.sqrt(ndimage.uniform_filter1d(p.astype(np.float64), 3))[rows[0]: rows[-1] + 1]
        q /= max(float(q.max()), 1e-9)
        for i, cand in enumerate(cands):
            phases = np.arange(0.0, cand, 0.5)
            pos = phases[:, None] + np.arange(0.0, len(q) - 1, cand)[None, :]  # (F, K)
            ok = pos < len(q) - 1
            lo = np.floor(np.where(ok, pos, 0)).astype(int)
            frac = np.where(ok, pos, 0) - lo
            vals = q[lo] * (1 - frac) + q[np.minimum(lo + 1, len(q) - 1)] * frac
            mean = (vals * ok).sum(1) / np.maximum(ok.sum(1), 1)
            total[i] += float(mean.min())
    if not total.any():
        return pitch
    return float(cands[int(np.argmin(total))])


def _cells(prof: np.ndarray, pitch: float, width: float) -> list[tuple[int, int]]:
    """Cut one column's ink profile (ink per row) into character cells [y0, y1)."""
    runs = _runs(prof)
    if not runs:
        return []
    # a blank longer than most of a pitch always separates characters: cut there for sure,
    # and cut each stretch between such blanks on its own
    stretches, start = [], 0
    for k in range(1, len(runs)):
        if runs[k][0] - runs[k - 1][1] > 0.6 * pitch:
            stretches.append(runs[start:k])
            start = k
    stretches.append(runs[start:])
    smooth = ndimage.uniform_filter1d(prof.astype(np.float64), 3)
    return [c for part in stretches for c in _cut_stretch(part, smooth, pitch, width)]


def _cut_stretch(runs: list[tuple[int, int]], smooth: np.ndarray, pitch: float,
                 width: float) -> list[tuple[int, int]]:
    """Cells of one stretch of ink runs: a dynamic programme over candidate cuts."""
    top, bottom = runs[0][0], runs[-1][1]
    # candidate cuts: the middle of every blank gap (free), and ink minima (cost: the ink
    # crossed, as a fraction of the column width)
    cand: dict[int, float] = {}
    for (_a, b), (c, _d) in itertools.pairwise(runs):
        cand[(b + c) // 2] = 0.0
    inside = np.arange(top + 1, bottom - 1)
    if inside.size:
        s = smooth[inside]
        minima = inside[(s <= smooth[inside - 1]) & (s <= smooth[inside + 1])]
        for y in minima.tolist():
            cand.setdefault(y, float(smooth[y]) / width)
    ys = sorted(cand)
    gap = max(0.0, pitch - width)  # blank between characters, about
    pos = np.array([top - gap / 2, *ys, bottom + gap / 2], np.float64)
    cost = np.array([0.0, *(cand[y] for y in ys), 0.0])
    n = len(pos)
    best = np.full(n, np.inf)
    prev = np.zeros(n, int)
    best[0] = 0.0
    for j in range(1, n):
        i0 = min(int(np.searchsorted(pos, pos[j] - 2.6 * pitch)), j - 1)
        # cells far from the pitch are costly, a cell over 1.25 pitch very costly
        r = (pos[j] - pos[i0:j]) / pitch
        v = best[i0:j] + 4.0 * (r - 1.0) ** 2 + np.where(r > 1.25, 40.0 * (r - 1.25) ** 2, 0.0)
        k = int(np.argmin(v))
        best[j], prev[j] = v[k] + 6.0 * cost[j], i0 + k
    cuts = [n - 1]
    while cuts[-1] != 0:
        cuts.append(int(prev[cuts[-1]]))
    cuts.reverse()
    edges = [top, *(round(pos[c]) for c in cuts[1:-1]), bottom]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1) if edges[i + 1] > edges[i]]


def _box_of_cell(cell: np.ndarray, x0: int, y0: int) -> Box | None:
    """The box of a cell's ink without small pieces touching the cell's edges."""
    labels, n = ndimage.label(cell, _EIGHT)
    if not n:
        return None
    area = ndimage.sum_labels(cell, labels, np.arange(1, n + 1))
    total = float(area.sum())
    h, w = cell.shape
    keep = np.zeros(n + 1, bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = sl
        at_edge = ys.start == 0 or ys.stop == h or xs.start == 0 or xs.stop == w
        small = area[i - 1] < (0.12 if at_edge else 0.01) * total
        keep[i] = not small
    if not keep.any():
        return None
    kept = keep[labels]
    rows, cols = np.nonzero(kept.any(1))[0], np.nonzero(kept.any(0))[0]
    return (int(x0 + cols[0]), int(y0 + rows[0]), int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1))


def _cut_columns(ink: np.ndarray) -> list[list[Box]]:
    """Columns left to right, each a list of boxes top to bottom."""
    if not ink.any():
        return []
    size = _char_size(ink)
    ink = _remove_lines(ink, size)
    cols, width = _columns(ink, size)
    if not cols:
        return []
    profiles = [ink[:, a:b].sum(1) for a, b in cols]
    pitch = _refine_pitch(profiles, _pitch(profiles, width))
    out = []
    for (a, b), prof in zip(cols, profiles, strict=True):
        boxes = []
        for y0, y1 in _cells(prof, pitch, max(width, 1.0)):
            box = _box_of_cell(ink[y0:y1, a:b], a, y0)
            if box is not None:
                boxes.append(box)
        if boxes:
            out.append(boxes)
    # cells with hardly any ink are specks or fragments, not characters
    areas = [int(ink[y:y + h, x:x + w].sum()) for col in out for x, y, w, h in col]
    if areas:
        floor = 0.08 * float(np.median(areas))
        out = [[bx for bx in col if ink[bx[1]:bx[1] + bx[3], bx[0]:bx[0] + bx[2]].sum() >= floor]
               for col in out]
    return [col for col in out if col]


def cut_page(gray: np.ndarray, order: str = "columns-rtl", min_size: int = 4) -> list[Box]:
    """Character boxes (x, y, w, h) of a page of dark ink on light paper, in reading order.

    ``gray``: (H, W) uint8 (``load_gray`` reads a file; (H, W, 3) colour is made grey).
    ``order``: ``"columns-rtl"``
    (vertical columns, top to bottom, right to left: Nôm and Hán pages) or ``"rows"``
    (horizontal rows, left to right, top to bottom). Boxes smaller than ``min_size`` pixels
    on their longer side are dropped. A blank page gives ``[]``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    gray = np.asarray(gray)
    if gray.ndim == 3:  # colour (H, W, 3 or 4): its luminance, as PIL's "L"
        gray = np.asarray(Image.fromarray(gray.astype(np.uint8)).convert("L"))
    ink = ink_mask(gray)
    if order == "rows":
        lines = [[(y, x, h, w) for x, y, w, h in col] for col in _cut_columns(ink.T)]
    else:
        lines = _cut_columns(ink)[::-1]  # right to left
    return [b for line in lines for b in line if max(b[2], b[3]) >= min_size]


# -- ordering and editing ---------------------------------------------------------------------
def _same_line(line: list[Box], b: Box, across: int) -> bool:
    """Does box ``b`` belong to ``line`` (a column: across=0; a row: across=1)? Its centre
    lies within the line's median extent (a median, so one wide box does not swallow the
    neighbouring line)."""
    c = b[across] + b[across + 2] / 2
    mid = float(np.median([q[across] + q[across + 2] / 2 for q in line]))
    half = float(np.median([q[across + 2] for q in line])) / 2
    return abs(c - mid) <= max(half, b[across + 2] / 2) * 0.9


def reading_lines(boxes: Sequence[Box], order: str = "columns-rtl",
                  keep_order: bool = False) -> list[list[int]]:
    """Indices of ``boxes`` grouped into columns (``order="rows"``: rows), in reading order.

    ``keep_order=False``: any boxes, sorted: columns right to left, each top to bottom
    (rows top to bottom, each left to right). ``keep_order=True``: the boxes are already in
    reading order (as the user arranged them); they are only split where a new line starts.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    boxes = [tuple(int(v) for v in b) for b in boxes]
    across, along = (0, 1) if order == "columns-rtl" else (1, 0)
    if keep_order:
        runs: list[list[int]] = []
        for i, b in enumerate(boxes):
            if runs and _same_line([boxes[j] for j in runs[-1]], b, across):
                runs[-1].append(i)
            else:
                runs.append([i])
        return runs
    ranked = sorted(range(len(boxes)), key=lambda i: boxes[i][across] + boxes[i][across + 2] / 2,
                    reverse=order == "columns-rtl")
    lines: list[list[int]] = []
    for i in ranked:
        if lines and _same_line([boxes[j] for j in lines[-1]], boxes[i], across):
            lines[-1].append(i)
        else:
            lines.append([i])
    return [sorted(line, key=lambda j: boxes[j][along] + boxes[j][along + 2] / 2)
            for line in lines]


def reading_order(boxes: Sequence[Box], order: str = "columns-rtl") -> list[Box]:
    """Any boxes (e.g. after the user moved, added or split some) sorted into reading
    order: grouped into columns (rows) by their centres, columns right to left, boxes top
    to bottom (rows top to bottom, boxes left to right)."""
    boxes = [tuple(int(v) for v in b) for b in boxes]
    return [boxes[i] for line in reading_lines(boxes, order) for i in line]


def merge_boxes(boxes: Sequence[Box]) -> Box:
    """The smallest box holding all of ``boxes`` (at least one)."""
    if not boxes:
        raise ValueError("nothing to merge")
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def split_box(gray: np.ndarray, box: Box, axis: str = "y") -> list[Box]:
    """Split a box in two at the lightest ink gap across it: ``axis="y"`` cuts it into a
    top and a bottom box (two characters of a column), ``"x"`` into left and right. The cut
    is searched in the middle 60% of the box; each part is shrunk to its ink (when it has
    any). Returns [first, second] in reading order for that axis; a box too small to split
    comes back alone."""
    x, y, w, h = (int(v) for v in box)
    if axis not in ("x", "y"):
        raise ValueError("axis must be 'x' or 'y'")
    length = h if axis == "y" else w
    if length < 4 or w < 1 or h < 1:
        return [(x, y, w, h)]
    g = np.asarray(gray)
    H, W = g.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return [(x, y, w, h)]
    # the ink of the box and its surroundings (the paper level needs some paper)
    m = max(w, h)
    ox, oy = max(0, x0 - m), max(0, y0 - m)
    ink = ink_mask(g[oy: min(H, y1 + m), ox: min(W, x1 + m)])[y0 - oy: y1 - oy, x0 - ox: x1 - ox]
    if ink.size == 0:
        return [(x, y, w, h)]
    prof = ink.sum(1 if axis == "y" else 0).astype(np.float64)
    lo, hi = int(0.2 * len(prof)), int(np.ceil(0.8 * len(prof)))
    if hi <= lo:
        return [(x, y, w, h)]
    seg = ndimage.uniform_filter1d(prof, 3)[lo:hi]
    best = np.nonzero(seg == seg.min())[0]
    cut = lo + int(best[len(best) // 2])  # the middle of the lightest stretch
    cut_abs = (y0 if axis == "y" else x0) + cut
    if axis == "y":
        a, b = (x, y, w, cut_abs - y), (x, cut_abs, w, y + h - cut_abs)
    else:
        a, b = (x, y, cut_abs - x, h), (cut_abs, y, x + w - cut_abs, h)
    return [_shrink(ink, part, x0, y0) for part in (a, b)]


def _shrink(ink: np.ndarray, box: Box, ox: int, oy: int) -> Box:
    x, y, w, h = box
    sub = ink[max(0, y - oy): y - oy + h, max(0, x - ox): x - ox + w]
    if not sub.any():
        return box
    rows, cols = np.nonzero(sub.any(1))[0], np.nonzero(sub.any(0))[0]
    bx, by = max(x, ox) + int(cols[0]), max(y, oy) + int(rows[0])
    return (bx, by, int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


@dataclass
class BoxEdit:
    """The boxes of one page and the edits made to them, with undo and redo.

    Every edit replaces the whole list (pages hold hundreds of boxes, not millions), so undo
    is exact whatever the edit was. Indices refer to ``boxes`` as it is now.
    """

    boxes: list[Box] = field(default_factory=list)
    order: str = "columns-rtl"
    _undo: list[list[Box]] = field(default_factory=list, repr=False)
    _redo: list[list[Box]] = field(default_factory=list, repr=False)

    def _apply(self, new: list[Box]) -> list[Box]:
        self._undo.append(list(self.boxes))
        self._redo.clear()
        self.boxes = [tuple(int(v) for v in b) for b in new]
        return self.boxes

    def set(self, boxes: Sequence[Box]) -> list[Box]:
        """Replace all boxes (e.g. cut the page again)."""
        return self._apply(list(boxes))

    def add(self, box: Box) -> list[Box]:
        """Add a box; the list is put back into reading order."""
        return self._apply(reading_order([*self.boxes, box], self.order))

    def remove(self, indices: Sequence[int]) -> list[Box]:
        drop = set(indices)
        return self._apply([b for i, b in enumerate(self.boxes) if i not in drop])

    def move(self, index: int, box: Box) -> list[Box]:
        """Move or resize one box (its new x, y, w, h); reading order is kept up to date."""
        new = list(self.boxes)
        new[index] = box
        return self._apply(reading_order(new, self.order))

    def merge(self, indices: Sequence[int]) -> list[Box]:
        """Merge the boxes at ``indices`` into one, placed where the first of them was."""
        idx = sorted(set(indices))
        if len(idx) < 2:
            return self.boxes
        merged = merge_boxes([self.boxes[i] for i in idx])
        new = [b for i, b in enumerate(self.boxes) if i not in idx[1:]]
        new[idx[0]] = merged
        return self._apply(new)

    def split(self, gray: np.ndarray, index: int, axis: str = "y") -> list[Box]:
        """Split one box in two at its lightest ink gap (see ``split_box``)."""
        parts = split_box(gray, self.boxes[index], axis)
        if len(parts) < 2:
            return self.boxes
        return self._apply([*self.boxes[:index], *parts, *self.boxes[index + 1:]])

    def reorder(self) -> list[Box]:
        return self._apply(reading_order(self.boxes, self.order))

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> list[Box]:
        if self._undo:
            self._redo.append(self.boxes)
            self.boxes = self._undo.pop()
        return self.boxes

    def redo(self) -> list[Box]:
        if self._redo:
            self._undo.append(self.boxes)
            self.boxes = self._redo.pop()
        return self.boxes


# -- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nomgui.pages",
                                description="Cut a page image into character boxes, in "
                                            "reading order.")
    p.add_argument("page", type=Path, help="page image (PNG, JPEG, TIFF, ...)")
    p.add_argument("--order", choices=ORDERS, default="columns-rtl",
                   help="columns-rtl: vertical columns, right to left (Nôm); rows: "
                        "horizontal rows, left to right")
    p.add_argument("--json", action="store_true",
                   help='print {"boxes": [[x, y, w, h], ...]} (the default prints one box '
                        "per line)")
    a = p.parse_args(argv)
    try:
        gray = load_gray(a.page)
    except (OSError, ValueError) as exc:
        print(f"{a.page}: cannot read the image ({exc})", file=sys.stderr)
        return 2
    boxes = cut_page(gray, order=a.order)
    if a.json:
        print(json.dumps({"boxes": [list(b) for b in boxes]}))
    else:
        for b in boxes:
            print(*b)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
