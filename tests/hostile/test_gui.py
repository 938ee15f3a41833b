"""Items 3 and 4 in the window: a full disk is said in a dialog and the class list keeps
showing what is on disk; a bad file in the models folder is listed as refused while the
bundled models stay usable."""

from __future__ import annotations

import pytest

from nomgui.classset import ClassSet
from tests.gui.conftest import dialogs, make_window, resources  # noqa: F401 (fixtures)
from tests.hostile.test_writes import _full_disk, _state

pytestmark = pytest.mark.gui


def test_full_disk_in_the_window(make_window, dialogs, monkeypatch):  # noqa: F811
    w = make_window()
    cs = w.classset
    assert cs is not None and cs.classes
    w.class_list.setCurrentRow(0)
    w.class_list.currentItem().setSelected(True)
    before, texts = _state(cs), [w.class_list.item(i).text()
                                 for i in range(w.class_list.count())]
    with monkeypatch.context() as m:
        _full_disk(m)
        dialogs.texts += ["renamed", ""]
        w.rename_class()
        w.delete_class()
    assert len(dialogs.warnings) == 2
    assert all("No space left on device" in x for x in dialogs.warnings)
    assert _state(w.classset) == before == _state(ClassSet.open(cs.folder))
    assert [w.class_list.item(i).text() for i in range(w.class_list.count())] == texts


def test_a_bad_model_file_is_refused_alone(make_window, tmp_path, qtbot):  # noqa: F811
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "interrupted-copy.pt").write_bytes(b"")
    w = make_window()
    assert w.model is not None  # a bundled model loaded
    refused = [a.text() for a in w.model_menu.actions() if a.text().startswith("refused:")]
    assert len(refused) == 1 and "interrupted-copy.pt" in refused[0]
    assert not any(a.isEnabled() for a in w.model_menu.actions()
                   if a.text().startswith("refused:"))


def test_closing_signals_no_crafted_pid(make_window, dialogs, tmp_path, monkeypatch):  # noqa: F811
    """Before: `"pid": -1` was shown as running and "Stop them" on closing sent SIGTERM to
    every process of the user; "abc" or 2**70 made closeEvent raise."""
    import json
    import os

    from nomgui import training
    from nomgui.training import RUN_FILE, TrainRequest

    w = make_window()
    for pid in (-1, -os.getpgid(0), "abc", 2**70, os.getppid()):
        run = w.run_store.create(TrainRequest(dataset="folder", data_root=str(tmp_path)))
        data = json.loads((run.folder / RUN_FILE).read_text())
        data["pid"] = pid
        (run.folder / RUN_FILE).write_text(json.dumps(data))
    sent: list = []
    monkeypatch.setattr(training.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    asked: list = []
    monkeypatch.setattr(w, "_ask_about_runs", lambda n: asked.append(n) or "stop")
    assert w._close_runs() is True
    assert asked == [] and sent == []
