"""GUI monkey: seeded random user actions across the app's windows.

    python scripts/monkey.py --actions 1000 --seed 0 [--json]

Draws real strokes, undoes and redoes, teaches, makes, renames, deletes and edits classes,
switches models, loads good and bad files, pastes, imports and exports class sets, opens
other class sets, and annotates a folder, with every dialog answered at random (names
that clash, empty names, cancel). Every exception raised in a slot is counted (the
standalone run installs nomgui.errors' hook; under pytest, pytest-qt fails the test). At
the end the class set is reopened from disk and compared with what the window shows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soak  # scripts/soak.py: the same real-mouse strokes
from PIL import Image

NAMES = ["a", "b", "ka", "người", "𡨸", "x", "dash", "", "  ", "a", "B", "long name " * 3]


class Monkey:
    """Random actions on one MainWindow; dialogs are answered by ``answer_*``."""

    def __init__(self, window, seed: int, scratch: Path) -> None:
        self.w, self.rng, self.scratch = window, random.Random(seed), scratch
        self.done: Counter[str] = Counter()
        self.files = self._files()

    # -- dialog answers (installed by the caller with monkeypatch or setattr) -------------
    def answer_text(self, *args, **kwargs):
        if self.rng.random() < 0.15:
            return "", False
        return self.rng.choice(NAMES), True

    def answer_item(self, parent, title, label, items, current=0, editable=True, *args,
                    **kwargs):
        if not items or self.rng.random() < 0.15:
            return "", False
        if editable and self.rng.random() < 0.3:
            return self.rng.choice(NAMES), True  # typed a new name (editable combos)
        return self.rng.choice(list(items)), True

    def answer_question(self, *args, **kwargs):
        from PySide6.QtWidgets import QMessageBox

        return self.rng.choice([QMessageBox.Yes, QMessageBox.No])

    def answer_open_files(self, *args, **kwargs):
        k = self.rng.choice([1, 1, 2, 3])
        return [str(p) for p in self.rng.sample(self.files, k)], ""

    def answer_open_file(self, *args, **kwargs):
        zips = sorted(self.scratch.glob("*.zip"))
        if zips and self.rng.random() < 0.8:
            return str(self.rng.choice(zips)), ""
        return str(self.rng.choice(self.files)), ""  # not a zip: must be refused cleanly

    def answer_save_file(self, *args, **kwargs):
        return str(self.scratch / f"export-{self.rng.randrange(4)}.zip"), ""

    def answer_folder(self, *args, **kwargs):
        return str(self.scratch / "glyphs") if self.rng.random() < 0.8 else ""

    # -- material -------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        folder = self.scratch / "glyphs"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        out = []
        for i in range(8):
            img = np.full((64, 64), 255, np.uint8)
            x0, y0 = rng.integers(5, 30, size=2)
            img[y0:y0 + 25, x0:x0 + 6] = 0
            img[y0 + 20:y0 + 26, x0:x0 + 25] = 0
            path = folder / f"g{i}.png"
            Image.fromarray(img).save(path)
            out.append(path)
        Image.new("L", (40, 40), 255).save(folder / "blank.png")  # no ink
        (folder / "notes.png").write_text("not an image")  # a lie of an extension
        return [*out, folder / "blank.png", folder / "notes.png"]

    def stroke(self) -> None:
        """A random three-point stroke, drawn with the soak's real mouse events."""
        corners = np.array([(self.rng.uniform(0.1, 0.9), self.rng.uniform(0.1, 0.9))
                            for _ in range(3)]) * soak.GRID
        points = [corners[0]] + [a + (b - a) * t for a, b in itertools.pairwise(corners)
                                 for t in np.linspace(0, 1, 12)[1:]]
        soak.replay_stroke(self.w.canvas, np.array(points))

    # -- helpers --------------------------------------------------------------------------
    def action(self, text: str):
        from PySide6.QtGui import QAction

        for a in self.w.findChildren(QAction):
            plain = a.text().replace("&", "")
            if plain == text or (text in ("Undo", "Redo") and plain.startswith(text)
                                 and a.shortcut().toString()):
                return a
        raise KeyError(text)

    def trigger(self, text: str) -> None:
        a = self.action(text)
        if a.isEnabled():
            a.trigger()

    def click(self, button) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        if button.isVisible() and button.isEnabled():
            QTest.mouseClick(button, Qt.LeftButton)

    def click_item(self, view, index: int) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        item = view.item(index)
        if item is None or item.isHidden():
            return
        QTest.mouseClick(view.viewport(), Qt.LeftButton, Qt.NoModifier,
                         view.visualItemRect(item).center())

    def pick_class(self) -> None:
        n = self.w.class_list.count()
        if n:
            self.click_item(self.w.class_list, self.rng.randrange(n))

    # -- the actions ----------------------------------------------------------------------
    def actions(self) -> list[tuple[float, str, Callable[[], None]]]:
        w = self.w

        def paste() -> None:
            from PySide6.QtGui import QImage
            from PySide6.QtWidgets import QApplication

            cb = QApplication.clipboard()
            choice = self.rng.random()
            if choice < 0.4:
                cb.setImage(QImage(str(self.rng.choice(self.files[:8]))))
            elif choice < 0.7:
                cb.setText("just text")
            else:
                cb.clear()
            self.trigger("Paste glyph")

        def remove_example() -> None:
            self.pick_class()
            if w.example_list.count():
                self.click_item(w.example_list, self.rng.randrange(w.example_list.count()))
                self.trigger("Remove selected example")

        def switch_model() -> None:
            acts = [a for a in w.model_group.actions() if a.isEnabled()]
            if acts:
                self.rng.choice(acts).trigger()

        def teach_key() -> None:
            self.trigger(f"Teach: glyph is candidate {self.rng.randrange(1, 6)}")

        def find() -> None:
            w.find_box.setText(self.rng.choice(["", "", "a", "người", "zzz"]))

        def annotate() -> None:
            win = w.show_annotate()
            choice = self.rng.random()
            if choice < 0.15 or win.session is None:
                self.click(win.open_folder_button)
            elif choice < 0.5:
                self.click(win.accept_button)
            elif choice < 0.65:
                self.click(win.skip_button)
            elif choice < 0.75:
                self.click(win.undo_button)
            elif choice < 0.85:
                self.click(self.rng.choice(win.proposal_buttons))
            elif choice < 0.95:
                self.click(win.join_button)
            else:
                win.close()

        return [
            (30, "draw", self.stroke),
            (6, "undo", lambda: self.trigger("Undo")),
            (3, "redo", lambda: self.trigger("Redo")),
            (4, "clear", lambda: self.trigger("Clear canvas")),
            (5, "teach key", teach_key),
            (3, "teach button", lambda: self.click(w.teach_button)),
            (3, "new class", lambda: self.trigger("New class from glyph…")),
            (4, "add to class", lambda: (self.pick_class(), self.click(w.add_example_button))),
            (3, "remove example", remove_example),
            (2, "rename class", lambda: (self.pick_class(), self.trigger("Rename class…"))),
            (2, "delete class", lambda: (self.pick_class(), self.trigger("Delete class"))),
            (2, "find", find),
            (2, "switch model", switch_model),
            (3, "load images", lambda: self.trigger("Load glyph images…")),
            (2, "paste", paste),
            (1, "export zip", lambda: self.trigger("Export class set as zip…")),
            (1, "import zip", lambda: self.trigger("Import class set from zip…")),
            (1, "new class set", lambda: self.trigger("New class set…")),
            (1, "open class set", lambda: self.trigger("Open class set…")),
            (3, "recognise now", lambda: self.trigger("Recognise now")),
            (4, "annotate", annotate),
        ]

    def run(self, n: int, progress: Callable[[str], None] | None = None) -> dict:
        from PySide6.QtWidgets import QApplication

        table = self.actions()
        weights = [t[0] for t in table]
        t0 = time.perf_counter()
        for i in range(n):
            _, name, act = self.rng.choices(table, weights)[0]
            act()
            self.done[name] += 1
            QApplication.processEvents()
            if progress and (i + 1) % 200 == 0:
                progress(f"{i + 1} actions")
        return {"actions": n, "seconds": round(time.perf_counter() - t0, 1),
                "by_kind": dict(sorted(self.done.items()))}


