"""The app end to end, offscreen, with real mouse events and the bundled model."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nomgui.classset import MANIFEST, ClassSet
from tests.conftest import HAS_OMNIGLOT, OMNIGLOT, draw_glyph, glyph_strokes
from tests.gui.conftest import draw_stroke, line, menu_action

pytestmark = pytest.mark.gui


def test_gui_modules_do_not_import_torch():
    code = ("import sys, nomgui.app, nomgui.mainwindow, nomgui.recognizer; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_first_launch_has_a_model_and_the_starter_set(make_window):
    w = make_window()
    assert w.model is not None and w.model.bundled
    assert w.classset is not None and len(w.classset.classes) == 10
    assert w.fitted and not w.message.isVisible()


def test_drawing_undo_redo_clear(make_window, qtbot):
    w = make_window()
    c = w.canvas
    draw_stroke(c, line(60, 40, 60, 220))
    draw_stroke(c, line(60, 40, 180, 40))
    assert len(c.strokes()) == 2 and c.undo_stack.count() == 2
    c.undo_stack.undo()
    assert len(c.strokes()) == 1
    c.undo_stack.redo()
    assert len(c.strokes()) == 2
    img = c.render_image()
    assert img.shape == (256, 256) and img[130, 60] < 100 and img[200, 200] == 255
    c.clear()
    assert c.is_empty()
    c.undo_stack.undo()  # clear is undoable too
    assert len(c.strokes()) == 2
    # recognition follows the strokes (debounced) and shows the model's input
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=20000)
    assert w.model_sees.pixmap() is not None and not w.model_sees.pixmap().isNull()


def _class_images(tmp_path: Path, n_classes: int, per_class: int) -> dict[str, list[Path]]:
    """Real Omniglot drawings when ../shared has them, else generated ones."""
    out: dict[str, list[Path]] = {}
    if HAS_OMNIGLOT:
        with zipfile.ZipFile(OMNIGLOT / "images_evaluation.zip") as zf:
            names = sorted(n for n in zf.namelist() if n.endswith(".png"))
            chars = sorted({n.rsplit("/", 1)[0] for n in names})[::37][:n_classes]
            for ch in chars:
                files = [n for n in names if n.startswith(ch + "/")][:per_class]
                label = ch.split("/", 1)[1].replace("/", "-")
                out[label] = []
                for f in files:
                    dest = tmp_path / label / Path(f).name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(zf.read(f))
                    out[label].append(dest)
        return out
    rng = np.random.default_rng(7)
    for c in range(n_classes):
        strokes = glyph_strokes(rng)
        label = f"gen{c}"
        (tmp_path / label).mkdir(parents=True)
        out[label] = []
        for i in range(per_class):
            p = tmp_path / label / f"{i}.png"
            draw_glyph(strokes, rng).save(p)
            out[label].append(p)
    return out


def test_build_a_class_set_from_files_and_recognise_a_held_out_glyph(
        make_window, dialogs, qtbot, tmp_path):
    w = make_window()
    dialogs.texts.append("Omniglot test")
    w.new_classset()
    assert w.classset.name == "Omniglot test" and not w.classset.classes
    images = _class_images(tmp_path / "img", 5, 6)
    for label, files in images.items():
        dialogs.items.append(label)  # "add N images as examples of the class ..."
        w.load_files(files[:5])
    assert [len(c.examples) for c in w.classset.classes] == [5] * 5
    qtbot.waitUntil(lambda: w.fitted, timeout=30000)

    right = 0
    for label, files in images.items():
        w.load_files([files[5]])  # one held-out drawing: shown on the canvas, recognised
        qtbot.waitUntil(lambda: bool(w.candidates.labels), timeout=20000)
        right += w.candidates.labels[0] == label
        w.candidates.labels = []
        w.canvas.clear()
    assert right >= 4, f"only {right} of 5 held-out glyphs recognised"


def test_teach_loop_adds_the_drawing_and_refits(make_window, dialogs, qtbot):
    w = make_window()
    draw_stroke(w.canvas, line(128, 30, 128, 230))
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=20000)
    target = w.candidates.labels[2]
    cls = next(c for c in w.classset.classes if c.label == target)
    before = len(cls.examples)
    w.teach(2)
    assert len(cls.examples) == before + 1 and w.canvas.is_empty()
    assert not w.fitted  # a refit is under way
    qtbot.waitUntil(lambda: w.fitted, timeout=20000)
    # a brand-new class from a drawing
    draw_stroke(w.canvas, line(40, 40, 220, 220))
    dialogs.texts.append("slash")
    w.new_class_from_glyph()
    assert w.classset.find_by_name("slash") is not None


def test_restart_restores_class_set_model_and_theme(make_window, dialogs, tmp_path):
    w = make_window()
    dialogs.texts.append("Persisted")
    w.new_classset()
    draw_stroke(w.canvas, line(50, 50, 200, 200))
    dialogs.texts.append("x")
    w.new_class_from_glyph()
    w.set_theme("dark")
    model_path = w.model.path
    w.close()
    w2 = make_window()
    assert w2.classset.name == "Persisted" and w2.classset.find_by_name("x") is not None
    assert w2.model.path == model_path
    assert w2.settings.value("view/theme") == "dark"
    # one class is not enough to recognise anything: a plain message, no traceback
    assert "at least two classes" in w2.message.text()


def test_bad_inputs_get_messages_and_keep_the_store(make_window, dialogs, qtbot, tmp_path):
    w = make_window()
    before = sum(len(c.examples) for c in w.classset.classes)
    (tmp_path / "notes.txt").write_text("not an image")
    w.load_files([tmp_path / "notes.txt"])
    assert "notes.txt" in dialogs.warnings[-1]
    w.new_class_from_glyph()  # empty canvas
    assert "canvas is empty" in w.message.text()
    w.add_glyph_to_selected()
    assert sum(len(c.examples) for c in w.classset.classes) == before
    # a broken model file among the user's models is reported, the good one still used
    (w.data_dir / "models").mkdir(parents=True, exist_ok=True)
    (w.data_dir / "models" / "broken.pt").write_bytes(b"garbage")
    w.refresh_models()
    qtbot.waitUntil(lambda: "broken.pt" in w.statusBar().currentMessage(), timeout=20000)
    assert w.model is not None and w.model.bundled


def test_damaged_manifest_is_reported_and_repaired(make_window, dialogs, tmp_path):
    w = make_window()
    folder = w.classset.folder
    n = sum(len(c.examples) for c in w.classset.classes)
    w.close()
    (folder / MANIFEST).write_text("{ half written")
    w2 = make_window()
    assert any("damaged" in m for m in dialogs.warnings)
    assert sum(len(c.examples) for c in w2.classset.classes) == n
    assert ClassSet.open(folder).warnings == []


def test_export_and_import_zip(make_window, dialogs, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w = make_window()
    out = tmp_path / "digits.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(out), "")))
    w.export_zip()
    assert zipfile.ZipFile(out).namelist()
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(out), "")))
    w.import_zip()
    assert w.classset.name == "digits" and len(w.classset.classes) == 10


def test_paste_image_from_clipboard(make_window, qtbot):
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    w = make_window()
    img = Image.new("L", (80, 80), 255)
    img.paste(0, (30, 10, 45, 70))
    arr = np.asarray(img)
    QApplication.clipboard().setImage(
        QImage(arr.data, 80, 80, 80, QImage.Format_Grayscale8).copy())
    paste = menu_action(w, "Paste glyph")
    paste.trigger()  # Edit > Paste glyph (Ctrl+V)
    assert not w.canvas.is_empty()
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=20000)
    assert w.candidates.labels[0] == "1"  # a vertical bar is the digit one


def test_nom_starter_set_readings_and_find(make_window, dialogs, qtbot, tmp_path):
    w = make_window()
    sets = dict((name, folder) for folder, name in w.store.list())
    assert "Starter: Nôm" in sets
    w._open_folder(sets["Starter: Nôm"])
    assert len(w.classset.classes) == 20
    # a set of CJK characters opens with the Nôm model (the digits keep theirs)
    qtbot.waitUntil(lambda: w.model.path.name == "protonet-nom.pt" and w.fitted,
                    timeout=30000)
    w.find_box.setText("nguoi")  # without diacritics
    visible = [w.class_list.item(i).text() for i in range(w.class_list.count())
               if not w.class_list.item(i).isHidden()]
    assert len(visible) == 1 and visible[0].startswith("𠊛") and "người" in visible[0]
    w.find_box.setText("một")  # with diacritics
    w._select_first_match()
    assert w.classset.get(w._selected_class_id()).char == "𠬠"
    w.find_box.clear()
    # a printed glyph loaded from a file is recognised, and its reading shown
    qtbot.waitUntil(lambda: w.fitted, timeout=30000)
    example = w.classset.example_path(w._selected_class_id(),
                                      w.classset.get(w._selected_class_id()).examples[0])
    w.load_files([example])
    qtbot.waitUntil(lambda: bool(w.candidates.labels), timeout=20000)
    assert w.candidates.labels[0] == "𠬠"
    assert "một" in w.candidates.item(0, 2).text()
    w.copy_candidate(0)  # the character itself, not the class name, goes to the clipboard
    assert w.statusBar().currentMessage() == "copied '𠬠'"
    w._open_folder(sets["Starter: digits"])
    qtbot.waitUntil(lambda: w.model.path.name == "protonet-omniglot.pt" and w.fitted,
                    timeout=30000)


def _load_via_menu(w, monkeypatch, paths: list[Path]) -> None:
    """File > Load glyph images…, the dialog answering ``paths``."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(p) for p in paths], "")))
    menu_action(w, "Load glyph images…").trigger()


