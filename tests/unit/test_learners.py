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
    # The rows' squared norms kept by the caller (the lookup's prototypes): same answer.
    kept = sq_distances(torch.tensor([[1.0, 1.0]]), protos, torch.tensor([221.0, 1.0]))
    torch.testing.assert_close(kept, d)


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


def _reference_meta_loss(learner, ep, *, first_order: bool, steps: int) -> torch.Tensor:
    """MAML / Proto-MAML's meta-loss written the plain way, as an independent reference: a
    Python loop over tasks, ``torch.autograd.grad(create_graph=True)`` in the inner loop
    (``create_graph=False`` for first order, which drops the second-derivative terms), the
    Proto-MAML head built from class means computed class by class. Shares with the
    learner only the backbone's forward (with its support-statistics batch norm)."""
    from torch.func import functional_call

    body = dict(learner.backbone.named_parameters())
    # the learner keeps its rate as a log (float32 at creation): use the value it holds
    lr = learner.log_inner_lr.exp()[0]

    def forward(params, x, stats=None):
        net = {k: v for k, v in params.items() if not k.startswith("head.")}
        emb, used = functional_call(learner.backbone, net, (x, stats), {"return_stats": True})
        return emb @ params["head.weight"].T + params["head.bias"], used

    losses = []
    for t in range(ep.batch):
        sx, sy, qx, qy = ep.support_x[t], ep.support_y[t], ep.query_x[t], ep.query_y[t]
        if learner.name == "protomaml":
            emb, _ = functional_call(learner.backbone, body, (sx, None), {"return_stats": True})
            c = torch.stack([emb[sy == k].mean(0) for k in range(ep.way)])  # (N, D)
            head = {"head.weight": 2 * c, "head.bias": -(c * c).sum(-1)}
        else:
            head = {"head.weight": learner.head_weight.expand(ep.way, -1),
                    "head.bias": learner.head_bias.expand(ep.way)}
        # Each task parameter is its own variable in the inner loop (the clones are new
        # graph nodes): the inner gradient of a body weight is its direct one, not also the
        # path through the prototypes it made; the outer gradient takes every path.
        params = {**{k: v.clone() for k, v in body.items()}, **head}
        for _ in range(steps):
            loss = F.cross_entropy(forward(params, sx)[0], sy)
            names = list(params)
            grads = torch.autograd.grad(loss, [params[k] for k in names],
                                        create_graph=not first_order)
            params = {k: params[k] - lr * g for k, g in zip(names, grads, strict=True)}
        _, stats = forward(params, sx)
        losses.append(F.cross_entropy(forward(params, qx, stats)[0], qy))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("algo", ["maml", "protomaml"])
def test_meta_gradient_equals_an_explicit_per_task_reference(algo, first_order, glyph_set):
    """The vmapped torch.func meta-gradient equals the plain autograd one, in float64 so
    that 1e-9 separates a right gradient from a wrong one: dropping the second-order terms
    (or detaching Proto-MAML's prototypes) changes it by far more."""
    learner = _learner(algo, first_order=first_order, inner_steps=2,
                       inner_lr=0.4 if algo == "maml" else 0.1).double().train()
    ep = _double(EpisodeSampler(glyph_set, 5, 1, 1, 2,
                                generator=torch.Generator().manual_seed(0)).sample())
    params = [p for p in learner.parameters() if p.requires_grad]
    loss, _ = learner.loss(ep)
    got = torch.autograd.grad(loss, params)
    ref_loss = _reference_meta_loss(learner, ep, first_order=first_order, steps=2)
    want = torch.autograd.grad(ref_loss, params)
    torch.testing.assert_close(loss, ref_loss, atol=1e-10, rtol=1e-10)
    for (name, _), g, w in zip([(n, p) for n, p in learner.named_parameters()
                                if p.requires_grad], got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=1e-7, msg=f"{name}")
    # the check has teeth: the other order's gradient is far from this reference
    other = _reference_meta_loss(learner, ep, first_order=not first_order, steps=2)
    far = torch.autograd.grad(other, params)
    assert max(float((a - b).abs().max()) for a, b in zip(far, want, strict=True)) > 1e-6


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_one_step_maml_meta_gradient_equals_the_reference(first_order, glyph_set):
    """MAML's first inner step runs on the head alone (every row equal: the body's gradient
    and its derivatives are zero there), and with one step the support pass is shared with
    the statistics: loss and meta-gradient still equal the plain reference's."""
    learner = _learner("maml", first_order=first_order, inner_steps=1).double().train()
    with torch.no_grad():  # a shared row away from zero, as after meta-training
        learner.head_weight.normal_(0, 0.3)
        learner.head_bias.fill_(0.2)
    ep = _double(EpisodeSampler(glyph_set, 5, 1, 2, 2,
                                generator=torch.Generator().manual_seed(1)).sample())
    params = [p for p in learner.parameters() if p.requires_grad]
    loss, _ = learner.loss(ep)
    ref = _reference_meta_loss(learner, ep, first_order=first_order, steps=1)
    torch.testing.assert_close(loss, ref, atol=1e-10, rtol=1e-10)
    for g, w in zip(torch.autograd.grad(loss, params), torch.autograd.grad(ref, params),
                    strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=1e-7)


