"""Every button and action of every window, pressed as a user presses it.

Buttons get a real mouse click (``qtbot.mouseClick``), actions ``QAction.trigger()``, with
every file, input and message dialog answered "Cancel" by a fixture. pytest-qt fails the
test on any exception raised in a slot, which is what this is for: a ``clicked(bool)``
passing ``False`` into a slot's path argument, a ``None`` clipboard, a stale selection.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
    QWidget,
)

from nomgui.training import OUT, PROGRESS, RunStore, TrainRequest
from nomgui.trainingui import TrainingDialog
from tests.gui.conftest import draw_stroke, line, menu_action

pytestmark = pytest.mark.gui


class Answers:
    """What the cancelled dialogs were asked, so a test can check the user was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.started: list[str] = []


@pytest.fixture
def cancel_dialogs(monkeypatch) -> Answers:
    a = Answers()

    def asked(kind, result):
        def answer(*args, **kwargs):
            a.asked.append(kind)
            return result
        return staticmethod(answer)

    monkeypatch.setattr(QFileDialog, "getOpenFileName", asked("open", ("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", asked("open many", ([], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", asked("save", ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", asked("folder", ""))
    monkeypatch.setattr(QInputDialog, "getText", asked("text", ("", False)))
    monkeypatch.setattr(QInputDialog, "getItem", asked("item", ("", False)))
    for name in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, asked(name, QMessageBox.Ok))
    monkeypatch.setattr(QMessageBox, "question", asked("question", QMessageBox.No))
    monkeypatch.setattr(QMessageBox, "about", asked("about", None))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: a.asked.append("box") or 0)
    monkeypatch.setattr(QDialog, "exec", lambda self: a.asked.append("dialog") or 0)
    monkeypatch.setattr(QDesktopServices, "openUrl", asked("url", True))
    # Runs are not started here (test_training.py runs real trainers): a button that
    # starts one is recorded instead.
    monkeypatch.setattr(RunStore, "start",
                        lambda self, run, resume=False: a.started.append(run.info.id))
    return a


def press_everything(qtbot, window: QWidget, skip: tuple[str, ...] = ()) -> list[str]:
    """Click every enabled, visible button and trigger every enabled action once; returns
    their texts. Actions named in ``skip`` (e.g. Quit) are left for the caller."""
    pressed = []
    for button in window.findChildren(QAbstractButton):
        if not shiboken6.isValid(button):
            continue
        if button.isVisible() and button.isEnabled() and button.text() not in skip:
            qtbot.mouseClick(button, Qt.LeftButton)
            pressed.append(button.text())
            qtbot.wait(5)
    seen = set()
    for action in window.findChildren(QAction):
        # An earlier press may have rebuilt a menu (Refresh model list): its old actions
        # are gone, as they are from the user's screen.
        if not shiboken6.isValid(action):
            continue
        if action in seen or action.isSeparator() or not action.isEnabled():
            continue
        seen.add(action)
        if action.text().replace("&", "") in skip:
            continue
        action.trigger()
        pressed.append(action.text())
        qtbot.wait(5)
    return pressed


def _idle(qtbot, w) -> None:
    qtbot.waitUntil(lambda: w.model is not None and (w.fitted or w.message.isVisible()),
                    timeout=60_000)


def test_every_button_and_action_of_the_main_window(make_window, qtbot, cancel_dialogs):
    w = make_window()
    before = sorted(c.name for c in w.classset.classes)
    # Empty canvas first, then with a drawing and a highlighted class: the same presses
    # must do nothing harmful either way.
    # The built-in Nôm lookup replaces the class set (and renders 13,000 code points):
    # test_lookup.py presses every button with it open.
    lookup = "Open Nôm: all code points (built in)"
    pressed = press_everything(qtbot, w, skip=("Quit", lookup))
    assert len(pressed) > 40 and "dialog" in cancel_dialogs.asked
    _idle(qtbot, w)
    QApplication.clipboard().clear()
    draw_stroke(w.canvas, line(128, 30, 128, 226))
    item = w.class_list.item(0)
    qtbot.mouseClick(w.class_list.viewport(), Qt.LeftButton,
                     pos=w.class_list.visualItemRect(item).center())
    assert w.add_example_button.isEnabled()
    press_everything(qtbot, w, skip=("Quit", lookup))
    _idle(qtbot, w)
    # Cancelled dialogs changed nothing but what the buttons do without asking (teach,
    # add glyph, undo/redo): the classes are the same ones.
    assert sorted(c.name for c in w.classset.classes) == before
    quit_action = menu_action(w, "Quit")
    quit_action.trigger()
    assert not w.isVisible()


def test_every_button_of_the_annotation_window(make_window, qtbot, cancel_dialogs, tmp_path,
                                               resources, monkeypatch):
    w = make_window()
    annotate = menu_action(w, "Annotate glyphs…")
    annotate.trigger()
    win = w.annotate_window
    assert win.isVisible()
    press_everything(qtbot, win)  # no session yet
    assert "folder" in cancel_dialogs.asked  # "Open folder…" asked for a folder

    # The meaningful path, by clicking: open a folder -> its glyphs appear.
    scans = tmp_path / "scans"
    scans.mkdir()
    for digit in "0123":
        shutil.copy(resources / "starter" / "digits" / digit / "serif.png",
                    scans / f"{digit}.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(scans)))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("scans", True)))
    qtbot.mouseClick(win.open_folder_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: win.queue.count() == 4, timeout=10_000)
    qtbot.waitUntil(lambda: win.current is not None and bool(win.current.proposals),
                    timeout=30_000)
    qtbot.mouseClick(win.accept_button, Qt.LeftButton)
    assert len(win.session.labelled()) == 1

    # Export by clicking: files on disk.
    out = tmp_path / "export"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(out)))
    qtbot.mouseClick(win.export_button, Qt.LeftButton)
    assert (out / "manifest.csv").exists() and list(out.rglob("*.png"))

    press_everything(qtbot, win)  # with a session open


def _finished_run(store: RunStore, model: Path) -> None:
    run = store.create(TrainRequest(command="meta-train", algo="protonet", dataset="folder",
                                    data_root=str(model.parent), steps=10))
    (run.folder / OUT).mkdir(exist_ok=True)
    shutil.copy(model, run.model_path)
    events = [{"event": "start", "step": 0, "steps": 10},
              {"event": "step", "step": 10, "loss": 0.5, "acc": 80.0},
              {"event": "val", "step": 10, "val_acc": 90.0, "best_val": 90.0},
              {"event": "done", "step": 10, "status": "finished"}]
    (run.folder / PROGRESS).write_text("".join(json.dumps(e) + "\n" for e in events))


def test_every_button_of_the_runs_window_and_add_to_models_once(
        make_window, qtbot, cancel_dialogs, resources):
    w = make_window()
    _finished_run(w.run_store, resources / "models" / "protonet-omniglot.pt")
    runs_action = menu_action(w, "Training runs…")
    runs_action.trigger()
    runs = w.runs_window
    assert runs.isVisible() and runs.register_button.isEnabled()
    qtbot.mouseClick(runs.register_button, Qt.LeftButton)
    assert len(list((w.data_dir / "models").glob("*.pt"))) == 1
    assert len(cancel_dialogs.started) == 1  # its evaluation
    runs.refresh()
    # Added once: the button is off, a second click (or a double click) does nothing.
    row = next(i for i, r in enumerate(runs.runs) if r.request.command != "evaluate")
    runs.table.selectRow(row)
    assert not runs.register_button.isEnabled()
    qtbot.mouseClick(runs.register_button, Qt.LeftButton)
    assert len(list((w.data_dir / "models").glob("*.pt"))) == 1
    assert len(cancel_dialogs.started) == 1
    press_everything(qtbot, runs)
    # Its Close button and Esc put it away (without a window manager there was no way);
    # the menu shows it again.
    runs_action.trigger()
    assert runs.isVisible()
    qtbot.mouseClick(runs.close_button, Qt.LeftButton)
    assert not runs.isVisible()
    runs_action.trigger()
    runs.activateWindow()
    qtbot.waitUntil(runs.isActiveWindow, timeout=5000)
    qtbot.keyClick(runs.table, Qt.Key_Escape)
    assert not runs.isVisible()


@pytest.mark.parametrize("kind", ["meta-train", "pretrain", "finetune", "evaluate"])
def test_every_button_of_the_training_dialogs(qtbot, tmp_path, cancel_dialogs, kind):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    d = TrainingDialog(kind, [], None, ("mine", 3, 2), settings)
    qtbot.addWidget(d)
    d.show()
    pressed = press_everything(qtbot, d)
    assert pressed
    if kind != "finetune":  # fine-tuning trains on the class set: no folder to browse for
        assert "folder" in cancel_dialogs.asked  # Browse asked for a folder


def test_paste_with_an_empty_clipboard_says_so(make_window, qtbot, cancel_dialogs):
    w = make_window()
    QApplication.clipboard().clear()
    paste = menu_action(w, "Paste glyph")
    paste.trigger()
    assert "no image" in w.statusBar().currentMessage()


def test_a_loaded_image_through_the_menu(make_window, qtbot, monkeypatch, tmp_path):
    w = make_window()
    img = tmp_path / "one.png"
    Image.open(w.resources / "starter" / "digits" / "1" / "serif.png").save(img)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(img)], "")))
    load = menu_action(w, "Load glyph images…")
    load.trigger()
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=20_000)
    assert w.candidates.labels[0].startswith("1")
