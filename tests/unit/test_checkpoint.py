from __future__ import annotations

import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.api import ModelFileError, load_model, model_info
from trainer.learners import create_learner


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.fixture
def model_file(tmp_path):
    learner = create_learner("protonet")
    path = tmp_path / "ok.pt"
    ckpt.save(ckpt.model_payload(learner, metrics={"val_acc": 91.5}), path)
    return path


def test_good_file_loads(model_file):
    info = model_info(model_file)
    assert info.algo == "protonet" and info.headline_accuracy == "validation 91.5%"
    assert load_model(model_file).info.image_size == 28


def test_truncated_file(model_file, tmp_path):
    bad = tmp_path / "cut.pt"
    bad.write_bytes(model_file.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(bad)


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "nomgui-model", "x": Evil()}, path)
    with pytest.raises(ModelFileError, match="code could run"):
        load_model(path)


def test_other_version_and_foreign_files(model_file, tmp_path):
    payload = torch.load(model_file, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(ModelFileError, match="version 99"):
        load_model(tmp_path / "v99.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelFileError, match="not a nomgui model"):
        load_model(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "text.pt")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_weights_that_do_not_fit(model_file, tmp_path):
    payload = torch.load(model_file, weights_only=True)
    payload["learner"]["backbone"]["hidden"] = 32
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(tmp_path / "mismatch.pt")


def _record(way: int, mean: float = 50.0) -> dict:
    return {"protocol": "episodes", "dataset": "omniglot", "split": "seed", "part": "test",
            "way": way, "shot": 1, "mean": mean, "ci95": 1.0}


def test_recorded_evaluations_replace_the_same_measurement_only(model_file):
    ckpt.record_evaluation(model_file, _record(5, 50.0))
    ckpt.record_evaluation(model_file, _record(20, 40.0))
    ckpt.record_evaluation(model_file, _record(5, 60.0))  # the same measurement, again
    ckpt.record_evaluation(model_file, {**_record(5, 70.0), "protocol": "all-classes"})
    evals = model_info(model_file).metrics["evaluations"]
    assert sorted((e["protocol"], e["way"], e["mean"]) for e in evals) == [
        ("all-classes", 5, 70.0), ("episodes", 5, 60.0), ("episodes", 20, 40.0)]
    assert model_info(model_file).headline_accuracy.startswith("20-way")  # not all-classes


def test_evaluations_recorded_side_by_side_all_land(model_file):
    """Two evaluations of one model finishing together must not overwrite each other."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda w: ckpt.record_evaluation(model_file, _record(w)), range(2, 18)))
    assert sorted(e["way"] for e in model_info(model_file).metrics["evaluations"]) == list(
        range(2, 18))
