"""The Nôm lookup in the window: the built-in set of every code point, its 10 (to 30)
candidates with readings, the transcription line and recent characters, teaching it, and
reading search over the whole vocabulary.

Fast: the vocabulary is cut to a few hundred code points (the real file's first ones plus a
few named below) and the bundled 28 px ProtoNet names them, so the first fit renders
about a thousand font images. Needs one of the Nôm fonts (.ci/run installs
fonts-hanazono and fonts-babelstone-han); no data outside the repository.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from nomgui.app import RESOURCES
from nomgui.lookupset import LOOKUP_MODELS, LOOKUP_NAME, LookupSet, lookup_folder
from tests.gui.conftest import draw_stroke, line, menu_action
from tests.gui.test_every_button import cancel_dialogs, press_everything  # noqa: F401

pytestmark = pytest.mark.gui

SKY = "𡗶"  # U+215F6, read giời (Unihan kVietnamese)
HANAZONO = Path("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf")
HANAZONO_B = Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")
BABELSTONE = Path("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf")
OPEN = f"Open {LOOKUP_NAME} (built in)"


def _font_for(char: str) -> Path | None:
    for f in ((HANAZONO if ord(char) < 0x10000 else HANAZONO_B), BABELSTONE):
        if f.is_file():
            return f
    return None


@pytest.fixture
def tiny_vocab(monkeypatch):
    """The lookup's vocabulary cut to 300 code points (SKY among them)."""
    from trainer.data import nom_lookup

    full = nom_lookup.load_vocabulary()
    keep = list(range(300))
    sky = full.codepoints.index("U+215F6")
    if sky not in keep:
        keep[-1] = sky
    sub = nom_lookup.Vocabulary([full.codepoints[i] for i in keep],
                                [full.chars[i] for i in keep],
                                [full.in_crops[i] for i in keep], [full.fonts[i] for i in keep])
    monkeypatch.setattr(nom_lookup, "load_vocabulary", lambda path=None: sub)
    if _font_for(SKY) is None:
        pytest.skip("no Nôm font installed (apt-get install fonts-hanazono)")
    return sub


# The model the lookup opens with: the first of LOOKUP_MODELS that is bundled.
LOOKUP_MODEL = next(n for n in LOOKUP_MODELS if (RESOURCES / "models" / n).is_file())


def rendered(char: str, path: Path) -> Path:
    """A font rendering of ``char`` as an image file (what a user might load)."""
    font = ImageFont.truetype(str(_font_for(char)), 96)
    img = Image.new("L", (128, 128), 255)
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), char, font=font)
    d.text(((128 - box[2] - box[0]) / 2, (128 - box[3] - box[1]) / 2), char, fill=0,
           font=font)
    img.save(path)
    return path


def open_lookup(w, qtbot) -> None:
    menu_action(w, OPEN).trigger()
    qtbot.waitUntil(lambda: isinstance(w.classset, LookupSet), timeout=60000)
    qtbot.waitUntil(lambda: w.fitted and w.model is not None
                    and w.model.path.name == LOOKUP_MODEL, timeout=180000)


def load_file(w, qtbot, monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(path)], "")))
    before = w.answered_request
    menu_action(w, "Load glyph images…").trigger()
    qtbot.waitUntil(lambda: w.answered_request > before and bool(w.candidates.labels),
                    timeout=30000)


