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
          ("omniglot", "vinyals"): {(5, 1), (5, 5), (20, 1), (20, 5)},
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
    if dataset == "nom-lookup":  # a lookup model: the lookup on both test parts, the
        # episodic rows on the crops like any Nôm model
        lookups = {(e["split"], e["support"]) for e in info.metrics.get("evaluations", [])
                   if e.get("protocol") == "lookup" and e["part"] == "test"}
        assert {(sp, su) for sp in ("seed", "nom-only") for su in ("clean", "both")} <= lookups
        dataset = "nom"
    splits = ["seed", "nom-only"] if dataset == "nom" else [cfg["split"]]
    for split in splits:
        missing = {(split, w, s) for w, s in SHAPES[dataset, split]} - tested
        assert not missing, f"{path.name}: no recorded test evaluation for {sorted(missing)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MODELS)))
def test_bundled_model_knows_its_training_classes(path):
    """The seen-class guard's input: each file names the classes it was trained and
    validated on, and for Omniglot they are exactly its split's (stored hashes)."""
    from tests.unit.test_splits import fake_omniglot
    from trainer.checkpoint import character_of, names_hash, read
    from trainer.data.splits import make_splits, trained_parts

    payload = read(path)
    trained, cfg = payload["trained_on"], payload["train_config"]
    assert (trained["dataset"], trained["split"]) == (cfg["dataset"], cfg["split"])
    if cfg["dataset"] == "omniglot":
        train, val = trained_parts(cfg["algo"], make_splits(fake_omniglot(), cfg["split"]))
        assert trained["train_sha256"] == names_hash(train)
        assert trained["val_sha256"] == names_hash(val)
        assert trained["train_classes"] == sorted({character_of(n) for n in train})
    else:
        assert len(trained["train_classes"]) > 1000  # the Nôm crops' 70%


def test_a_recorded_cell_reproduces(omniglot_or_generated):
    """Re-measure one README cell on the shipped file: the first 300 of the 1,000 seeded
    episodes behind protonet-omniglot.pt's 5-way 1-shot `seed` figure must land within
    their own 95% CI of the recorded mean (a model, data or preprocessing drift would not)."""
    name, glyphs = omniglot_or_generated
    if name != "omniglot":
        pytest.skip("needs ../shared/data/omniglot")
    from trainer.data.splits import make_splits
    from trainer.evaluate import evaluate

    path = MODELS / "protonet-omniglot.pt"
    model = load_model(path)
    recorded = next(e for e in model.info.metrics["evaluations"]
                    if (e["split"], e["part"], e["way"], e["shot"],
                        e.get("protocol", "episodes")) == ("seed", "test", 5, 1, "episodes"))
    assert recorded["episodes"] == 1000  # evaluate's default --seed 0
    part = make_splits(glyphs, "seed").test
    again = evaluate(model.learner, part, way=5, shot=1, query=recorded["query"],
                     episodes=300, seed=0)
    assert abs(again.mean - recorded["mean"]) <= again.ci95, (again, recorded["mean"])
