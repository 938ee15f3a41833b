"""Issue 17 (speed): fitting a class set does less work, and computes the same thing.

Each faster path is checked against the code it replaced: the autograd forward of Conv4,
and MAML's full functional inner loop through body and head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainer import checkpoint as ckpt
from trainer.api import Model, load_model
from trainer.data.episodes import EpisodeSampler
from trainer.learners import Cancelled, create_learner
from trainer.learners.maml import MAML

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


def _support_query(glyph_set, way: int, shot: int, seed: int = 0):
    ep = EpisodeSampler(glyph_set, way, shot, 3, 1,
                        generator=torch.Generator().manual_seed(seed)).sample()
    return ep.support_x[0], ep.support_y[0], ep.query_x[0]


def _maml(algo: str, steps: int) -> MAML:
    torch.manual_seed(0)
    learner = create_learner(algo, {"image_size": 28}, inner_steps=steps, inner_lr=0.3).eval()
    with torch.no_grad():  # a trained shared row is not zero
        learner.head_weight.normal_(0, 0.1)
        learner.head_bias.fill_(0.2)
    return learner


def reference_adapt(learner: MAML, sx: torch.Tensor, sy: torch.Tensor, way: int):
    """MAML.adapt as it was before issue 17: every inner step through body and head by
    torch.func.grad, and every forward on Conv4's autograd path."""
    body = {k: v.detach() for k, v in learner.backbone.named_parameters()}
    with torch.enable_grad():
        params = learner._adapt_params(body, sx, sy, way, learner.hparams["eval_inner_steps"],
                                       True)
        params = {k: v.detach() for k, v in params.items()}
        _, stats = learner._forward(params, sx, None)

    def classify(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return learner._forward(params, x, stats)[0].detach()

    return classify


@pytest.mark.parametrize("last_pool", [True, False], ids=["pooled", "unpooled-last"])
@pytest.mark.parametrize("images", [50, 150])  # one chunk; three, the last one partial
@pytest.mark.parametrize("bn", ["running", "support"])
def test_no_grad_forward_equals_the_autograd_forward(bn, images, last_pool, glyph_set):
    torch.manual_seed(0)
    learner = create_learner("protonet" if bn == "running" else "maml",
                             {"image_size": 28, "last_pool": last_pool})
    net = learner.backbone.eval()
    for norm in net.norms:  # non-trivial batch norm, as after training
        with torch.no_grad():
            norm.weight.uniform_(-1.5, 1.5)  # negative scales too
            norm.bias.normal_(0, 0.3)
            if bn == "running":
                norm.running_mean.normal_(0, 0.2)
                norm.running_var.uniform_(0.5, 2.0)
    assert glyph_set.images.shape[0] >= images + 10
    x = glyph_set.images[:images].unsqueeze(1).float() / 255
    q = glyph_set.images[images:images + 10].unsqueeze(1).float() / 255
    with torch.enable_grad():
        ref, ref_stats = net(x, return_stats=True)
        ref_q = net(q, ref_stats)
    with torch.no_grad():
        out, stats = net(x, return_stats=True)
        out_q = net(q, stats)
    assert out.shape == (images, 64 if last_pool else 576)
    torch.testing.assert_close(out, ref.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_q, ref_q.detach(), atol=1e-5, rtol=1e-5)
    for (m, v), (rm, rv) in zip(stats, ref_stats, strict=True):
        torch.testing.assert_close(m, rm.detach())
        torch.testing.assert_close(v, rv.detach())


def reference_heads(support: torch.Tensor, labels: torch.Tensor, way: int, steps: int,
                    lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Transfer's head fit as it was before issue 17: autograd through a bmm."""
    t, _, d = support.shape
    weight = torch.zeros(t, way, d, dtype=support.dtype, requires_grad=True)
    bias = torch.zeros(t, way, dtype=support.dtype, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    for _ in range(steps):
        logits = support @ weight.transpose(1, 2) + bias[:, None, :]
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return weight.detach(), bias.detach()


@pytest.mark.parametrize("tasks", [1, 3])
def test_transfer_heads_equal_the_autograd_fit(tasks):
    learner = create_learner("transfer", {"image_size": 28}, finetune_steps=30)
    gen = torch.Generator().manual_seed(0)
    support = torch.randn(tasks, 40, 64, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 8, (tasks, 40), generator=gen)
    weight, bias = learner._fit_heads(support, labels, 8)
    ref_w, ref_b = reference_heads(support, labels, 8, 30, learner.hparams["finetune_lr"])
    torch.testing.assert_close(weight, ref_w)
    torch.testing.assert_close(bias, ref_b)


@pytest.mark.parametrize(("algo", "steps"),
                         [("maml", 1), ("maml", 3), ("protomaml", 1), ("protomaml", 2)])
@pytest.mark.parametrize("way", [5, 20])
def test_maml_fit_equals_the_full_inner_loop_at_small_way(algo, steps, way, glyph_set):
    learner = _maml(algo, steps)
    assert way <= learner.body_adapt_max_way
    sx, sy, qx = _support_query(glyph_set, way, 2)
    with torch.no_grad():
        new = learner.adapt(sx, sy, way)(qx)
    torch.testing.assert_close(new, reference_adapt(learner, sx, sy, way)(qx),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["maml-omniglot.pt", "fomaml-omniglot.pt",
                                  "protomaml-omniglot.pt"])
def test_bundled_models_fit_as_before_at_20_classes(name, glyph_set):
    learner, _ = ckpt.load_learner(MODELS / name)
    sx, sy, qx = _support_query(glyph_set, 20, 1, seed=3)
    with torch.no_grad():
        new = learner.adapt(sx, sy, 20)(qx)
    ref = reference_adapt(learner, sx, sy, 20)(qx)
    torch.testing.assert_close(new, ref, atol=2e-4, rtol=1e-4)
    assert torch.equal(new.argmax(-1), ref.argmax(-1))


def test_first_step_moves_no_body_parameter_with_maml_shared_row(glyph_set):
    """Why MAML's first step is taken on the head alone: with one shared row every class
    gets the same logit, the loss is log N for any embedding, the body's gradient zero."""
    learner = _maml("maml", 1)
    sx, sy, _ = _support_query(glyph_set, 5, 2)
    body = {k: v.detach() for k, v in learner.backbone.named_parameters()}
    params = learner._init_task_params(body, sx, sy, 5)

    def loss(p):
        return F.cross_entropy(learner._forward(p, sx, None)[0], sy)

    grads = {k: g.detach() for k, g in torch.func.grad(loss)(params).items()}
    assert float(grads["head.weight"].abs().max()) > 1e-3
    for k in body:
        assert float(grads[k].abs().max()) < 1e-6, k


@pytest.mark.parametrize("algo", ["maml", "protomaml"])
def test_above_the_threshold_only_the_head_adapts(algo, glyph_set):
    """The documented large-class-set algorithm: body frozen (support statistics as
    usual), every inner step on the output layer; checked against autograd."""
    learner = _maml(algo, 3)
    learner.body_adapt_max_way = 4
    sx, sy, qx = _support_query(glyph_set, 5, 2)
    with torch.no_grad():
        new = learner.adapt(sx, sy, 5)(qx)
    with torch.enable_grad():
        emb, stats = learner.backbone(sx, return_stats=True)
        emb = emb.detach()
        head = learner._init_head(emb, sy, 5)
        w, b = head["head.weight"].detach(), head["head.bias"].detach()
        lr = float(learner.log_inner_lr.exp()[-1])
        for _ in range(3):
            w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
            gw, gb = torch.autograd.grad(F.cross_entropy(emb @ w.T + b, sy), (w, b))
            w, b = (w - lr * gw).detach(), (b - lr * gb).detach()
        ref = learner.backbone(qx, stats).detach() @ w.T + b
    torch.testing.assert_close(new, ref, atol=1e-4, rtol=1e-4)
    # ... and it is not what the full inner loop computes (the change is real)
    assert not torch.allclose(new, reference_adapt(learner, sx, sy, 5)(qx), atol=1e-3)


@pytest.mark.parametrize("max_way", [0, 50])
def test_cancel_is_polled_on_every_step(max_way, glyph_set):
    learner = _maml("maml", 5)
    learner.body_adapt_max_way = max_way  # 0: all head-only; 50: head, then body and head
    sx, sy, _ = _support_query(glyph_set, 5, 1)
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) >= 4

    with pytest.raises(Cancelled):
        learner.adapt(sx, sy, 5, cancel)
    assert len(polls) == 4


def test_a_class_set_fitted_again_is_remembered_by_content(glyph_set, tmp_path):
    ckpt.save(ckpt.model_payload(create_learner("protonet")), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    calls = []
    adapt = model.learner.adapt
    model.learner.adapt = lambda *a, **k: calls.append(1) or adapt(*a, **k)
    glyphs = [glyph_set.images[i].numpy() for i in range(0, 80, 20)]
    labels = ["a", "b", "c", "d"]
    first = model.fit(glyphs, labels)
    again = model.fit([g.copy() for g in glyphs], list(labels))
    assert len(calls) == 1
    np.testing.assert_array_equal(again.logits(glyphs), first.logits(glyphs))
    changed = [g.copy() for g in glyphs]
    changed[2][5, 5] ^= 1  # one pixel
    model.fit(changed, labels)
    model.fit(glyphs, ["a", "b", "d", "c"])  # same images, other labels
    model.fit(glyphs[::-1], labels[::-1])  # other order: not assumed equal
    assert len(calls) == 4
    for i in range(Model.FITS_KEPT):  # the oldest are forgotten
        model.fit(glyphs, [f"x{i}", "b", "c", "d"])
    model.fit(glyphs, labels)
    assert len(calls) == 4 + Model.FITS_KEPT + 1