def test_lookup_user_path(make_window, qtbot, monkeypatch, tmp_path, tiny_vocab, dialogs):
    w = make_window()
    open_lookup(w, qtbot)
    # Which set, which model, how many code points: said in the window.
    assert w.classset.name == LOOKUP_NAME
    assert LOOKUP_MODEL in w.lookup_panel.title.text()
    assert "300 characters" in w.lookup_panel.title.text()
    # The bundled lookup model embeds a glyph at zooms chosen on validation: said too.
    from trainer.api import model_info

    zooms = model_info(RESOURCES / "models" / LOOKUP_MODEL).lookup_zooms
    assert len(zooms) > 1
    assert f"seen at {' and '.join(f'{z:g}x' for z in zooms)}" in w.lookup_panel.title.text()
    assert w.lookup_panel.isVisible() and w.lookup_row.isVisible()
    assert w.class_list.count() == 300
    assert not w.new_class_button.isEnabled()  # code points are fixed

    load_file(w, qtbot, monkeypatch, rendered(SKY, tmp_path / "sky.png"))
    labels = w.candidates.labels
    assert len(labels) == 10
    assert SKY in labels  # a clean rendering of a vocabulary character finds it
    row = labels.index(SKY)
    assert w.candidates.item(row, 1).text() == SKY
    assert "giời" in w.candidates.item(row, 2).text()  # its quốc ngữ reading
    assert w.candidates.item(row, 1).font().pointSizeF() > 2.2 * w.font().pointSizeF()

    # More: 10 -> 20 -> 30, then no more.
    assert w.more_button.isEnabled() and "11–20" in w.more_button.text()
    qtbot.mouseClick(w.more_button, Qt.LeftButton)
    assert len(w.candidates.labels) == 20 and w.candidates.highlighted() == 10
    qtbot.mouseClick(w.more_button, Qt.LeftButton)
    assert len(w.candidates.labels) == 30
    assert not w.more_button.isEnabled()
    assert labels == w.candidates.labels[:10]

    # Enter on the candidate appends it; the canvas is cleared for the next glyph.
    w.candidates.selectRow(row)
    w.candidates.setFocus()
    qtbot.keyClick(w.candidates, Qt.Key_Return)
    assert w.lookup_panel.edit.text() == SKY
    assert w.canvas.is_empty()
    assert w.lookup_panel.recent.chars[0] == SKY
    # A recent character is clickable: it appends again.
    qtbot.mouseClick(w.lookup_panel.recent.buttons()[0], Qt.LeftButton)
    assert w.lookup_panel.edit.text() == SKY * 2
    qtbot.mouseClick(w.lookup_panel.back_button, Qt.LeftButton)
    assert w.lookup_panel.edit.text() == SKY

    # Copy: the button, and Ctrl+C in the line with nothing selected, copy the whole line.
    QApplication.clipboard().setText("")
    qtbot.mouseClick(w.lookup_panel.copy_button, Qt.LeftButton)
    assert QApplication.clipboard().text() == SKY
    QApplication.clipboard().setText("")
    w.lookup_panel.edit.setFocus()
    w.lookup_panel.edit.deselect()
    qtbot.keyClick(w.lookup_panel.edit, Qt.Key_C, Qt.ControlModifier)
    assert QApplication.clipboard().text() == SKY

    # Written at once (atomically), and back at the next launch.
    notes = json.loads((w.data_dir / "lookup" / "notes.json").read_text(encoding="utf-8"))
    assert notes["transcription"] == SKY and notes["recent"][0] == SKY
    data_dir = w.data_dir
    w.close()
    w2 = make_window(data_dir, wait=False)
    qtbot.waitUntil(lambda: isinstance(w2.classset, LookupSet), timeout=60000)
    assert w2.lookup_panel.edit.text() == SKY
    assert w2.lookup_panel.recent.chars[0] == SKY


