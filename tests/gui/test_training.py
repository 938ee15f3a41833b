"""Training from the app's menu: real trainer processes on a small generated data set."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from nomgui.training import OUT, STDERR, Run, RunStore, TrainRequest
from nomgui.trainingui import TrainingDialog
from tests.gui.conftest import draw_stroke, line

pytestmark = [pytest.mark.gui, pytest.mark.slow]
WAIT = 180_000  # ms: a trainer process imports torch and loads data before its first step


@pytest.fixture
def fill_dialog(monkeypatch):
    """Makes TrainingDialog.exec fill in the given fields and press the OK button."""
    answers: list[dict] = []

    def fake_exec(self) -> int:
        values = answers.pop(0)
        for name, value in values.items():
            widget = getattr(self, name)
            if hasattr(widget, "setValue"):
                widget.setValue(value)
            elif hasattr(widget, "findData"):
                widget.setCurrentIndex(widget.findData(value))
            else:
                widget.setText(value)
        self.accept()
        return self.result()

    monkeypatch.setattr(TrainingDialog, "exec", fake_exec)
    return answers


def _status(w, run: Run) -> str:
    return Run.open(run.folder).status()


def _meta_train(glyph_tree: Path, steps: int) -> dict:
    return {"algo": "protonet", "dataset": "folder", "data_root": str(glyph_tree),
            "split": "seed", "way": 5, "shot": 1, "query": 3, "steps": steps, "batch": 2,
            "device": "cpu"}


def test_train_stop_resume_register_and_classify(make_window, qtbot, glyph_tree,
                                                 fill_dialog, dialogs):
    w = make_window()
    fill_dialog.append(_meta_train(glyph_tree, steps=120))
    run = w.open_training_dialog("meta-train")
    assert run is not None
    runs = w.runs_window
    assert runs.isVisible() and runs.selected.info.id == run.info.id
    # progress arrives: the bar moves, the plot gets points, the log fills
    qtbot.waitUntil(lambda: runs.progress.value() > 0, timeout=WAIT)
    assert runs.progress.maximum() == 120 and runs.plot.loss
    assert "loss" in runs.log.toPlainText()

    qtbot.mouseClick(runs.stop_button, Qt.LeftButton)  # stops after its step, checkpoints
    qtbot.waitUntil(lambda: _status(w, run) == "stopped", timeout=WAIT)
    qtbot.waitUntil(lambda: runs.resume_button.isEnabled(), timeout=10_000)
    assert (run.folder / OUT / "checkpoint.pt").exists()
    stopped_at = [e for e in Run.open(run.folder).events() if e["event"] == "done"][-1]["step"]
    assert stopped_at < 120

    qtbot.mouseClick(runs.resume_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: _status(w, run) == "finished", timeout=WAIT)
    qtbot.waitUntil(lambda: runs.register_button.isEnabled(), timeout=10_000)
    starts = [e["step"] for e in Run.open(run.folder).all_events() if e["event"] == "start"]
    assert starts == [0, stopped_at]  # resumed where it stopped

    qtbot.mouseClick(runs.register_button, Qt.LeftButton)  # joins the Model menu, evaluated
    target = w.data_dir / "models" / f"protonet-folder-{run.info.id}.pt"
    assert target.exists()
    qtbot.waitUntil(lambda: Run.open(run.folder).info.evaluation is not None, timeout=WAIT)
    evaluation = Run.open(run.folder).info.evaluation
    assert 20.0 < evaluation["mean"] <= 100.0 and evaluation["episodes"] == 1000
    assert "±" in runs.table.item(0, 4).text() or "±" in runs.table.item(1, 4).text()
    qtbot.waitUntil(lambda: any(m.path == target and "5-way 1-shot" in m.accuracy
                                for m in w.models), timeout=30_000)

    # classify with it: select the new model, the class set refits, a drawing is recognised
    menu_entry = next(a for a in w.model_group.actions() if a.data() == str(target))
    menu_entry.trigger()  # Model menu
    qtbot.waitUntil(lambda: w.model is not None and w.model.path == target and w.fitted,
                    timeout=60_000)
    draw_stroke(w.canvas, line(128, 30, 128, 226))
    qtbot.waitUntil(lambda: len(w.candidates.labels) == 5, timeout=20_000)
    assert not dialogs.warnings


def test_a_killed_run_is_reported_and_resumes_from_its_checkpoint(
        make_window, qtbot, glyph_tree, fill_dialog, dialogs):
    w = make_window()
    fill_dialog.append(_meta_train(glyph_tree, steps=400))
    run = w.open_training_dialog("meta-train")
    ckpt = run.folder / OUT / "checkpoint.pt"
    qtbot.waitUntil(ckpt.exists, timeout=WAIT)  # every steps // 10 = 40 steps
    os.kill(Run.open(run.folder).info.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: _status(w, run) == "failed", timeout=30_000)
    qtbot.waitUntil(lambda: "failed or was killed" in w.runs_window.log.toPlainText(),
                    timeout=10_000)
    assert "can be resumed" in w.runs_window.log.toPlainText()
    qtbot.mouseClick(w.runs_window.resume_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: _status(w, run) == "finished", timeout=WAIT)
    assert not dialogs.warnings


def test_fine_tune_on_the_class_set_and_bad_data_fails_with_its_message(
        make_window, qtbot, tmp_path, fill_dialog, dialogs):
    w = make_window()  # the starter digits: 10 classes x 3 renderings
    fill_dialog.append({"steps": 20})
    run = w.open_training_dialog("finetune")
    assert run is not None
    req = run.request
    assert (req.dataset, req.split, req.way, req.init_from, req.holdout) == (
        "classset", "all", 5, str(w.model.path), 1)  # one example of each class held out
    assert run.info.argv[run.info.argv.index("--holdout-per-class") + 1] == "1"
    qtbot.waitUntil(lambda: _status(w, run) == "finished", timeout=WAIT)

    # Add to models: the model file brings its figure on the 10 held-out examples (one
    # per class), and no evaluation on its own classes is started
    runs = w.runs_window
    qtbot.waitUntil(lambda: runs.register_button.isEnabled(), timeout=10_000)
    assert "held-out examples of your class set" in runs.log.toPlainText()
    qtbot.mouseClick(runs.register_button, Qt.LeftButton)
    target = Path(Run.open(run.folder).info.registered)
    assert target.exists()
    qtbot.waitUntil(lambda: any(a.data() == str(target) for a in w.model_group.actions()),
                    timeout=30_000)
    [entry] = [a for a in w.model_group.actions() if a.data() == str(target)]
    assert "held-out examples" in entry.text() and "10 of your examples" in entry.text()
    assert "95% CI" in entry.text() and "not evaluated" not in entry.text()
    assert [r.info.id for r in w.run_store.list()[0]] == [run.info.id]
    assert "held-out examples" in runs.table.item(0, 4).text()

    empty = tmp_path / "empty"
    empty.mkdir()
    fill_dialog.append({"algo": "protonet", "dataset": "folder", "data_root": str(empty),
                        "steps": 5})
    bad = w.open_training_dialog("meta-train")
    qtbot.waitUntil(lambda: _status(w, bad) == "failed", timeout=WAIT)
    qtbot.waitUntil(lambda: "error" in w.runs_window.log.toPlainText(), timeout=10_000)
    assert not w.runs_window.resume_button.isEnabled()
    assert not dialogs.warnings


def test_dialog_refuses_what_cannot_run(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    d = TrainingDialog("meta-train", [], None, ("mine", 3, 1), settings)
    qtbot.addWidget(d)
    d.dataset.setCurrentIndex(d.dataset.findData("omniglot"))
    d.data_root.setText(str(tmp_path / "nowhere"))
    d.accept()
    assert d.result() != QDialog.Accepted and "does not exist" in d.error.text()
    d.dataset.setCurrentIndex(d.dataset.findData("classset"))
    assert d.split.currentData() == "all"
    d.accept()
    assert "this class set has 1" in d.error.text()
    d.download.setChecked(True)
    d.dataset.setCurrentIndex(d.dataset.findData("omniglot"))
    d.accept()
    assert d.result() == QDialog.Accepted  # download needs no existing folder
    assert "--download" in d.request().argv(tmp_path, tmp_path)


def test_the_dialog_grows_with_its_text_and_drops_a_stale_error(qtbot, tmp_path):
    """Found in a real window: with the class set's help and its error shown, the number
    fields were squeezed until their digits were cut; and the error stayed up after the
    fields it spoke of had changed."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QDialogButtonBox

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    d = TrainingDialog("meta-train", [], None, ("mine", 0, 0), settings)
    qtbot.addWidget(d)
    d.show()
    d.dataset.setCurrentIndex(d.dataset.findData("classset"))
    qtbot.mouseClick(d.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok),
                     Qt.LeftButton)
    assert d.error.isVisible() and "this class set has 0" in d.error.text()
    for spin in (d.way, d.shot, d.query, d.steps, d.batch, d.holdout):
        assert spin.height() >= spin.minimumSizeHint().height()
    d.way.setValue(2)  # the user acts on it: the message no longer applies as it stands
    assert not d.error.isVisible()
    d.dataset.setCurrentIndex(d.dataset.findData("omniglot"))
    qtbot.mouseClick(d.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok),
                     Qt.LeftButton)
    assert d.error.isVisible() and "data folder" in d.error.text().lower()
    d.dataset.setCurrentIndex(d.dataset.findData("nom-fonts"))
    assert not d.error.isVisible()


