"""Evaluation: the 95% CI formula, one class set for every shot, and the seen-class guard."""

from __future__ import annotations

import json
import math

import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.cli import main
from trainer.data import load_dataset
from trainer.data.episodes import Episode
from trainer.data.glyphset import GlyphSet
from trainer.data.splits import make_splits
from trainer.evaluate import (
    SEEN_LABEL,
    SeenClassesError,
    check_classes,
    confidence_interval,
    evaluate,
    part_label,
)
from trainer.learners import create_learner


def test_confidence_interval_known_values():
    # mean 0.75; sample std (n - 1) of [1, 0, 1, 1] is 0.5; 1.96 * 0.5 / sqrt(4) = 0.49
    mean, ci, std = confidence_interval(torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert (mean, std) == (0.75, 0.5) and ci == pytest.approx(0.49, abs=1e-12)
    acc = torch.tensor([90.0, 95.0, 100.0, 85.0, 80.0, 70.0, 99.0, 91.0])
    mean, ci, std = confidence_interval(acc)
    sd = math.sqrt(sum((a - 88.75) ** 2 for a in acc.tolist()) / 7)
    assert mean == pytest.approx(88.75) and std == pytest.approx(sd)
    assert ci == pytest.approx(1.96 * sd / math.sqrt(8))
    assert confidence_interval(torch.tensor([0.6]))[1:] == (0.0, 0.0)  # one episode: no CI


class _Scripted(torch.nn.Module):
    """A 'learner' whose answer is right exactly on the queries of label < ``right``, so each
    episode's accuracy is known in advance."""

    training = False

    def __init__(self, right: int) -> None:
        super().__init__()
        self.right = right

    def episode_logits(self, ep: Episode) -> torch.Tensor:
        y = ep.query_y.clone()
        wrong = y >= self.right
        y[wrong] = (y[wrong] + 1) % ep.way
        return torch.nn.functional.one_hot(y, ep.way).float()


def test_evaluate_reports_mean_and_ci_of_per_episode_accuracy(glyph_set):
    result = evaluate(_Scripted(right=3), glyph_set, way=5, shot=1, query=2, episodes=30)
    assert result.mean == pytest.approx(60.0) and result.ci95 == 0.0
    assert result.episodes == 30 and result.classes == glyph_set.num_classes


def _uneven(per_class: list[int]) -> GlyphSet:
    labels = torch.repeat_interleave(torch.arange(len(per_class)), torch.tensor(per_class))
    images = torch.zeros(len(labels), 4, 4, dtype=torch.uint8)
    images[:, 0, 0] = labels.to(torch.uint8)
    return GlyphSet(images, labels, [f"c{i}" for i in range(len(per_class))])


def test_min_images_puts_every_shot_on_one_class_set():
    glyphs = _uneven([6] * 10 + [10] * 12)
    seen = {}
    for shot in (1, 5):
        r = evaluate(_Scripted(right=5), glyphs, way=5, shot=shot, query=5, episodes=40,
                     min_images=10)
        seen[shot] = r.classes
    assert seen == {1: 12, 5: 12}
    # without it, 1-shot draws on all 22 classes and 5-shot on the 12 with 10 images
    assert evaluate(_Scripted(5), glyphs, way=5, shot=1, query=5, episodes=20).classes == 22


def _payload(names_train: list[str], names_val: list[str], **cfg) -> dict:
    learner = create_learner("protonet")
    trained = ckpt.trained_on(dataset="folder", split="seed", split_seed=0, rotations=False,
                              train=names_train, val=names_val)
    return ckpt.model_payload(learner, train_config={"dataset": "folder", "split": "seed",
                                                     **cfg}, trained=trained)


def test_guard_refuses_seen_classes_and_labels_what_it_allows(glyph_set):
    splits = make_splits(glyph_set, "seed")
    payload = _payload(splits.train.class_names, splits.val.class_names)
    test = check_classes(payload, splits.test, dataset="folder")
    assert test.seen == [] and test.characters == splits.test.num_classes
    assert part_label(test, part="test", dataset="folder", split="seed",
                      allow_seen=False) == "test"
    for part in (splits.train, splits.val):
        check = check_classes(payload, part, dataset="folder")
        assert len(check.seen) == part.num_classes
        with pytest.raises(SeenClassesError, match=f"{part.num_classes} of the "):
            part_label(check, part="x", dataset="folder", split="seed", allow_seen=False)
        assert part_label(check, part="x", dataset="folder", split="seed",
                          allow_seen=True) == SEEN_LABEL
    # split `all` is never a "test": seen classes refused, unseen ones called "all classes"
    every = make_splits(glyph_set, "all").test
    with pytest.raises(SeenClassesError):
        part_label(check_classes(payload, every, dataset="folder"), part="test",
                   dataset="folder", split="all", allow_seen=False)
    other = _payload(["x/1"], ["x/2"])
    assert part_label(check_classes(other, every, dataset="folder"), part="test",
                      dataset="folder", split="all", allow_seen=False) == "all classes"


def test_guard_counts_a_rotation_as_its_character():
    payload = _payload(["A/character01"], [])
    part = _uneven([1, 1])
    part = GlyphSet(part.images, part.labels, ["A/character01/rot090", "B/character01/rot000"])
    assert check_classes(payload, part, dataset="folder").seen == ["A/character01"]


def test_files_without_a_class_record_are_checked_from_their_config(glyph_set):
    splits = make_splits(glyph_set, "seed")
    payload = _payload([], [])
    del payload["trained_on"]
    check = check_classes(payload, splits.train, dataset="folder", glyphs=glyph_set)
    assert check.source == "training configuration"
    assert len(check.seen) == splits.train.num_classes
    assert check_classes(payload, splits.test, dataset="folder", glyphs=glyph_set).seen == []
    unknown = check_classes(payload, splits.test, dataset="omniglot", glyphs=glyph_set)
    with pytest.raises(SeenClassesError, match="cannot be checked"):
        part_label(unknown, part="test", dataset="omniglot", split="seed", allow_seen=False)


def test_cli_guard_end_to_end(glyph_tree, tmp_path, capsys):
    common = ["--dataset", "folder", "--data-root", str(glyph_tree),
              "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    out = tmp_path / "run"
    assert main(["meta-train", "--algo", "protonet", "--steps", "2", "--batch", "2",
                 "--val-every", "2", "--val-episodes", "5", "--out", str(out), *common]) == 0
    model = out / "best.pt"
    trained = ckpt.read(model)["trained_on"]
    splits = make_splits(load_dataset("folder", glyph_tree, cache_dir=tmp_path / "cache"),
                         "seed")
    assert trained["train_sha256"] == ckpt.names_hash(splits.train.class_names)
    assert trained["val_classes"] == sorted(splits.val.class_names)
    capsys.readouterr()
    for bad in (["--split", "all"], ["--part", "train"], ["--part", "val"]):
        assert main(["evaluate", "--model", str(model), "--episodes", "5", "--record",
                     *common, *bad]) == 2
        err = capsys.readouterr().err
        assert "not a test" in err and "--allow-seen" in err and err.count("\n") == 1
    assert "evaluations" not in ckpt.read(model)["metrics"]  # nothing recorded
    assert main(["evaluate", "--model", str(model), "--episodes", "5", "--record", "--json",
                 "--allow-seen", "--split", "all", *common]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["part"] == SEEN_LABEL
    assert [e["part"] for e in ckpt.read(model)["metrics"]["evaluations"]] == [SEEN_LABEL]