def test_teaching_the_lookup_joins_the_next_fit(make_window, qtbot, monkeypatch, tiny_vocab,
                                                dialogs):
    from trainer import api

    calls: list[list[str]] = []
    real = api.Model.fit_lookup

    def spy(self, glyphs=(), labels=(), **kw):
        calls.append(list(labels))
        return real(self, glyphs, labels, **kw)

    monkeypatch.setattr(api.Model, "fit_lookup", spy)
    w = make_window()
    w.resize(1100, 720)  # the default window: the class list gets few rows
    open_lookup(w, qtbot)
    assert calls and calls[-1] == []  # nothing taught yet
    draw_stroke(w.canvas, line(60, 60, 200, 60))
    draw_stroke(w.canvas, line(128, 60, 128, 220))
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 10, timeout=30000)
    target = w.candidates.labels[3]
    w.candidates.selectRow(3)
    assert target in w.teach_button.text()
    n_calls = len(calls)
    qtbot.mouseClick(w.teach_button, Qt.LeftButton)
    cls = w.classset.find_by_name(target)
    assert len(cls.examples) == 1
    assert (lookup_folder(w.data_dir) / cls.id / cls.examples[0]).is_file()
    row = w.class_list.currentItem()  # the taught code point, highlighted, its count shown
    assert row.data(Qt.UserRole) == cls.id and row.text().endswith("(1)")
    assert w.example_list.isVisible() and w.example_list.count() == 1
    # ... and in view, whole: it was left cut off under the example strip that came with it
    # (found in a real window).
    qtbot.waitUntil(lambda: w.class_list.viewport().rect().contains(
        w.class_list.visualItemRect(row)), timeout=5000)
    qtbot.waitUntil(lambda: len(calls) > n_calls and w.fitted, timeout=60000)
    assert calls[-1] == [target]  # the example joins its character's renderings
    # Stored in the data folder: the lookup opened afresh still has it.
    again = LookupSet.open_vocabulary(lookup_folder(w.data_dir),
                                      list(zip(tiny_vocab.codepoints, tiny_vocab.chars,
                                               strict=True)))
    assert len(again.find_by_name(target).examples) == 1
    manifest = json.loads((lookup_folder(w.data_dir) / "manifest.json").read_text("utf-8"))
    assert [c["char"] for c in manifest["classes"]] == [target]  # only taught classes
    # Renaming or deleting a code point is refused with a message, nothing else.
    w.class_list.setCurrentRow(0)
    menu_action(w, "Delete class").trigger()
    assert "code points" in w.message.text()
    assert w.class_list.count() == 300


def test_reading_search_finds_characters_outside_the_set(make_window, qtbot, tiny_vocab,
                                                         dialogs):
    w = make_window()  # the starter digits: no Nôm character in it
    qtbot.keyClicks(w.find_box, "gioi")
    assert w.vocab_hits_row.isVisible()
    assert SKY in w.vocab_hits.chars
    button = w.vocab_hits.buttons()[w.vocab_hits.chars.index(SKY)]
    qtbot.mouseClick(button, Qt.LeftButton)
    assert QApplication.clipboard().text() == SKY
    assert w.lookup_notes.recent[0] == SKY  # copied: a recent character of the lookup
    w.find_box.clear()
    assert not w.vocab_hits_row.isVisible()

    # In the lookup itself the list is the whole vocabulary: the reading filters it.
    open_lookup(w, qtbot)
    w.find_box.setText("giời")
    shown = [w.class_list.item(i).text() for i in range(w.class_list.count())
             if not w.class_list.item(i).isHidden()]
    assert shown and all(("giời" in s) for s in shown) and any(SKY in s for s in shown)
    w.find_box.setFocus()
    qtbot.keyClick(w.find_box, Qt.Key_Return)  # the first match, highlighted and focused
    QApplication.clipboard().setText("")
    menu_action(w, "Copy").trigger()
    assert QApplication.clipboard().text() in {s.split()[0] for s in shown}

    # A code point as the list shows it, typed as a user would, in any case, with or
    # without "U+": that one row (a reading of hex letters alone stays a reading).
    code = f"U+{ord(SKY):04X}"
    for typed in (code, code.lower(), code[2:]):
        w.find_box.clear()
        qtbot.keyClicks(w.find_box, typed)
        shown = [w.class_list.item(i).text() for i in range(w.class_list.count())
                 if not w.class_list.item(i).isHidden()]
        assert len(shown) == 1 and SKY in shown[0] and code in shown[0], (typed, shown)


