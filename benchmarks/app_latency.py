"""App responsiveness on this machine, offscreen (QT_QPA_PLATFORM=offscreen).

    python benchmarks/app_latency.py [--data-root ../shared/data/omniglot]

* launch: wall time from starting a fresh ``python`` process to the main window shown and
  painted (median of --launches runs; the model loads afterwards, in the worker thread);
* model load + fit: time until the window reports the class set fitted;
* stroke -> candidates: from the release of a simulated mouse stroke to the candidates shown,
  debounce included (what a user waits), median of --strokes strokes, for class sets of 20
  and of 1,000 classes (2 examples each: Omniglot drawings when --data-root is given, else
  generated glyphs).
* per bundled model, through the trainer facade the app uses (``trainer.api``, no Qt):
  model file load, fit to 20 and to 1,000 classes (2 examples each), and predict (one
  glyph's top 5 against the 1,000 classes); medians of --repeats runs. Each fit is a
  first fit (a fresh ``Model`` around the loaded learner, so nothing is remembered);
  ``refit_1000_ms`` is the same 1,000 classes fitted again by one ``Model`` (the fit
  remembered by content). This is the work
  the app's worker thread does; the GUI thread never waits on it.
* fits: only the first fits of 1,000 classes, the models taken in turn each round (so a
  busy machine's load falls on all of them alike), median and fastest of --repeats rounds.
* lookup (the built-in "Nôm: all code points" set, with lookup-nom.pt when present, else
  protonet-nom.pt): through ``trainer.api``, the first fit (fonts rendered and embedded;
  skipped when --lookup-cache already holds them), a fit from the cache, and predicting
  one glyph's 30 candidates among the whole vocabulary; then in the window, stroke
  released -> candidates shown with the lookup open (median of --strokes strokes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def child_launch(t0: float) -> None:
    """Run in a fresh process: show the window, print seconds since ``t0`` once painted."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from nomgui.app import RESOURCES
    from nomgui.mainwindow import MainWindow

    tmp = Path(tempfile.mkdtemp())
    w = MainWindow(tmp / "data", RESOURCES, QSettings(str(tmp / "s.ini"), QSettings.IniFormat))
    w.show()

    def shown() -> None:
        print(json.dumps({"shown_s": time.time() - t0}))
        w.close()
        app.quit()

    QTimer.singleShot(0, shown)
    app.exec()


def wait_for(app, cond, timeout: float) -> None:
    """Process Qt events until ``cond()`` holds (TimeoutError after ``timeout`` s)."""
    end = time.perf_counter() + timeout
    while not cond():
        app.processEvents()
        time.sleep(0.001)
        if time.perf_counter() > end:
            raise TimeoutError


def example_images(n_classes: int, data_root: Path | None) -> list[tuple[str, list]]:
    import numpy as np
    from PIL import Image

    from nomgui.glyph import glyph_from_array

    out = []
    if data_root is not None:
        with zipfile.ZipFile(data_root / "images_evaluation.zip") as zf, \
             zipfile.ZipFile(data_root / "images_background.zip") as zb:
            for z in (zf, zb):
                names = sorted(n for n in z.namelist() if n.endswith(".png"))
                by_class: dict[str, list[str]] = {}
                for n in names:
                    by_class.setdefault(n.rsplit("/", 1)[0], []).append(n)
                for cls, files in by_class.items():
                    if len(out) == n_classes:
                        return out
                    glyphs = []
                    for f in files[:2]:
                        with Image.open(z.open(f)) as im:
                            glyphs.append(glyph_from_array(np.asarray(im.convert("L")), f))
                    out.append((cls.replace("/", "-"), glyphs))
        return out
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        img = np.full((105, 105), 255, np.uint8)
        for _ in range(3):
            y, x = rng.integers(10, 80, size=2)
            img[y:y + 20, x:x + 5] = 0
        out.append((f"class{c}", [glyph_from_array(img, "gen"), glyph_from_array(img, "gen")]))
    return out


