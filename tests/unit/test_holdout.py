"""Class-set models (split all) measured on examples held out of their training: the
held-out examples never reach training, validation or calibration, and the model file
records the figure under its own protocol (issue 16: numbers that cannot flatter)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from tests.conftest import make_class_tree
from trainer import checkpoint as ckpt
from trainer.api import model_info
from trainer.cli import main
from trainer.config import TrainConfig
from trainer.data.episodes import EpisodeSampler
from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError
from trainer.data.splits import hold_out_examples, make_splits
from trainer.evaluate import HELD_OUT_PART, HELD_OUT_PROTOCOL, wilson_interval
from trainer.learners import create_learner


def _hashes(images: torch.Tensor) -> list[str]:
    return [hashlib.sha256(im.numpy().tobytes()).hexdigest() for im in images]


def _glyphs(counts: list[int], names: list[str] | None = None, seed: int = 0) -> GlyphSet:
    g = torch.Generator().manual_seed(seed)
    m = sum(counts)
    images = torch.randint(0, 256, (m, 8, 8), generator=g, dtype=torch.int64).to(torch.uint8)
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    return GlyphSet(images, labels, names or [f"c{i}" for i in range(len(counts))])


def test_hold_out_takes_at_most_half_a_class_and_keeps_every_class():
    glyphs = _glyphs([1, 2, 3, 10])
    train, held = hold_out_examples(glyphs, per_class=3)
    assert held.counts().tolist() == [0, 1, 1, 3]  # a lone example trains and is not scored
    assert train.counts().tolist() == [1, 1, 2, 7]
    assert train.class_names == held.class_names == glyphs.class_names
    # a selection: together they are the data, each example in exactly one part
    assert sorted(_hashes(train.images) + _hashes(held.images)) == sorted(
        _hashes(glyphs.images))
    assert not set(_hashes(train.images)) & set(_hashes(held.images))
    again = hold_out_examples(glyphs, per_class=3)[1]
    assert torch.equal(again.images, held.images)  # seeded
    assert hold_out_examples(glyphs, per_class=0)[1].labels.numel() == 0


def test_a_new_class_leaves_the_other_classes_held_out_examples_alone():
    before = hold_out_examples(_glyphs([4, 6]), per_class=2)[1]
    grown = _glyphs([4, 6, 5, 3], names=["c0", "c1", "new", "other"])
    after = hold_out_examples(grown, per_class=2)[1]
    assert torch.equal(after.images[:4], before.images)


def test_holding_out_examples_is_for_split_all_only(glyph_set):
    with pytest.raises(DataError, match="split 'all'"):
        make_splits(glyph_set, "seed", holdout_per_class=1)
    with pytest.raises(ValueError, match="split all"):
        TrainConfig(algo="protonet", split="seed", holdout_per_class=1)
    assert main(["meta-train", "--algo", "protonet", "--out", "/nonexistent/x",
                 "--holdout-per-class", "-1"]) == 2
    s = make_splits(glyph_set, "all", holdout_per_class=1)
    assert s.train is s.val and s.test.labels.numel() == glyph_set.num_classes


def test_wilson_interval_is_honest_at_few_examples():
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and 0.70 < low < 0.73  # 10 of 10 right is not "100 +- 0%"
    low, high = wilson_interval(0, 0)
    assert (low, high) == (0.0, 1.0)


def test_held_out_examples_never_reach_training_and_the_record_says_so(
        tmp_path, monkeypatch):
    data = tmp_path / "mine"
    make_class_tree(data, classes=5, per_class=4)
    make_class_tree(data, classes=1, per_class=1, seed=1, prefix="lone-")
    files_before = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file())

    # Every glyph set a sampler is built on (training, validation, calibration) and every
    # image an episode draws.
    seen_sets: list[GlyphSet] = []
    drawn: set[str] = set()
    init, sample = EpisodeSampler.__init__, EpisodeSampler.sample

    def recording_init(self, glyphs, *args, **kwargs):
        seen_sets.append(glyphs)
        init(self, glyphs, *args, **kwargs)

    def recording_sample(self):
        ep = sample(self)
        for x in (ep.support_x, ep.query_x):
            images = (x * 255).round().to(torch.uint8).reshape(-1, *x.shape[-2:])
            drawn.update(_hashes(images))
        return ep

    monkeypatch.setattr(EpisodeSampler, "__init__", recording_init)
    monkeypatch.setattr(EpisodeSampler, "sample", recording_sample)
    out = tmp_path / "run"
    assert main(["meta-train", "--algo", "protonet", "--dataset", "folder", "--data-root",
                 str(data), "--split", "all", "--holdout-per-class", "1", "--steps", "4",
                 "--batch", "2", "--way", "3", "--shot", "1", "--query", "1",
                 "--val-every", "2", "--val-episodes", "5", "--device", "cpu",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0

    payload = ckpt.read(out / "best.pt")
    assert payload["train_config"]["holdout_per_class"] == 1
    held = payload["trained_on"]["held_out"]
    assert (held["examples"], held["classes"], held["per_class"]) == (5, 5, 1)
    held_hashes = set(held["image_sha256"])
    assert len(held_hashes) == 5
    assert seen_sets and drawn
    for glyphs in seen_sets:
        assert glyphs.labels.numel() == 21 - 5
        assert not held_hashes & set(_hashes(glyphs.images))
    assert not held_hashes & drawn
    # the guard still knows every class was trained on (each kept examples to train)
    assert len(payload["trained_on"]["train_classes"]) == 6

    [record] = [e for e in payload["metrics"]["evaluations"]
                if e["protocol"] == HELD_OUT_PROTOCOL]
    assert record["part"] == HELD_OUT_PART == "held-out examples of your class set"
    assert (record["held_out"], record["held_out_classes"], record["way"],
            record["train_examples"]) == (5, 5, 6, 16)
    assert record["ci_low"] <= record["mean"] <= record["ci_high"]
    headline = model_info(out / "best.pt").headline_accuracy
    assert headline.startswith("held-out examples ") and "5 of your examples" in headline
    assert "95% CI" in headline
    # the user's data is untouched
    assert sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file()) == \
        files_before


def test_class_set_models_without_a_held_out_figure_say_why(tmp_path):
    learner = create_learner("protonet")
    path = Path(tmp_path / "m.pt")
    ckpt.save(ckpt.model_payload(learner, train_config={
        "dataset": "folder", "split": "all", "holdout_per_class": 1},
        metrics={"val_acc": 100.0}), path)
    assert model_info(path).headline_accuracy.startswith(
        "not evaluated: no held-out example was measured")
    # a score on its own classes (evaluate --allow-seen) is not shown either
    ckpt.record_evaluation(path, {"dataset": "folder", "split": "all", "part": "seen classes",
                                  "protocol": "episodes", "way": 5, "shot": 1, "mean": 99.0,
                                  "ci95": 0.5})
    assert model_info(path).headline_accuracy.startswith("not evaluated")