def test_missing_fonts_are_named_and_no_font_is_no_crash(make_window, qtbot, monkeypatch,
                                                        tiny_vocab, dialogs):
    from trainer.data import nom_lookup
    from trainer.data.sources import DataError

    def none():
        raise DataError("no CJK font for rendering Nôm is installed; install one or more "
                        "of: apt-get install fonts-hanazono fonts-babelstone-han")

    monkeypatch.setattr(nom_lookup, "installed_fonts", none)
    w = make_window()
    menu_action(w, OPEN).trigger()
    qtbot.waitUntil(lambda: isinstance(w.classset, LookupSet), timeout=60000)
    qtbot.waitUntil(lambda: w.message.isVisible(), timeout=60000)
    assert "cannot be built" in w.message.text() and "fonts-hanazono" in w.message.text()
    assert w.lookup_panel.fonts.isVisible()
    assert "apt-get install fonts-hanazono" in w.lookup_panel.fonts.text()
    assert not w.fitted
    before = w.answered_request
    draw_stroke(w.canvas, line(60, 60, 200, 200))  # recognising says why, no crash
    qtbot.waitUntil(lambda: w.answered_request > before, timeout=10000)
    assert "cannot be built" in w.message.text() and not w.candidates.labels


def test_notes_survive_a_damaged_file(tmp_path):
    from nomgui.lookupset import LookupNotes

    path = tmp_path / "notes.json"
    notes = LookupNotes.load(path)
    notes.transcription = "𡗶𠀧"
    notes.remember("𡗶")
    notes.remember("𠀧")
    notes.remember("𡗶")
    notes.save()
    again = LookupNotes.load(path)
    assert again.transcription == "𡗶𠀧" and again.recent == ["𡗶", "𠀧"]
    path.write_text("{broken", encoding="utf-8")
    damaged = LookupNotes.load(path)
    assert damaged.transcription == "" and "could not be read" in damaged.warning
    assert list(tmp_path.glob("notes.json.damaged-*"))
    assert np.all([not p.name.endswith(".tmp") for p in tmp_path.iterdir()])


@pytest.mark.usefixtures("cancel_dialogs")
def test_every_button_and_action_with_the_lookup_open(make_window, qtbot, monkeypatch,
                                                       tmp_path, tiny_vocab):
    w = make_window()
    open_lookup(w, qtbot)
    pressed = press_everything(qtbot, w, skip=("Quit",))  # empty canvas
    assert len(pressed) > 40
    load_file(w, qtbot, monkeypatch, rendered(SKY, tmp_path / "sky.png"))
    w.class_list.setCurrentRow(5)
    press_everything(qtbot, w, skip=("Quit",))  # a glyph, candidates, a highlighted class
    qtbot.waitUntil(lambda: w.model is not None and (w.fitted or w.message.isVisible()),
                    timeout=60000)
    assert isinstance(w.classset, LookupSet) and w.class_list.count() == 300


def test_a_newer_request_cancels_the_lookup_fit(make_window, qtbot, monkeypatch, tiny_vocab,
                                                dialogs):
    """Opening another set while the lookup still renders its fonts drops that fit at its
    next step; the other set is fitted and answers."""
    from trainer import api

    outcomes: list[str] = []
    real = api.Model.fit_lookup

    def spy(self, glyphs=(), labels=(), **kw):
        try:
            out = real(self, glyphs, labels, **kw)
        except api.Cancelled:
            outcomes.append("cancelled")
            raise
        outcomes.append("fitted")
        return out

    monkeypatch.setattr(api.Model, "fit_lookup", spy)
    from trainer.data import nom_lookup

    render = nom_lookup.clean_rendering

    def slow(*a, **k):  # a slow machine: the fit is still rendering when the user moves on
        time.sleep(0.005)
        return render(*a, **k)

    monkeypatch.setattr(nom_lookup, "clean_rendering", slow)
    w = make_window()
    digits = w.classset.folder
    menu_action(w, OPEN).trigger()
    qtbot.waitUntil(lambda: isinstance(w.classset, LookupSet) and w.fit_progress.isVisible(),
                    timeout=60000)
    w._open_folder(digits)  # as File > Open class set does
    qtbot.waitUntil(lambda: outcomes == ["cancelled"], timeout=60000)
    qtbot.waitUntil(lambda: w.fitted, timeout=60000)
    assert not isinstance(w.classset, LookupSet) and not w.lookup_panel.isVisible()
    draw_stroke(w.canvas, line(128, 30, 128, 226))
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=30000)  # digits: top 5