def test_protomaml_meta_gradient_reaches_the_body_through_the_prototypes(glyph_set):
    """With zero inner steps Proto-MAML is ProtoNet with support-statistics batch norm: its
    whole meta-gradient flows through the head's initialisation (w = 2c, b = -|c|^2), so
    detached prototypes would give a zero gradient to the body from the support path."""
    learner = _learner("protomaml", inner_steps=0).double().train()
    ep = _double(EpisodeSampler(glyph_set, 5, 1, 3, 2,
                                generator=torch.Generator().manual_seed(3)).sample())
    loss, _ = learner.loss(ep)
    got = torch.autograd.grad(loss, list(learner.backbone.parameters()))
    ref = _reference_meta_loss(learner, ep, first_order=True, steps=0)
    want = torch.autograd.grad(ref, list(learner.backbone.parameters()))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-9, rtol=1e-7)


def _double(ep):
    return type(ep)(ep.support_x.double(), ep.support_y, ep.query_x.double(), ep.query_y,
                    ep.way)


@pytest.mark.parametrize("algo", ALGOS)
def test_logits_follow_a_permutation_of_the_labels(algo, glyph_set):
    """Relabelling the classes of a task permutes the logit columns the same way and
    changes nothing else: no learner may tie anything to a label's position."""
    learner = _learner(algo).eval()
    ep = EpisodeSampler(glyph_set, 5, 2, 3, 2, generator=torch.Generator().manual_seed(4)
                        ).sample()
    perm = torch.tensor([3, 0, 4, 1, 2])  # class k is called perm[k]
    relabelled = type(ep)(ep.support_x, perm[ep.support_y], ep.query_x, perm[ep.query_y], 5)
    with torch.no_grad():
        a, b = learner.episode_logits(ep), learner.episode_logits(relabelled)
        single = learner.adapt(relabelled.support_x[0], relabelled.support_y[0], 5)(
            ep.query_x[0])
    torch.testing.assert_close(b[..., perm], a, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(single[..., perm], a[0], atol=2e-4, rtol=1e-4)
    assert not torch.allclose(a, a[..., perm])  # the check could see a wrong column


@pytest.mark.parametrize("algo", ALGOS)
def test_a_query_answer_does_not_depend_on_the_other_queries(algo, glyph_set):
    """No query leaks into adaptation or normalisation: replacing every other query of a
    task with noise leaves a query's logits unchanged, in the batched evaluation path."""
    learner = _learner(algo).eval()
    ep = EpisodeSampler(glyph_set, 5, 1, 4, 2, generator=torch.Generator().manual_seed(5)
                        ).sample()
    noisy_q = ep.query_x.clone()
    noisy_q[:, 1:] = torch.rand(noisy_q[:, 1:].shape, generator=torch.Generator().manual_seed(0),
                                dtype=noisy_q.dtype)
    noisy = type(ep)(ep.support_x, ep.support_y, noisy_q, ep.query_y, 5)
    with torch.no_grad():
        a, b = learner.episode_logits(ep), learner.episode_logits(noisy)
    torch.testing.assert_close(b[:, 0], a[:, 0], atol=2e-5, rtol=1e-5)
    assert not torch.allclose(b[:, 1:], a[:, 1:])  # the noise did reach the model


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


@pytest.mark.parametrize("algo", ["maml", "protomaml"])
def test_task_chunks_give_the_same_loss_and_meta_gradient(algo, glyph_set):
    """One vmap over all tasks (a GPU's default), chunks of two, and one task at a time with
    channels_last maps (a CPU's default) compute the same second-order loss and gradient."""
    learner = _learner(algo).double().train()
    ep = _double(EpisodeSampler(glyph_set, 5, 1, 3, 4,
                                generator=torch.Generator().manual_seed(0)).sample())
    params = [p for p in learner.parameters() if p.requires_grad]
    got = []
    for chunk in (4, 2, 1):
        learner.task_chunk = chunk
        loss, _ = learner.loss(ep)
        got.append((loss, torch.autograd.grad(loss, params)))
    for loss, grads in got[1:]:
        torch.testing.assert_close(loss, got[0][0], atol=1e-12, rtol=1e-12)
        for g, w in zip(grads, got[0][1], strict=True):
            torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8)


