"""Item 1: names read from a store (class sets, annotation sessions, run records) never
lead outside its folder; the entry is refused with a message and kept aside."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from nomgui.annotation import Session
from nomgui.classset import MANIFEST, ClassSet, ClassSetError
from tests.hostile.conftest import inked, tree_digest


def _set_with(folder: Path, entries: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(json.dumps(
        {"schema": 1, "name": "shared", "classes": entries}), encoding="utf-8")


def _good(folder: Path) -> dict:
    (folder / "cgood").mkdir(parents=True, exist_ok=True)
    (folder / "cgood" / "e1.png").write_bytes(inked(1).to_png())
    return {"id": "cgood", "name": "good", "examples": ["e1.png"]}


@pytest.mark.parametrize("bad", [
    {"id": "../../../../victim", "name": "evil", "examples": []},
    {"id": "ABS", "name": "evil", "examples": []},  # replaced by the absolute path below
    {"id": "..", "name": "evil", "examples": []},
    {"id": "cgood2", "name": "evil", "examples": ["../../x/keep.png"]},
    {"id": "cgood2", "name": "evil", "examples": ["/etc/hostname"]},
    {"id": 7, "name": "evil", "examples": []},
    {"id": "cgood2", "name": "evil", "examples": "e1.png"},
    "not an object",
])
def test_class_entries_leading_outside_are_refused_and_kept_aside(tmp_path, outside, bad):
    if isinstance(bad, dict) and bad["id"] == "ABS":
        bad = {**bad, "id": str(outside / "victim")}
    before = tree_digest(outside)
    folder = tmp_path / "data" / "classsets" / "shared"
    _set_with(folder, [_good(folder), bad])
    cs = ClassSet.open(folder)
    assert [c.id for c in cs.classes] == ["cgood"]
    assert any("refused" in w for w in cs.warnings)
    aside = list(folder.glob("manifest.refused-*.json"))
    assert len(aside) == 1 and json.loads(aside[0].read_text()) == [bad]
    # every operation on what is left stays inside
    cs.delete_class("cgood")
    cs.export_zip(tmp_path / "out.zip")
    assert tree_digest(outside) == before


def test_delete_class_and_remove_example_never_touch_outside(tmp_path, outside):
    """The attack of the issue, end to end: before, Delete class rmtree'd the victim and
    Remove example unlinked keep.png."""
    before = tree_digest(outside)
    folder = tmp_path / "data" / "classsets" / "shared"
    rel = os.path.relpath(outside / "victim", folder)
    _set_with(folder, [_good(folder), {"id": rel, "name": "evil", "examples": []},
                       {"id": "c2", "name": "evil2", "examples": ["../../x/keep.png"]}])
    cs = ClassSet.open(folder)
    for c in list(cs.classes):
        for e in list(c.examples):
            cs.remove_example(c.id, e)
        cs.delete_class(c.id)
    with pytest.raises(ClassSetError):
        cs.example_path("..", "keep.png")
    assert tree_digest(outside) == before


def test_symlinks_inside_a_set_are_not_followed(tmp_path, outside):
    """A class folder or an example that is a link to elsewhere: not listed, not exported
    (before, Export as zip copied /etc/hostname in), not deleted through."""
    before = tree_digest(outside)
    folder = tmp_path / "data" / "classsets" / "shared"
    good = _good(folder)
    os.symlink(outside / "secret.txt", folder / "cgood" / "leak.png")
    os.symlink(outside / "victim", folder / "clink")
    _set_with(folder, [{**good, "examples": ["e1.png", "leak.png"]},
                       {"id": "clink", "name": "linked", "examples": ["precious.txt"]}])
    cs = ClassSet.open(folder)
    assert [(c.id, c.examples) for c in cs.classes] == [("cgood", ["e1.png"])]
    out = tmp_path / "export.zip"
    cs.export_zip(out)
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert all(b"private" not in zf.read(n) for n in names)
    assert not any(".." in n or n.startswith("/") for n in names)
    cs.delete_class("cgood")
    assert tree_digest(outside) == before


def test_annotation_session_items_outside_are_refused(tmp_path, outside):
    before = tree_digest(outside)
    folder = tmp_path / "data" / "annotations" / "s"
    s = Session.create(folder, "s")
    s.add_images([outside / "x" / "keep.png"])
    data = json.loads((folder / "session.json").read_text())
    good = data["items"][0]
    data["items"] += [{**good, "id": "g9", "file": "../../../outside/x/keep.png"},
                      {**good, "id": "../../../outside/evil", "file": "g00001.png",
                       "decision": "accepted", "label": "a"}]
    (folder / "session.json").write_text(json.dumps(data))
    s = Session.open(folder)
    assert [i.id for i in s.items] == ["g00001"]
    assert s.warnings and list(folder.glob("session.refused-*.json"))
    s.decide("g00001", "corrected", "a")
    s.export(tmp_path / "export")
    assert tree_digest(outside) == before


def test_linked_run_and_session_folders_are_not_taken(tmp_path, outside):
    from nomgui.annotation import SessionStore
    from nomgui.training import RunStore, TrainRequest

    before = tree_digest(outside)
    store = RunStore(tmp_path / "data" / "runs", tmp_path / "cache")
    real = store.create(TrainRequest(dataset="folder", data_root=str(tmp_path)))
    elsewhere = outside / "victim" / "run"
    real.folder.rename(elsewhere)
    os.symlink(elsewhere, store.root / "20990101-000000")
    runs, errors = store.list()
    assert runs == [] and "link" in errors[0]
    sessions = SessionStore(tmp_path / "data" / "annotations")
    Session.create(outside / "victim" / "sess", "s")
    (tmp_path / "data" / "annotations").mkdir(parents=True, exist_ok=True)
    os.symlink(outside / "victim" / "sess", tmp_path / "data" / "annotations" / "linked")
    assert sessions.list() == []
    assert set(before) <= set(tree_digest(outside))  # nothing of outside's was removed