def _click_class(w, qtbot, row: int) -> str:
    """Click row ``row`` of the class list as a user does; the id now highlighted."""
    item = w.class_list.item(row)
    w.class_list.scrollToItem(item)
    qtbot.mouseClick(w.class_list.viewport(), Qt.LeftButton,
                     pos=w.class_list.visualItemRect(item).center())
    cid = w._visible_selected_class()
    assert cid == item.data(Qt.UserRole)
    return cid


def draw_glyph_and_pick(w, qtbot) -> None:
    """Draw a glyph and click its second candidate: candidates shown, one highlighted."""
    before = w.answered_request
    draw_stroke(w.canvas, line(60, 60, 200, 60))
    draw_stroke(w.canvas, line(128, 60, 128, 220))
    qtbot.waitUntil(lambda: w.answered_request > before and len(w.candidates.labels) > 1,
                    timeout=30000)
    rect = w.candidates.visualItemRect(w.candidates.item(1, 0))
    qtbot.mouseClick(w.candidates.viewport(), Qt.LeftButton, pos=rect.center())
    assert w.candidates.highlighted() == 1


def test_switching_sets_with_a_class_highlighted(make_window, qtbot, tiny_vocab, dialogs):
    """A class highlighted in one set is never looked up in the next: opening the lookup
    with a class of the starter set highlighted, and going back with a code point
    highlighted, raised KeyError (the lookup mode cleared the candidates, whose signal
    updated the buttons from the old list before it was rebuilt)."""
    w = make_window()
    start = w.classset
    assert not isinstance(start, LookupSet) and w.class_list.count() > 1
    _click_class(w, qtbot, 1)
    draw_glyph_and_pick(w, qtbot)
    open_lookup(w, qtbot)  # File > Open Nôm: all code points
    assert w._visible_selected_class() is None  # nothing of the old set highlighted
    assert w.add_example_button.text() == "Add to a class"
    _click_class(w, qtbot, 3)
    draw_glyph_and_pick(w, qtbot)
    dialogs.items.append(start.name)  # the Open dialog's choice
    menu_action(w, "Open class set…").trigger()
    qtbot.waitUntil(lambda: not isinstance(w.classset, LookupSet), timeout=30000)
    assert w.classset.folder == start.folder and w._visible_selected_class() is None
    assert not dialogs.warnings


def test_a_new_answer_shows_its_first_candidate(make_window, qtbot, tiny_vocab, dialogs):
    """After the user has scrolled the candidates down, the next answer's rank 1 is in
    view (the scroll position used to carry over and hide it)."""
    w = make_window()
    w.resize(1000, 620)  # a small window: 10 candidates do not all fit (as on a laptop)
    open_lookup(w, qtbot)
    before = w.answered_request
    draw_stroke(w.canvas, line(60, 60, 200, 60))
    qtbot.waitUntil(lambda: w.answered_request > before and len(w.candidates.labels) == 10,
                    timeout=30000)
    bar = w.candidates.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())  # the user scrolls down to read the lower candidates
    before = w.answered_request
    draw_stroke(w.canvas, line(128, 60, 128, 220))
    qtbot.waitUntil(lambda: w.answered_request > before, timeout=30000)
    assert bar.value() == 0
    first = w.candidates.visualItemRect(w.candidates.item(0, 1))
    assert w.candidates.viewport().rect().contains(first.center())


def test_choosing_a_model_that_cannot_name_the_vocabulary(make_window, qtbot, tiny_vocab,
                                                          dialogs):
    """Model menu > MAML with the lookup open: said at once (in the panel's title and the
    message), with no rendering or embedding first; the lookup model is offered back."""
    w = make_window()
    open_lookup(w, qtbot)
    progress = []
    w.recognizer.worker.fitProgress.connect(lambda *a: progress.append(a[-1]))
    maml = next(a for a in w.model_group.actions() if Path(a.data()).name == "maml-omniglot.pt")
    maml.trigger()
    qtbot.waitUntil(lambda: w.model.path.name == "maml-omniglot.pt"
                    and "could not be fitted with this model" in w.message.text(),
                    timeout=60000)
    assert "cannot name the whole vocabulary" in w.lookup_panel.title.text()
    assert LOOKUP_MODEL in w.message.text()
    assert all("(0%)" in p for p in progress), progress  # refused before any work
    back = next(a for a in w.model_group.actions() if Path(a.data()).name == LOOKUP_MODEL)
    back.trigger()
    qtbot.waitUntil(lambda: w.model.path.name == LOOKUP_MODEL and w.fitted, timeout=60000)