def stroke_latency(n_classes: int, strokes: int, data_root: Path | None) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nomgui.app import RESOURCES
    from nomgui.classset import ClassSetStore
    from nomgui.mainwindow import MainWindow
    from tests.gui.conftest import draw_stroke, line

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    store = ClassSetStore(tmp / "data" / "classsets")
    cs = store.create(f"bench {n_classes}")
    for name, glyphs in example_images(n_classes, data_root):
        cs.add_class(name, "", glyphs)
    settings = QSettings(str(tmp / "s.ini"), QSettings.IniFormat)
    settings.setValue("classset/folder", str(cs.folder))
    t0 = time.perf_counter()
    w = MainWindow(tmp / "data", RESOURCES, settings)
    w.show()

    def wait(cond, timeout=300.0) -> None:
        wait_for(app, cond, timeout)

    wait(lambda: w.fitted)
    ready = time.perf_counter() - t0
    times = []
    rng = __import__("random").Random(0)
    for _ in range(strokes):
        w.canvas.clear()
        w.last_latency = None
        x0, y0, x1, y1 = (rng.uniform(30, 220) for _ in range(4))
        draw_stroke(w.canvas, line(x0, y0, x1, y1))
        wait(lambda: w.last_latency is not None)
        times.append(w.last_latency)
    w.close()
    return {"classes": n_classes, "examples": 2 * n_classes,
            "model_load_and_fit_s": round(ready, 2),
            "stroke_to_candidates_ms_median": round(1000 * statistics.median(times), 1),
            "debounce_ms": __import__("nomgui.mainwindow").mainwindow.DEBOUNCE_MS}


def facade_timings(data_root: Path | None, repeats: int) -> list[dict]:
    import torch

    from trainer.api import load_model, normalize_glyph

    sets = {n: example_images(n, data_root) for n in (20, 1000)}
    prepared = {n: ([normalize_glyph(g.image) for _, gs in cls for g in gs],
                    [name for name, gs in cls for _ in gs]) for n, cls in sets.items()}
    probe = prepared[1000][0][0]

    def median_s(fn) -> float:
        fn()  # warm-up: first calls allocate and pick kernels
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    def first_fit(model, n: int):
        # A fresh Model (the learner already loaded): no fit remembered from an earlier call.
        return type(model)(model.learner, model.info, model.device).fit(*prepared[n])

    rows = []
    for path in sorted((REPO / "resources" / "models").glob("*.pt")):
        model = load_model(path)
        fitted = model.fit(*prepared[1000])
        rows.append({
            "model": path.name,
            "load_ms": round(1000 * median_s(lambda p=path: load_model(p)), 1),
            "fit_20_ms": round(1000 * median_s(lambda m=model: first_fit(m, 20)), 1),
            "fit_1000_ms": round(1000 * median_s(lambda m=model: first_fit(m, 1000)), 1),
            "refit_1000_ms": round(1000 * median_s(lambda m=model: m.fit(*prepared[1000])), 1),
            "predict_1000_ms": round(1000 * median_s(lambda f=fitted: f.top_k(probe)), 2),
            "threads": torch.get_num_threads(),
        })
    return rows


def fit_rounds(data_root: Path | None, repeats: int) -> dict:
    import torch

    from trainer.api import Model, load_model, normalize_glyph

    cls = example_images(1000, data_root)
    glyphs = [normalize_glyph(g.image) for _, gs in cls for g in gs]
    labels = [name for name, gs in cls for _ in gs]
    models = {p.name: load_model(p) for p in sorted((REPO / "resources" / "models").glob("*.pt"))}

    def first_fit(m: Model) -> float:
        t = time.perf_counter()
        Model(m.learner, m.info, m.device).fit(glyphs, labels)  # nothing remembered
        return time.perf_counter() - t

    for m in models.values():
        first_fit(m)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, m in models.items():
            times[name].append(first_fit(m))
    return {"threads": torch.get_num_threads(),
            **{name: {"fit_1000_s_median": round(statistics.median(v), 2),
                      "fit_1000_s_min": round(min(v), 2)} for name, v in times.items()}}


def lookup_model_path() -> Path:
    from nomgui.lookupset import LOOKUP_MODELS

    for name in LOOKUP_MODELS:
        if (REPO / "resources" / "models" / name).is_file():
            return REPO / "resources" / "models" / name
    raise SystemExit("no lookup model in resources/models")