def test_several_images_go_to_the_highlighted_class_or_none(make_window, dialogs, qtbot,
                                                             monkeypatch, tmp_path):
    """Found in a real window: loading several images offered the set's first class, so
    a careless OK filed them all under '0' (in the lookup, under its first code point)."""
    from PySide6.QtCore import Qt

    w = make_window()
    paths = []
    for i in range(2):
        img = Image.new("L", (100, 100), 255)
        img.paste(0, (45, 10 + i, 55, 90))  # a 1
        img.save(tmp_path / f"one{i}.png")
        paths.append(tmp_path / f"one{i}.png")
    counts = {c.name: len(c.examples) for c in w.classset.classes}

    # Nothing highlighted: the dialog opens on an empty choice; OK on it adds nothing.
    w.class_list.clearSelection()
    dialogs.items.append("")
    _load_via_menu(w, monkeypatch, paths)
    assert dialogs.offered[dialogs.current] == ""
    assert {c.name: len(c.examples) for c in w.classset.classes} == counts
    assert "no image was added" in w.statusBar().currentMessage()

    # The class '1' highlighted (clicked in the list): the dialog opens on it.
    item = next(w.class_list.item(i) for i in range(w.class_list.count())
                if w.classset.classes[i].name == "1")
    qtbot.mouseClick(w.class_list.viewport(), Qt.LeftButton,
                     pos=w.class_list.visualItemRect(item).center())
    dialogs.items.append("1")
    _load_via_menu(w, monkeypatch, paths)
    assert dialogs.offered[dialogs.current] == "1"
    assert w.classset.find_by_name("1") is not None
    assert len(w.classset.find_by_name("1").examples) == counts["1"] + 2
    assert not dialogs.warnings


