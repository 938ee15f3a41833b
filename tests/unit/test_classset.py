"""The class-set store: Qt-free, so these run without a display."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nomgui.classset import MANIFEST, ClassSet, ClassSetError, ClassSetStore
from nomgui.glyph import Glyph, GlyphLoadError, glyph_from_array, load_glyph_file
from trainer.data.sources import load_folder


def _glyph(seed: int) -> Glyph:
    img = np.full((64, 64), 255, np.uint8)
    rng = np.random.default_rng(seed)
    y, x = rng.integers(5, 40, size=2)
    img[y:y + 20, x:x + 6] = 0
    return Glyph(img)


@pytest.fixture
def store(tmp_path):
    return ClassSetStore(tmp_path / "sets")


def test_create_edit_and_reopen(store):
    cs = store.create("Mine")
    a = cs.add_class("alpha", "α", [_glyph(0), _glyph(1)])
    b = cs.add_class("beta", "", [_glyph(2)])
    cs.add_example(b.id, _glyph(3))
    cs.rename_class(a.id, "Alpha", "Α")
    cs.remove_example(a.id, a.examples[0])
    again = ClassSet.open(cs.folder)
    assert [(c.name, c.char, len(c.examples)) for c in again.classes] == [
        ("Alpha", "Α", 1), ("beta", "", 2)]
    assert again.warnings == [] and again.name == "Mine"
    assert [label for label, _ in again.examples()] == ["Α Alpha", "beta", "beta"]
    again.delete_class(b.id)
    assert not (cs.folder / b.id).exists() and len(ClassSet.open(cs.folder).classes) == 1


def test_bad_edits_are_refused(store):
    cs = store.create("s")
    cs.add_class("a", "", [_glyph(0)])
    with pytest.raises(ClassSetError, match="already a class"):
        cs.add_class("a")
    with pytest.raises(ClassSetError, match="needs a name"):
        cs.add_class("  ")
    with pytest.raises(ClassSetError, match="empty"):
        cs.add_class("blank", "", [Glyph(np.full((10, 10), 255, np.uint8))])


def test_damaged_manifest_loses_no_example(store):
    cs = store.create("s")
    cs.add_class("a", "", [_glyph(0), _glyph(1)])
    cs.add_class("b", "", [_glyph(2)])
    (cs.folder / MANIFEST).write_text('{"schema": 1, "classes": [{"id": ')  # half-written
    again = ClassSet.open(cs.folder)
    assert sum(len(c.examples) for c in again.classes) == 3 and len(again.classes) == 2
    assert "damaged" in again.warnings[0]
    assert list(cs.folder.glob(f"{MANIFEST}.damaged-*"))  # the bad file is kept
    assert ClassSet.open(cs.folder).warnings == []  # repaired on disk


def test_orphan_example_from_a_killed_write_is_recovered(store):
    cs = store.create("s")
    c = cs.add_class("a", "", [_glyph(0)])
    (cs.folder / c.id / "e-orphan.png").write_bytes(_glyph(5).to_png())
    again = ClassSet.open(cs.folder)
    assert "e-orphan.png" in again.get(c.id).examples


def test_other_schema_is_left_alone(store):
    cs = store.create("s")
    data = json.loads((cs.folder / MANIFEST).read_text())
    data["schema"] = 7
    (cs.folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ClassSetError, match="schema 7"):
        ClassSet.open(cs.folder)
    assert json.loads((cs.folder / MANIFEST).read_text())["schema"] == 7


def test_export_is_a_trainer_dataset_and_imports_back(store, tmp_path):
    cs = store.create("s")
    for i, name in enumerate(["a", "b/c", "d"]):
        cs.add_class(name, "", [_glyph(10 * i + j) for j in range(3)])
    cs.export_zip(tmp_path / "set.zip")
    data = load_folder(tmp_path / "set.zip", 28)
    assert data.num_classes == 3 and data.images.shape[0] == 9
    back = ClassSet.import_zip(tmp_path / "set.zip", store.new_folder("imported"))
    assert sorted(c.name for c in back.classes) == ["a", "b/c", "d"]
    (tmp_path / "junk.zip").write_text("no zip")
    with pytest.raises(ClassSetError, match="not a readable zip"):
        ClassSet.import_zip(tmp_path / "junk.zip", store.new_folder("x"))


def test_glyph_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GlyphLoadError, match=r"notes\.txt"):
        load_glyph_file(tmp_path / "notes.txt")
    big = np.full((3000, 2000), 255, np.uint8)
    big[1000:2000, 900:1100] = 0
    g = glyph_from_array(big, "big")
    assert max(g.image.shape) == 1024 and g.has_ink()
    inverted = glyph_from_array(255 - big, "light on dark")
    assert inverted.image[0, 0] == 255  # stored dark on white
