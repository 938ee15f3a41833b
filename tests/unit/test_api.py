"""The facade the GUI uses: load, fit a class set, top-k; the same for every learner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer import checkpoint as ckpt
from trainer.api import load_model, normalize_glyph
from trainer.learners import LEARNERS, create_learner


@pytest.mark.parametrize("algo", sorted(LEARNERS))
def test_fit_and_top_k(algo, glyph_set, tmp_path):
    torch.manual_seed(0)
    learner = create_learner(algo, {"image_size": 28}, **(
        {"num_classes": 10, "finetune_steps": 10} if algo == "transfer" else {}))
    ckpt.save(ckpt.model_payload(learner), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    glyphs = [glyph_set.images[i].numpy() for i in range(0, 60, 20)]  # 3 classes, 1 each
    glyphs += [glyph_set.images[i + 1].numpy() for i in range(0, 60, 20)]
    labels = ["a", "b", "c"] * 2
    clf = model.fit(glyphs, labels)
    assert clf.classes == ["a", "b", "c"]
    top = clf.top_k(glyphs[0], k=5)
    assert sorted(t[0] for t in top) == ["a", "b", "c"]  # k is capped by the classes
    assert top[0][1] >= top[1][1] >= top[2][1]  # best first
    assert abs(sum(p for _, p in top) - 1.0) < 1e-5
    probs = clf.predict_proba(glyphs)
    assert probs.shape == (6, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_fit_refuses_bad_input(tmp_path):
    ckpt.save(ckpt.model_payload(create_learner("protonet")), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    g = np.zeros((28, 28), np.uint8)
    with pytest.raises(ValueError, match="at least two classes"):
        model.fit([g, g], ["a", "a"])
    with pytest.raises(ValueError, match="normalize_glyph"):
        model.fit([np.zeros((64, 64), np.uint8), g], ["a", "b"])
    img = np.full((50, 40), 255, np.uint8)
    img[10:40, 18:22] = 0
    assert normalize_glyph(img).shape == (28, 28)


@pytest.mark.parametrize("algo", ["maml", "transfer"])
def test_fit_stops_when_cancelled_between_steps(algo, glyph_set, tmp_path):
    from trainer.api import Cancelled

    hp = {"inner_steps": 5} if algo == "maml" else {"num_classes": 10, "finetune_steps": 50}
    ckpt.save(ckpt.model_payload(create_learner(algo, {"image_size": 28}, **hp)),
              tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    glyphs = [glyph_set.images[i].numpy() for i in range(0, 60, 20)]
    polls = []

    def cancel() -> bool:  # asked between steps: say stop at the third question
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(Cancelled):
        model.fit(glyphs, ["a", "b", "c"], cancel=cancel)
    assert len(polls) == 3
    assert model.fit(glyphs, ["a", "b", "c"], cancel=lambda: False).classes == ["a", "b", "c"]


def test_fit_keeps_no_autograd_graph(glyph_set, tmp_path):
    ckpt.save(ckpt.model_payload(create_learner("protonet")), tmp_path / "m.pt")
    clf = load_model(tmp_path / "m.pt").fit(
        [glyph_set.images[i].numpy() for i in range(0, 60, 20)], ["a", "b", "c"])
    # ProtoNet's prototypes live in the classifier's closure: no graph may hang on them
    protos = [c.cell_contents for c in clf._classify.__closure__
              if isinstance(c.cell_contents, torch.Tensor)]
    assert protos and all(p.grad_fn is None and not p.requires_grad for p in protos)


def test_a_model_trained_on_every_example_shows_no_flattering_figure(tmp_path):
    from trainer.api import model_info

    learner = create_learner("protonet")
    ckpt.save(ckpt.model_payload(learner, train_config={"dataset": "classset", "split": "all"},
                                 metrics={"val_acc": 100.0}), tmp_path / "mine.pt")
    assert model_info(tmp_path / "mine.pt").headline_accuracy.startswith("not evaluated")
    ckpt.save(ckpt.model_payload(learner, train_config={"dataset": "omniglot", "split": "seed"},
                                 metrics={"val_acc": 97.5}), tmp_path / "other.pt")
    assert model_info(tmp_path / "other.pt").headline_accuracy == "validation 97.5%"
