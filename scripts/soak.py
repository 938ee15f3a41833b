"""Soak: replay real pen strokes into the app's canvas as mouse events, for a long session.

    python scripts/soak.py --data-root ../shared/data/omniglot --strokes 2000 [--json]

The drawings of ``strokes_background_small1.zip`` (Omniglot's on-line strokes, five
alphabets, 136 characters x 20 drawers; see STROKES.txt) are drawn into the real
:class:`~nomgui.canvas.DrawingCanvas` of a real :class:`~nomgui.mainwindow.MainWindow` as
mouse press / move / release events, stroke by stroke, and the app recognises each drawing
against a class set built from other drawers' official PNGs. The same drawing's official
PNG is then loaded through the app's own load path and recognised too, so the replayed
canvas and the scanned image can be compared. Reported: strokes, drawings and points
replayed, accuracy of both, the drift of the reference counts of None / True / False
(PySide6 6.12.0 on Python 3.11 loses one per void Qt call and aborts the process), resident
memory after warm-up and at the end, and the median time from the last stroke's release to
the candidates.

Without the zips (``--data-root`` missing or empty), strokes are generated: random
polylines, and the "official" image is the same polylines drawn with PIL.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

GRID = 105  # Omniglot's image side; stroke coordinates are in its pixels
INK = 6.0  # "drawn as lines about 6 px wide on the 105 grid" (STROKES.txt)
# The canvas pen (in 105-grid pixels) whose drawings the model answers most like the PNGs:
# `soak.py --strokes 500 --pen P` gave the same top-1 as the PNG for 92.7 / 95.9 / 97.3 /
# 97.7 / 95.9% of 220 drawings at P = 3.5 / 4 / 4.5 / 5 / 6 (the canvas's round caps and
# curves add ink that the PNG renderer's lines do not).
PEN = 5.0


@dataclass
class Drawing:
    label: str  # ALPHABET/characterNN
    drawer: int
    strokes: list[np.ndarray]  # each (P, 2): x, row in 105-grid pixels
    png: bytes  # the official image of the same drawing


def parse_strokes(text: str) -> list[np.ndarray]:
    """The file format of STROKES.txt: START, "x,y,t" lines, BREAK after each stroke."""
    strokes, current = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("START", ""):
            continue
        if line == "BREAK":
            if current:
                strokes.append(np.array(current, dtype=np.float32))
            current = []
            continue
        x, y, _t = (float(v) for v in line.split(","))
        current.append((x, -y))  # y points up in the file: image row = -y
    if current:
        strokes.append(np.array(current, dtype=np.float32))
    return strokes


def load_drawings(data_root: Path) -> list[Drawing]:
    """Every drawing of the small strokes set with its official PNG."""
    strokes_zip = zipfile.ZipFile(data_root / "strokes_background_small1.zip")
    images_zip = zipfile.ZipFile(data_root / "images_background.zip")
    images = {Path(n).name: n for n in images_zip.namelist() if n.endswith(".png")}
    out = []
    for name in sorted(strokes_zip.namelist()):
        parts = Path(name).parts
        if not name.endswith(".txt") or "__MACOSX" in parts or len(parts) < 4:
            continue
        stem = Path(name).stem  # NNNN_DD
        png_name = images.get(f"{stem}.png")
        if png_name is None:
            continue
        strokes = parse_strokes(strokes_zip.read(name).decode())
        if strokes:
            out.append(Drawing(f"{parts[-3]}/{parts[-2]}", int(stem.split("_")[1]), strokes,
                               images_zip.read(png_name)))
    return out


def generated_drawings(classes: int = 40, drawers: int = 20, seed: int = 0) -> list[Drawing]:
    """Stand-in data without ../shared: polylines per class, jittered per drawer."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(classes):
        base = [rng.uniform(15, 90, size=(int(rng.integers(3, 8)), 2))
                for _ in range(int(rng.integers(1, 4)))]
        for d in range(1, drawers + 1):
            strokes = []
            for b in base:
                pts = b + rng.normal(0, 2.0, size=b.shape)
                # densify like a mouse: points every ~2 px along each segment
                dense = [pts[0]]
                for p, q in itertools.pairwise(pts):
                    n = max(2, int(np.linalg.norm(q - p) / 2))
                    dense.extend(p + (q - p) * t for t in np.linspace(0, 1, n)[1:])
                strokes.append(np.array(dense, dtype=np.float32))
            img = Image.new("L", (GRID, GRID), 255)
            draw = ImageDraw.Draw(img)
            for s in strokes:
                draw.line([tuple(map(float, p)) for p in s], fill=0, width=int(INK),
                          joint="curve")
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            out.append(Drawing(f"generated/class{c:03d}", d, strokes, buf.getvalue()))
    return out


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def refcounts() -> dict[str, int]:
    return {"None": sys.getrefcount(None), "True": sys.getrefcount(True),
            "False": sys.getrefcount(False)}


def replay_stroke(canvas, points: np.ndarray) -> None:
    """One stroke as real mouse press / move / release events on the canvas widget.

    QTest's events, not ``QApplication.sendEvent``: in PySide6 6.11 every Python call of
    sendEvent/postEvent/notify itself adds a reference to None (harmless, but it would
    hide the drift this soak measures); QTest sends from C++ as the platform does.
    """
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    r = canvas._paper_rect()
    scale = r.width() / GRID

    def at(x: float, y: float) -> QPoint:
        return QPoint(round(r.x() + x * scale), round(r.y() + y * scale))

    QTest.mousePress(canvas, Qt.LeftButton, Qt.NoModifier, at(*points[0]))
    for i, (x, y) in enumerate(points[1:]):
        QTest.mouseMove(canvas, at(x, y))
        if i % 3 == 2:  # a screen paints at ~60 Hz while a mouse reports at 125+ Hz
            QApplication.processEvents()
    QTest.mouseRelease(canvas, Qt.LeftButton, Qt.NoModifier, at(*points[-1]))