def test_dialog_holds_out_examples_of_class_sets_where_they_leave_enough(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    d = TrainingDialog("meta-train", [], None, ("mine", 3, 3), settings, counts=[2, 2, 4])
    qtbot.addWidget(d)
    d.dataset.setCurrentIndex(d.dataset.findData("classset"))
    assert d.holdout.isEnabled() and d.holdout.value() == 1
    for name, value in (("way", 2), ("shot", 1), ("query", 1)):
        getattr(d, name).setValue(value)
    d.accept()  # holding one out of each leaves one class with the two an episode needs
    assert d.result() != QDialog.Accepted and "Hold out to 0" in d.error.text()
    d.holdout.setValue(0)
    d.accept()
    assert d.result() == QDialog.Accepted and "--holdout-per-class" not in d.request().argv(
        tmp_path, tmp_path)
    d.split.setCurrentIndex(d.split.findData("seed"))  # other splits hold out classes
    assert not d.holdout.isEnabled() and d.request().holdout == 0
    # fine-tuning a set too small to hold examples out defaults to none
    f = TrainingDialog("finetune", [], None, ("mine", 3, 3), settings, counts=[2, 2, 2])
    qtbot.addWidget(f)
    assert f.holdout.value() == 0 and f.way.value() == 3
    f = TrainingDialog("finetune", [], None, ("mine", 3, 3), settings, counts=[3, 3, 9])
    qtbot.addWidget(f)
    assert f.request().holdout == 1 and f.request().split == "all"


def test_closing_with_a_run_going_asks_and_can_leave_it_running(
        make_window, qtbot, glyph_tree, fill_dialog, monkeypatch, tmp_path):
    w = make_window()
    fill_dialog.append(_meta_train(glyph_tree, steps=100_000))
    run = w.open_training_dialog("meta-train")
    qtbot.waitUntil(lambda: any(e["event"] == "start" for e in Run.open(run.folder).events()),
                    timeout=WAIT)  # past the data: a stop now saves a checkpoint
    asked = []
    monkeypatch.setattr(type(w), "_ask_about_runs",
                        lambda self, n: asked.append(n) or "cancel")
    w.close()
    assert asked == [1] and w.isVisible()  # cancel keeps the window
    monkeypatch.setattr(type(w), "_ask_about_runs", lambda self, n: "finish")
    w.close()
    assert not w.isVisible() and Run.open(run.folder).running()  # it goes on

    # a new window finds it running; stopping it leaves a checkpoint
    store = RunStore(w.data_dir / "runs", w.data_dir / "cache")
    again = store.list()[0][0]
    assert again.info.id == run.info.id and again.running()
    assert store.stop(again) and store.wait([again], timeout=60)
    assert again.status() == "stopped" and again.can_resume()


def test_request_command_lines():
    req = TrainRequest(command="meta-train", algo="fomaml", dataset="nom", data_root="/d",
                       split="nom-only", way=20, shot=1, query=5, steps=100, batch=4)
    argv = req.argv(Path("/runs/r"), Path("/c"))
    assert argv[:2] == ["meta-train", "--dataset"] and "--first-order" in argv
    assert argv[argv.index("--algo") + 1] == "maml" and "--json-progress" in argv
    pre = TrainRequest(command="pretrain", dataset="classset", split="all")
    assert pre.describe().startswith("transfer on classset")
    argv = pre.argv(Path("/runs/r"), Path("/c"))
    assert pre.algo == "transfer" and "--algo" not in argv
    assert argv[argv.index("--data-root") + 1] == str(Path("/runs/r/data.zip"))


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    """The trainer runs inside the run folder, so a typed relative path must not reach it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    store = RunStore(tmp_path / "runs", tmp_path / "cache")
    run = store.create(TrainRequest(dataset="folder", data_root="data"))
    argv = run.info.argv
    assert argv[argv.index("--data-root") + 1] == str(tmp_path / "data")


def test_a_stop_while_the_data_is_prepared_ends_the_run_at_once(
        make_window, qtbot, glyph_tree, fill_dialog, dialogs, tmp_path):
    """Found in a real window: on a Nôm set the trainer spent 40 s rendering before its
    first step; the bar read 0 / 1, Stop did nothing (it waited for a step), and a second
    Stop left a 'failed' run with a KeyboardInterrupt traceback. Here the data never
    finishes loading (a FIFO posing as an image blocks its reader): Stop must end it."""
    data = tmp_path / "slow"
    shutil.copytree(glyph_tree, data)
    os.mkfifo(sorted(p for p in data.iterdir() if p.is_dir())[-1] / "zz.png")
    w = make_window()
    fill_dialog.append(_meta_train(data, steps=50))
    run = w.open_training_dialog("meta-train")
    runs = w.runs_window
    assert runs.progress.maximum() == 50  # the steps asked for, before any line
    assert "before its first step" in runs.log.toPlainText()
    qtbot.waitUntil(lambda: "preparing the data" in runs.log.toPlainText(), timeout=WAIT)
    qtbot.mouseClick(runs.stop_button, Qt.LeftButton)
    assert "nothing to save yet" in runs.log.toPlainText()

    def said() -> str:  # what the trainer said, for a failure's message
        return (f"stderr: {(run.folder / STDERR).read_text()[-2000:]!r}; log: "
                f"{runs.log.toPlainText()[-1000:]!r}")

    deadline = time.monotonic() + 30
    while Run.open(run.folder).running():
        assert time.monotonic() < deadline, f"still running 30 s after Stop; {said()}"
        qtbot.wait(100)
    assert _status(w, run) == "stopped", said()
    qtbot.waitUntil(lambda: "stopped while preparing" in runs.log.toPlainText(),
                    timeout=10_000)
    assert "Traceback" not in (run.folder / STDERR).read_text(), said()
    assert not runs.resume_button.isEnabled()  # nothing was saved to resume from
    assert not dialogs.warnings


def test_a_stop_before_the_trainer_listens_reads_stopped(tmp_path):
    """Stop in the trainer's first second, while Python imports torch: the default SIGTERM
    ends it before it can write a line. The user stopped it: not a failure."""
    store = RunStore(tmp_path / "runs", tmp_path / "cache")
    run = store.create(TrainRequest(dataset="folder", data_root=str(tmp_path), steps=5))
    store.start(run)
    assert store.stop(run)
    deadline = time.monotonic() + 30
    while Run.open(run.folder).running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Run.open(run.folder).status() == "stopped"