def lookup_facade(cache: Path, repeats: int) -> dict:
    import torch
    from PIL import Image, ImageDraw, ImageFont

    from trainer.api import load_model, nom_vocabulary, normalize_glyph

    path = lookup_model_path()
    model = load_model(path)
    t = time.perf_counter()
    fitted = model.fit_lookup(cache_dir=cache)
    first = time.perf_counter() - t
    t = time.perf_counter()
    fitted = model.fit_lookup(cache_dir=cache)
    again = time.perf_counter() - t
    vocab = nom_vocabulary()
    font = ImageFont.truetype("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf", 90)
    probes = []
    for _cp, ch in vocab[1000:1000 + 20]:  # a drawing-sized rendering of some characters
        img = Image.new("L", (128, 128), 255)
        ImageDraw.Draw(img).text((14, 10), ch, fill=0, font=font)
        try:
            probes.append(normalize_glyph(img, model.info.image_size,
                                          clean_print=model.info.clean_print))
        except ValueError:
            continue  # not in this font
    fitted.assess(probes[0], 30)  # warm-up
    times = []
    for i in range(max(repeats, 1) * 20):
        t = time.perf_counter()
        fitted.assess(probes[i % len(probes)], 30)
        times.append(time.perf_counter() - t)
    return {"model": path.name, "classes": len(fitted.classes),
            "first_fit_s": round(first, 1), "fit_from_cache_s": round(again, 2),
            "predict_30_of_all_ms_median": round(1000 * statistics.median(times), 2),
            "threads": torch.get_num_threads()}


def lookup_strokes(cache: Path, strokes: int) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nomgui.app import RESOURCES
    from nomgui.lookupset import LookupSet, lookup_folder
    from nomgui.mainwindow import MainWindow
    from tests.gui.conftest import draw_stroke, line

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    (tmp / "data" / "cache").mkdir(parents=True)
    (tmp / "data" / "cache" / "lookup").symlink_to(cache.resolve())
    settings = QSettings(str(tmp / "s.ini"), QSettings.IniFormat)
    settings.setValue("classset/folder", str(lookup_folder(tmp / "data")))
    settings.setValue("lookup/model", str(lookup_model_path()))
    t0 = time.perf_counter()
    w = MainWindow(tmp / "data", RESOURCES, settings)
    w.show()

    def wait(cond, timeout=900.0) -> None:
        wait_for(app, cond, timeout)

    wait(lambda: isinstance(w.classset, LookupSet) and w.fitted and w.model is not None
         and w.model.path == lookup_model_path())
    ready = time.perf_counter() - t0
    times = []
    rng = __import__("random").Random(0)
    for _ in range(strokes):
        w.canvas.clear()
        w.last_latency = None
        x0, y0, x1, y1 = (rng.uniform(30, 220) for _ in range(4))
        draw_stroke(w.canvas, line(x0, y0, x1, y1))
        wait(lambda: w.last_latency is not None)
        assert len(w.candidates.labels) == 10
        times.append(w.last_latency)
    w.close()
    return {"classes": len(w.classset.classes), "launch_to_fitted_from_cache_s": round(ready, 2),
            "stroke_to_candidates_ms_median": round(1000 * statistics.median(times), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path)
    p.add_argument("--launches", type=int, default=5)
    p.add_argument("--strokes", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5, help="facade timings: runs per figure")
    p.add_argument("--parts", nargs="+", default=["launch", "strokes", "facade"],
                   choices=["launch", "strokes", "facade", "fits", "lookup"],
                   help="what to measure")
    p.add_argument("--lookup-cache", type=Path,
                   default=Path(tempfile.gettempdir()) / "nomgui-bench-lookup",
                   help="lookup: where the font renderings and embeddings are cached")
    p.add_argument("--child-launch", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_launch is not None:
        child_launch(args.child_launch)
        return
    launches = []
    for _ in range(args.launches if "launch" in args.parts else 0):
        t0 = time.time()
        out = subprocess.run([sys.executable, __file__, "--child-launch", str(t0)],
                             capture_output=True, text=True, check=True).stdout
        launches.append(json.loads(out.strip().splitlines()[-1]))
    result = {}
    if launches:
        result["launch_to_window_shown_s_median"] = round(
            statistics.median(x["shown_s"] for x in launches), 3)
    if "strokes" in args.parts:
        result["class_sets"] = [stroke_latency(n, args.strokes, args.data_root)
                                for n in (20, 1000)]
    if "facade" in args.parts:
        result["facade"] = facade_timings(args.data_root, args.repeats)
    if "fits" in args.parts:
        result["fits"] = fit_rounds(args.data_root, args.repeats)
    if "lookup" in args.parts:
        result["lookup"] = lookup_facade(args.lookup_cache, args.repeats)
        result["lookup"].update(lookup_strokes(args.lookup_cache, args.strokes))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