def test_a_blank_image_says_so_and_clears_what_the_model_sees(make_window, dialogs, qtbot,
                                                               monkeypatch, tmp_path):
    """Found in a real window: after a glyph, a blank image left the previous glyph in
    'What the model sees' beside 'The canvas is empty'."""
    w = make_window()
    img = Image.new("L", (100, 100), 255)
    img.paste(0, (45, 10, 55, 90))
    img.save(tmp_path / "one.png")
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    before = w.answered_request
    _load_via_menu(w, monkeypatch, [tmp_path / "one.png"])
    qtbot.waitUntil(lambda: w.answered_request > before and bool(w.candidates.labels),
                    timeout=20000)
    assert not w.model_sees.pixmap().isNull()
    before = w.answered_request
    _load_via_menu(w, monkeypatch, [tmp_path / "blank.png"])
    qtbot.waitUntil(lambda: w.answered_request > before, timeout=20000)
    assert "has no ink" in w.message.text()
    assert w.model_sees.pixmap().isNull() and not w.candidates.labels
    assert not dialogs.warnings


def test_the_status_counts_read_in_the_singular(make_window, dialogs, qtbot):
    w = make_window()
    dialogs.texts.append("Solo")
    menu_action(w, "New class set…").trigger()
    draw_stroke(w.canvas, line(50, 50, 200, 200))
    dialogs.texts.append("x")
    menu_action(w, "New class from glyph…").trigger()
    assert w.class_status.text() == "1 class, 1 example"  # was "1 classes, 1 examples"
