"""The shipped model files: loadable safely, small, and carrying their config and the
evaluations the README's results table is printed from (scripts/results_table.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.api import load_model, model_info

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
FILES = sorted(MODELS.glob("*.pt")) + sorted(MODELS.glob("*/*.pt"))
# The README's tables: every cell of a headline row is a recorded test evaluation; the
# Omniglot `lake` rows are reported for 5-way (their 20-way cells may say "not evaluated").
SHAPES = {("omniglot", "seed"): {(5, 1), (5, 5), (20, 1), (20, 5)},
          ("omniglot", "lake"): {(5, 1), (5, 5)},
          ("nom", "seed"): {(5, 1), (5, 5), (20, 1)},
          ("nom", "nom-only"): {(5, 1), (5, 5), (20, 1)}}


def test_the_app_has_its_default_models():
    names = {p.name for p in MODELS.glob("*.pt")}
    assert {"protonet-omniglot.pt", "protonet-nom.pt"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MODELS)))
def test_bundled_model(path):
    assert path.stat().st_size < 1_000_000  # a Conv4 is ~113k parameters
    model = load_model(path)  # torch.load(weights_only=True) inside
    info = model_info(path)
    cfg = info.train_config
    assert cfg["algo"] == model.info.algo and cfg["steps"] > 0  # how it was trained
    dataset = cfg["dataset"]
    tested = {(e["split"], e["way"], e["shot"]) for e in info.metrics.get("evaluations", [])
              if e["part"] == "test" and e.get("protocol", "episodes") == "episodes"}
    splits = ["seed", "nom-only"] if dataset == "nom" else [cfg["split"]]
    for split in splits:
        missing = {(split, w, s) for w, s in SHAPES[dataset, split]} - tested
        assert not missing, f"{path.name}: no recorded test evaluation for {sorted(missing)}"