def install_answers(monkey: Monkey, setattr_: Callable[[object, str, object], None]) -> None:
    """Route every modal dialog to the monkey (``setattr_`` is monkeypatch.setattr or a
    plain setattr for the standalone run)."""
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    setattr_(QInputDialog, "getText", staticmethod(monkey.answer_text))
    setattr_(QInputDialog, "getItem", staticmethod(monkey.answer_item))
    setattr_(QMessageBox, "question", staticmethod(monkey.answer_question))
    for name in ("warning", "information", "critical"):
        setattr_(QMessageBox, name, staticmethod(lambda *a, **k: QMessageBox.Ok))
    setattr_(QFileDialog, "getOpenFileNames", staticmethod(monkey.answer_open_files))
    setattr_(QFileDialog, "getOpenFileName", staticmethod(monkey.answer_open_file))
    setattr_(QFileDialog, "getSaveFileName", staticmethod(monkey.answer_save_file))
    setattr_(QFileDialog, "getExistingDirectory", staticmethod(monkey.answer_folder))


def window_matches_disk(window) -> list[str]:
    """Differences between the class set the window shows and the one reopened from disk."""
    from nomgui.classset import ClassSet

    shown = window.classset
    disk = ClassSet.open(shown.folder)
    problems = []
    a = [(c.id, c.name, c.char, list(c.examples)) for c in shown.classes]
    b = [(c.id, c.name, c.char, list(c.examples)) for c in disk.classes]
    if a != b:
        problems.append(f"classes differ: window {a[:3]}... disk {b[:3]}...")
    if window.class_list.count() != len(shown.classes):
        problems.append(f"the list shows {window.class_list.count()} classes, the set has "
                        f"{len(shown.classes)}")
    if disk.warnings:
        problems.append(f"reopening needed repairs: {disk.warnings}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nomgui import errors
    from nomgui.app import RESOURCES
    from nomgui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="nomgui-monkey-"))
    caught: list[str] = []  # the first exception's details (hook.count counts them all)
    hook = errors.install(work / "logs", show=lambda text, details: caught.append(details))
    settings = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(work / "data", RESOURCES, settings)
    window.show()
    monkey = Monkey(window, args.seed, work / "scratch")
    install_answers(monkey, setattr)
    end = time.monotonic() + 120
    while window.model is None and time.monotonic() < end:
        app.processEvents()
    result = monkey.run(args.actions, None if args.json else lambda m: print(m, flush=True))
    end = time.monotonic() + 60
    while not window.fitted and time.monotonic() < end:
        app.processEvents()
    result["exceptions"] = hook.count
    result["window_matches_disk"] = not window_matches_disk(window)
    hook.uninstall()
    window.close()
    print(json.dumps(result, indent=None if args.json else 1, ensure_ascii=False))
    if caught:
        print(caught[0], file=sys.stderr)
    return 0 if hook.count == 0 and result["window_matches_disk"] else 1


if __name__ == "__main__":
    sys.exit(main())
