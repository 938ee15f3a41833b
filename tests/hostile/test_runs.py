"""Item 2 (and the run-record part of 7): a run record can never make the app signal a
process that is not its own trainer, and damaged fields refuse the record with a message
instead of breaking the runs window or closing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nomgui import training
from nomgui.training import RUN_FILE, Run, RunStore, TrainRequest


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs", tmp_path / "cache")


@pytest.fixture()
def kills(monkeypatch) -> list:
    """Every os.kill the app makes, recorded instead of sent (nothing is ever signalled)."""
    calls: list = []
    monkeypatch.setattr(training.os, "kill", lambda pid, sig: calls.append((pid, sig)))
    return calls


def _record(store: RunStore, tmp_path: Path, **fields) -> Path:
    run = store.create(TrainRequest(dataset="folder", data_root=str(tmp_path), steps=10))
    data = json.loads((run.folder / RUN_FILE).read_text())
    data.update(fields)
    (run.folder / RUN_FILE).write_text(json.dumps(data))
    return run.folder


@pytest.mark.parametrize("pid", [-1, -os.getpgid(0), 0, 1, "abc", 2**70, True, 1.5])
def test_crafted_pids_are_never_signalled(store, tmp_path, kills, pid):
    _record(store, tmp_path, pid=pid)
    runs, errors = store.list()
    for run in runs:  # those accepted at all are not running and not stoppable
        assert not run.running() and run.status() == "failed"
        assert store.stop(run) is False
    assert len(runs) + len(errors) == 1
    assert all(p > 1 for p, _ in kills if isinstance(p, int))
    assert not any(sig == signal.SIGTERM for _, sig in kills)


def test_a_live_process_that_is_not_the_runs_trainer_is_not_signalled(store, tmp_path):
    """A real pid of someone else's process (here a sleep): shown as not running, and
    Stop does not signal it."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = _record(store, tmp_path, pid=other.pid)
        run = Run.open(folder)
        assert not run.running() and store.stop(run) is False
        assert other.poll() is None  # still alive: it was not signalled
        # a recorded start time that does not match (a recycled pid) is refused too
        data = json.loads((folder / RUN_FILE).read_text())
        data["pid_start"] = (training._proc_start_time(other.pid) or 0) + 1
        (folder / RUN_FILE).write_text(json.dumps(data))
        assert not Run.open(folder).running()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("fields", [
    {"created": "yesterday"}, {"title": 5}, {"argv": "rm -rf /"}, {"argv": [1, 2]},
    {"request": {"dataset": "../../etc"}}, {"request": {"algo": "evil"}},
    {"request": {"steps": -5}}, {"request": {"device": "tpu; rm"}},
    {"request": {"nope": 1}}, {"evaluation": {"mean": "high"}},
    {"id": "../../elsewhere"}, {"unknown_field": 1},
])
def test_damaged_fields_refuse_the_record_with_a_message(store, tmp_path, fields):
    if "request" in fields:
        base = json.loads(json.dumps(TrainRequest(dataset="folder").__dict__))
        fields = {"request": {**base, **fields["request"]}}
    _record(store, tmp_path, **fields)
    runs, errors = store.list()
    assert runs == [] and len(errors) == 1 and "unreadable" in errors[0]


def test_progress_lines_without_their_keys_are_skipped(store, tmp_path):
    folder = _record(store, tmp_path)
    lines = [{"event": "start", "step": 0, "steps": 10},
             {"event": "val", "step": 5, "val_acc": 50.0},  # no best_val
             {"event": "step", "step": 5, "loss": "x", "acc": 1.0},
             {"event": "val", "step": 6, "val_acc": 60.0, "best_val": 60.0},
             {"event": "done", "status": "stopped", "step": 6, "best_val": None}]
    (folder / training.PROGRESS).write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = Run.open(folder)
    assert [e["step"] for e in run.all_events()] == [0, 6, 6]
    assert run.accuracy_text() == "val 60.00%" and run.status() == "stopped"


def test_register_names_the_model_from_checked_values(store, tmp_path):
    folder = _record(store, tmp_path)
    (folder / "out").mkdir()
    (folder / "out" / "best.pt").write_bytes(b"x")
    target = store.register(Run.open(folder), tmp_path / "models")
    assert target.parent == tmp_path / "models" and folder.name in target.name
