"""Every registered learner, through the one interface (parametrised over the registry)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer import checkpoint as ckpt
from trainer.data.episodes import BatchSampler, EpisodeSampler
from trainer.learners import LEARNERS, create_learner
from trainer.models.conv4 import prototypes, sq_distances

ALGOS = sorted(LEARNERS)


def _learner(algo: str, **kw):
    torch.manual_seed(0)
    if algo == "transfer":
        kw.setdefault("num_classes", 60)
        kw.setdefault("finetune_steps", 20)
    return create_learner(algo, {"image_size": 28}, **kw)


def _batch(learner, glyph_set, seed=0):
    g = torch.Generator().manual_seed(seed)
    if learner.batch_kind == "classification":
        return BatchSampler(glyph_set, 40, generator=g).sample()
    return EpisodeSampler(glyph_set, 5, 1, 3, 4, generator=g).sample()


@pytest.mark.parametrize("algo", ALGOS)
def test_loss_is_finite_and_falls_on_a_fixed_batch(algo, glyph_set):
    learner = _learner(algo).train()
    batch = _batch(learner, glyph_set)
    opt = torch.optim.Adam([p for p in learner.parameters() if p.requires_grad], 1e-3)
    losses = []
    for _ in range(15):
        loss, acc = learner.loss(batch)
        assert torch.isfinite(loss) and 0 <= float(acc) <= 1
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("algo", ALGOS)
def test_adapt_agrees_with_batched_episode_logits(algo, glyph_set):
    learner = _learner(algo).eval()
    ep = EpisodeSampler(glyph_set, 5, 2, 3, 3, generator=torch.Generator().manual_seed(1)
                        ).sample()
    with torch.no_grad():
        batched = learner.episode_logits(ep)
    assert batched.shape == (3, 15, 5)
    for t in range(3):
        single = learner.adapt(ep.support_x[t], ep.support_y[t], 5)(ep.query_x[t])
        torch.testing.assert_close(single, batched[t], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("algo", ALGOS)
def test_one_query_gets_the_same_answer_as_a_batch(algo, glyph_set):
    """No transductive batch norm: the GUI classifies one glyph at a time."""
    learner = _learner(algo).eval()
    ep = EpisodeSampler(glyph_set, 5, 1, 4, 1, generator=torch.Generator().manual_seed(2)
                        ).sample()
    classify = learner.adapt(ep.support_x[0], ep.support_y[0], 5)
    with torch.no_grad():
        together = classify(ep.query_x[0])
        alone = torch.cat([classify(q[None]) for q in ep.query_x[0]])
    torch.testing.assert_close(alone, together, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_round_trip(algo, glyph_set, tmp_path):
    learner = _learner(algo).eval()
    ckpt.save(ckpt.model_payload(learner, metrics={"val_acc": 50.0}), tmp_path / "m.pt")
    loaded, payload = ckpt.load_learner(tmp_path / "m.pt")
    assert payload["metrics"]["val_acc"] == 50.0 and payload["learner"]["algo"] == algo
    ep = EpisodeSampler(glyph_set, 5, 1, 2, 2, generator=torch.Generator().manual_seed(0)
                        ).sample()
    with torch.no_grad():
        torch.testing.assert_close(learner.episode_logits(ep), loaded.episode_logits(ep))


@pytest.mark.parametrize("algo", ["maml", "protomaml"])
def test_any_way_at_adaptation(algo, glyph_set):
    """The MAML family adapts to any number of classes (the GUI's class set)."""
    learner = _learner(algo).eval()
    ep = EpisodeSampler(glyph_set, 12, 1, 1, 1, generator=torch.Generator()).sample()
    logits = learner.adapt(ep.support_x[0], ep.support_y[0], 12)(ep.query_x[0])
    assert logits.shape == (12, 12)


def test_protonet_known_answer():
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
    labels = torch.tensor([1, 1, 0, 0])  # order of labels, not of samples, decides
    protos = prototypes(emb, labels, 2)
    torch.testing.assert_close(protos, torch.tensor([[11.0, 10.0], [1.0, 0.0]]))
    d = sq_distances(torch.tensor([[1.0, 1.0]]), protos)
    torch.testing.assert_close(d, torch.tensor([[181.0, 1.0]]))


def test_protomaml_head_starts_as_protonet(glyph_set):
    """w = 2c, b = -|c|^2 gives ProtoNet's logits up to a per-row constant (-|x|^2)."""
    learner = _learner("protomaml", eval_inner_steps=0).eval()
    ep = EpisodeSampler(glyph_set, 5, 2, 3, 1, generator=torch.Generator().manual_seed(0)
                        ).sample()
    sx, sy, qx = ep.support_x[0], ep.support_y[0], ep.query_x[0]
    logits = learner.adapt(sx, sy, 5)(qx)
    _, stats = learner.backbone.forward_with_stats(sx)
    sup = learner.backbone.forward_with_stats(sx, stats)[0]
    qry = learner.backbone.forward_with_stats(qx, stats)[0]
    proto_logits = -sq_distances(qry, prototypes(sup, sy, 5))
    torch.testing.assert_close(F.softmax(logits, -1), F.softmax(proto_logits, -1),
                               atol=1e-4, rtol=1e-4)


def test_first_order_drops_second_derivatives(glyph_set):
    ep = EpisodeSampler(glyph_set, 5, 1, 3, 2, generator=torch.Generator().manual_seed(0)
                        ).sample()
    grads = {}
    for fo in (False, True):
        learner = _learner("maml", first_order=fo, inner_lr=0.4)
        loss, _ = learner.loss(ep)
        loss.backward()
        grads[fo] = learner.backbone.convs[0].weight.grad.clone()
    assert not torch.allclose(grads[False], grads[True])


def test_vmapped_maml_loss_equals_a_loop_over_tasks(glyph_set):
    learner = _learner("maml", first_order=False)
    ep = EpisodeSampler(glyph_set, 5, 1, 3, 3, generator=torch.Generator().manual_seed(0)
                        ).sample()
    loss, _ = learner.loss(ep)
    body = dict(learner.backbone.named_parameters())
    per_task = torch.stack([
        F.cross_entropy(learner._task_logits(body, ep.support_x[t], ep.support_y[t],
                                             ep.query_x[t], 5, 1, False), ep.query_y[t])
        for t in range(3)])
    torch.testing.assert_close(loss, per_task.mean(), atol=1e-5, rtol=1e-5)


def test_learned_inner_lr_is_meta_learned(glyph_set):
    learner = _learner("maml", learn_inner_lr=True)
    loss, _ = learner.loss(_batch(learner, glyph_set))
    loss.backward()
    assert learner.log_inner_lr.grad is not None and learner.log_inner_lr.grad.abs().sum() > 0


@pytest.mark.parametrize("algo", ALGOS)
def test_unknown_hyperparameters_are_rejected(algo):
    with pytest.raises(ValueError, match="bad settings"):
        create_learner(algo, colour="red")


@pytest.mark.parametrize("algo", ["maml", "protomaml"])
def test_adaptation_takes_as_many_steps_as_training_by_default(algo):
    assert _learner(algo, inner_steps=2).hparams["eval_inner_steps"] == 2
    assert _learner(algo, inner_steps=2, eval_inner_steps=5).hparams["eval_inner_steps"] == 5