def test_channels_last_gives_the_same_loss_and_gradient(glyph_set):
    """The CPU's NHWC training forward is a speed switch: float64 agrees to rounding."""
    learner = _learner("protonet").double().train()
    ep = _double(_batch(learner, glyph_set))
    got = []
    for nhwc in (False, True):
        learner.backbone.channels_last = nhwc
        loss, _ = learner.loss(ep)
        got.append((loss, torch.autograd.grad(loss, list(learner.parameters()))))
    torch.testing.assert_close(got[1][0], got[0][0], atol=1e-12, rtol=1e-12)
    for g, w in zip(got[1][1], got[0][1], strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8)


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


def _plain_support_forward(net, x, stats=None):
    """Conv4's support-statistics forward in the textbook order, as an independent
    reference: convolution, batch norm with the support set's (or the given) statistics,
    ReLU, 2 x 2 max-pooling (not after an unpooled last block)."""
    used = []
    last = len(net.convs) - 1
    for i, (conv, norm) in enumerate(zip(net.convs, net.norms, strict=True)):
        y = F.conv2d(x, conv.weight, conv.bias, padding=1)
        if stats is None:
            mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False)
        else:
            mean, var = stats[i]
        used.append((mean, var))
        y = ((y - mean[:, None, None]) / torch.sqrt(var[:, None, None] + norm.eps)
             * norm.weight[:, None, None] + norm.bias[:, None, None])
        x = F.relu(y) if i == last and not net.last_pool else F.max_pool2d(F.relu(y), 2)
    return x.flatten(1), used


@pytest.mark.parametrize("last_pool", [True, False], ids=["pooled", "unpooled-last"])
@pytest.mark.parametrize("nhwc", [False, True], ids=["nchw", "channels-last"])
def test_support_forward_equals_the_textbook_block_order(nhwc, last_pool):
    """The training forward pools before its batch norm (the convolution sign-folded so
    that the scale is positive) and, in channels_last, feeds the first convolution a zero
    second channel: embeddings, statistics and every gradient equal the textbook order's in
    float64, with some negative batch-norm scales (where pooling first would be wrong
    without the sign) and an odd map size (28 -> 14 -> 7 -> 3)."""
    from trainer.models.conv4 import Conv4

    torch.manual_seed(0)
    net = Conv4(bn="support", last_pool=last_pool).double().train()
    assert net.embed_dim == (64 if last_pool else 576)
    net.channels_last = nhwc
    with torch.no_grad():
        for norm in net.norms:
            norm.weight.copy_(torch.randn_like(norm.weight))  # about half negative
            norm.bias.normal_(0, 0.5)
    assert any(bool((n.weight < 0).any()) for n in net.norms)
    sx, qx = torch.rand(5, 1, 28, 28, dtype=torch.float64), torch.rand(7, 1, 28, 28,
                                                                         dtype=torch.float64)
    params = list(net.parameters())

    def run(forward):
        s, stats = forward(sx)
        q, _ = forward(qx, stats)
        # a loss that reaches every output and both statistics
        loss = (s.sin().sum() + (q * q).sum()
                + sum((m * m).sum() + v.sum() for m, v in stats))
        return s, q, stats, torch.autograd.grad(loss, params)

    got = run(net.forward_with_stats)
    want = run(lambda x, st=None: _plain_support_forward(net, x, st))
    assert got[0].shape == (5, net.embed_dim)
    torch.testing.assert_close(got[0], want[0], atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(got[1], want[1], atol=1e-12, rtol=1e-10)
    for (m, v), (wm, wv) in zip(got[2], want[2], strict=True):
        torch.testing.assert_close(m, wm, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(v, wv, atol=1e-12, rtol=1e-10)
    for (name, _), g, w in zip(net.named_parameters(), got[3], want[3], strict=True):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8, msg=name)


def test_vmapped_support_forward_without_autograd_equals_the_textbook_order():
    """The inference path a vmap over tasks takes (a GPU fit's; not the CPU's chunked one)
    pools before its batch norm too: per task it equals the textbook order, negative scales
    included."""
    from torch.func import vmap

    from trainer.models.conv4 import Conv4

    torch.manual_seed(1)
    net = Conv4(bn="support").double().eval()
    with torch.no_grad():
        for norm in net.norms:
            norm.weight.copy_(torch.randn_like(norm.weight))
            norm.bias.normal_(0, 0.5)
    xs = torch.rand(3, 5, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        got = vmap(lambda x: net.forward_with_stats(x)[0])(xs)
        for t in range(3):
            torch.testing.assert_close(got[t], _plain_support_forward(net, xs[t])[0],
                                       atol=1e-12, rtol=1e-10)
