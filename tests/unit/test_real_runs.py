"""Each learner beats chance clearly after a short real run (Omniglot when ../shared has it)."""

from __future__ import annotations

import pytest
import torch

from trainer.config import TrainConfig
from trainer.data.splits import make_splits
from trainer.engine import train
from trainer.evaluate import evaluate
from trainer.runs import build

RUNS = [("protonet", {}, 60), ("maml", {}, 60), ("maml", {"first_order": True}, 60),
        ("protomaml", {}, 60), ("transfer", {}, 150)]


@pytest.mark.slow
@pytest.mark.parametrize("algo,hparams,steps", RUNS,
                         ids=["protonet", "maml", "fomaml", "protomaml", "transfer"])
def test_short_run_beats_chance(algo, hparams, steps, omniglot_or_generated, tmp_path):
    _, glyphs = omniglot_or_generated
    splits = make_splits(glyphs, "seed")
    cfg = TrainConfig(algo=algo, batch=64 if algo == "transfer" else 4, steps=steps,
                      query=5, lr=3e-3, val_every=steps, val_episodes=20, hparams=hparams)
    learner, sampler, validate = build(cfg, splits, torch.device("cpu"))
    train(cfg, learner, sampler, validate, tmp_path / "run")
    result = evaluate(learner, splits.test, way=5, shot=1, episodes=100)
    # chance is 20%; 40% is far outside the CI of a learner that learned nothing
    assert result.mean - result.ci95 > 40.0, str(result)