def _rows_in_view(table) -> int:
    view = table.viewport().rect()
    return sum(view.contains(table.visualItemRect(table.item(r, 1)))
               for r in range(len(table.labels)))


def test_none_of_these_in_the_lookup(make_window, qtbot, monkeypatch, tmp_path, tiny_vocab,
                                     dialogs):
    """The lookup's classes are fixed code points: its 'None of these?' line sends the user
    to the reading search, not to Ctrl+Shift+N (refused there); a class set's line offers
    the new class. Among thousands of classes the line almost never shows, so the lookup
    keeps no room for it: the candidates get the rows (found in a real window: 6 of 10 in
    view at the default size, above an empty band)."""
    w = make_window()
    w.resize(1100, 720)
    start_name = w.classset.name
    assert "Ctrl+Shift+N" in w.none_of_these.text()
    open_lookup(w, qtbot)
    assert "Ctrl+F" in w.none_of_these.text()
    assert "Ctrl+Shift+N" not in w.none_of_these.text()
    load_file(w, qtbot, monkeypatch, rendered(SKY, tmp_path / "sky.png"))
    assert not w.none_of_these.isVisible()
    qtbot.waitUntil(lambda: _rows_in_view(w.candidates) >= 7, timeout=5000)  # 6 with it
    below = w.teach_button.geometry().top() - w.lookup_row.geometry().bottom()
    assert below < 3 * w.fontMetrics().lineSpacing()  # no empty band above Teach

    # Back to a class set of the user's: its line, and its room kept again, so that the
    # Teach button does not move when the line comes (a glyph far from every digit).
    dialogs.items.append(start_name)
    menu_action(w, "Open class set…").trigger()
    qtbot.waitUntil(lambda: not isinstance(w.classset, LookupSet) and w.fitted,
                    timeout=30000)
    assert "Ctrl+Shift+N" in w.none_of_these.text()
    teach = w.teach_button.geometry()
    menu_action(w, "Clear canvas").trigger()
    draw_stroke(w.canvas, line(50, 37, 207, 219))
    draw_stroke(w.canvas, line(207, 37, 50, 219))
    qtbot.waitUntil(lambda: not w.debounce.isActive()
                    and w.answered_request >= w.recognizer.latest_request, timeout=20000)
    assert w.none_of_these.isVisible()
    assert w.teach_button.geometry() == teach


def test_a_glyph_drawn_while_the_lookup_is_built_is_told_to_wait(make_window, qtbot,
                                                                  monkeypatch, tiny_vocab,
                                                                  dialogs):
    """Found in a real window: a stroke drawn during the first build (minutes on two cores)
    got no candidates and no word; it is answered once the lookup is ready."""
    from trainer.data import nom_lookup

    render = nom_lookup.clean_rendering

    def slow(*a, **k):  # a slow machine: the build is still rendering when the user draws
        time.sleep(0.005)
        return render(*a, **k)

    monkeypatch.setattr(nom_lookup, "clean_rendering", slow)
    w = make_window()
    menu_action(w, OPEN).trigger()
    qtbot.waitUntil(lambda: isinstance(w.classset, LookupSet) and w.fit_progress.isVisible(),
                    timeout=60000)
    draw_stroke(w.canvas, line(60, 60, 200, 60))
    qtbot.waitUntil(lambda: "still being prepared" in w.message.text(), timeout=5000)
    assert not w.fitted
    qtbot.waitUntil(lambda: w.fitted and len(w.candidates.labels) == 10, timeout=120000)
    assert not w.message.isVisible()