def wait_until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the app did not answer in time")
        QApplication.processEvents()
        time.sleep(0.0005)


def top_label(window) -> str | None:
    """Wait for the answer to the newest recognition request; its best candidate."""
    # The request leaves when control returns to the event loop (a zero-interval timer):
    # wait for it to be sent, then for its answer.
    wait_until(lambda: not window.debounce.isActive()
               and window.answered_request >= window.recognizer.latest_request)
    labels = window.candidates.labels
    return labels[0] if labels else None


def soak(window, drawings: list[Drawing], strokes: int, support_drawers: int = 4,
         warmup: int = 20, seed: int = 0, progress: Callable[[str], None] | None = None,
         pen: float = PEN) -> dict:
    """Replay at least ``strokes`` strokes into ``window``; returns the figures."""
    from PySide6.QtGui import QAction

    from nomgui.glyph import glyph_from_bytes

    action = {a.text().replace("&", ""): a for a in window.findChildren(QAction)}
    clear = action["Clear canvas"]
    labels = sorted({d.label for d in drawings})
    support = [d for d in drawings if d.drawer <= support_drawers]
    queries = [d for d in drawings if d.drawer > support_drawers]
    random.Random(seed).shuffle(queries)

    cs = window.store.create(f"soak {time.strftime('%H%M%S')}")
    for label in labels:
        cs.add_class(label, "", [glyph_from_bytes(d.png, f"{d.label} {d.drawer}")
                                 for d in support if d.label == label])
    window.set_classset(cs)
    wait_until(lambda: window.fitted, timeout=300)
    window.canvas.pen_width = pen * 256 / GRID  # the pen of the official images

    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    drawn_strokes = points = 0
    right_replay = right_png = agree = done = 0
    latencies: list[float] = []
    base_refs = base_rss = None
    t0 = time.perf_counter()
    for d in queries:
        if drawn_strokes >= strokes:
            break
        if done == warmup:
            base_refs, base_rss = refcounts(), rss_mb()
        for s in d.strokes:
            replay_stroke(window.canvas, s)
            drawn_strokes += 1
            points += len(s)
        released = time.perf_counter()
        got = top_label(window)
        latencies.append(time.perf_counter() - released)
        clear.trigger()
        png = tmp / f"{d.drawer:02d}.png"
        png.write_bytes(d.png)
        window.load_files([png])  # the app's load path (File > Load glyph images)
        got_png = top_label(window)
        clear.trigger()
        right_replay += got == d.label
        right_png += got_png == d.label
        agree += got == got_png
        done += 1
        if progress and done % 100 == 0:
            progress(f"{done} drawings, {drawn_strokes} strokes, "
                     f"replay {100 * right_replay / done:.1f}%, png {100 * right_png / done:.1f}%")
    end_refs, end_rss = refcounts(), rss_mb()
    base_refs = base_refs or end_refs
    return {
        "drawings": done, "strokes": drawn_strokes, "points": points,
        "classes": len(labels), "support_per_class": support_drawers,
        "seconds": round(time.perf_counter() - t0, 1),
        "accuracy_replayed": round(100 * right_replay / max(done, 1), 2),
        "accuracy_png": round(100 * right_png / max(done, 1), 2),
        "same_answer": round(100 * agree / max(done, 1), 2),
        "refcount_drift": {k: end_refs[k] - base_refs[k] for k in end_refs},
        "rss_after_warmup_mb": round(base_rss or end_rss, 1),
        "rss_end_mb": round(end_rss, 1),
        "stroke_to_candidates_ms_median": round(1000 * statistics.median(latencies), 2)
        if latencies else None,
        "alive": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data"
                        / "omniglot", help="folder with strokes_background_small1.zip and "
                        "images_background.zip (generated strokes when missing)")
    parser.add_argument("--strokes", type=int, default=2000)
    parser.add_argument("--model", default="protonet-omniglot.pt")
    parser.add_argument("--pen", type=float, default=PEN,
                        help="pen width in 105-grid pixels (default: %(default)s, the width "
                             "whose drawings are answered most like the PNGs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nomgui.app import RESOURCES
    from nomgui.mainwindow import MainWindow

    have = (args.data_root / "strokes_background_small1.zip").is_file() and (
        args.data_root / "images_background.zip").is_file()
    drawings = load_drawings(args.data_root) if have else generated_drawings()
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="nomgui-soak-"))
    settings = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    settings.setValue("model/path", str(RESOURCES / "models" / args.model))
    window = MainWindow(work / "data", RESOURCES, settings)
    window.show()
    wait_until(lambda: window.model is not None, timeout=120)
    result = soak(window, drawings, args.strokes, pen=args.pen,
                  progress=None if args.json else lambda m: print(m, flush=True))
    result["data"] = "omniglot strokes" if have else "generated strokes"
    result["model"] = args.model
    import PySide6

    result["pyside6"] = PySide6.__version__
    result["python"] = sys.version.split()[0]
    window.close()
    app.processEvents()
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
