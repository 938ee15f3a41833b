"""MAML (Finn et al. 2017), second order by default, first order as a flag.

The inner loop is functional: ``torch.func.grad`` over a dict of parameters, and on a GPU
a batch of tasks runs as one ``torch.func.vmap`` call instead of a Python loop per task (on
a CPU one task at a time ran faster: :attr:`MAML.task_chunk`). The outer (meta) gradient
flows through the inner updates by ordinary autograd; ``first_order`` detaches the inner
gradients, which drops the second-derivative terms (FOMAML). The first inner step needs no
second support pass: with MAML's shared head row it runs on the head alone (the body's
gradient is zero there), with Proto-MAML's prototype head the support pass that made the
prototypes gives the body's gradient by its vector-Jacobian product.

The output layer starts from ONE meta-learned row (weight (D,), bias ()) copied to every
class of a task (Unicorn-MAML, Ye & Chao 2022). MAML's usual N rows would tie each row to
an arbitrary label position and fix the way at training time; one shared row makes the
learner invariant to label order and lets the GUI adapt to any number of classes.

Optionally the inner learning rate is meta-learned, one per parameter tensor
(``learn_inner_lr``, as in MAML++/Meta-SGD at tensor granularity).

Fitting a class set (:meth:`MAML.adapt`, the app's fit) does the work of a step once where
it can:

* With every head row equal (MAML's shared row), all classes get the same logit, the
  support loss is log N whatever the embedding, and the first step's gradient on the body
  is exactly zero: that step is computed on the head alone, from the support embedding,
  with the same result (to float rounding) and no backward pass through the convolutions.
  A one-step MAML is then one forward pass over the support set.
* ABOVE :attr:`MAML.body_adapt_max_way` CLASSES THE BODY DOES NOT ADAPT: every inner step
  is a step on the output layer only, on embeddings computed once (body frozen, support
  statistics as usual). This is a different algorithm from MAML's, chosen because a step
  through the body on 2,000 support images cost about 3 s on the 2-core CPU (first-order
  MAML's 5 steps: 17.9 s for 1,000 classes, issue 17). Measured on the 423 Omniglot test
  classes all at once, 2 support images each (``nomgui-train evaluate --all-classes
  --train-per-class 2``), the head-only fit is as accurate as the full one: bundled
  first-order MAML 29.15 +- 1.16% (full: 28.81 +- 1.15%), Proto-MAML 84.77 +- 0.92%
  (84.72 +- 0.92%); a one-step MAML is the same either way (72.12%). The "none of these"
  threshold keeps as many right answers (94.1% vs 93.7%; 99.7% both). The bound, 50, lies
  above the 5- and 20-way tasks the models are trained, evaluated and calibrated on, so
  those are computed exactly as before.
  Episodic training and evaluation (:meth:`MAML.loss`, :meth:`MAML.episode_logits`) are
  unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vjp, vmap

from trainer.data.episodes import Episode
from trainer.learners.base import (
    Cancel,
    Classifier,
    Learner,
    check_cancel,
    episode_accuracy,
    register,
)
from trainer.models.conv4 import BNStats

Params = dict[str, torch.Tensor]


@register
class MAML(Learner):
    name = "maml"
    description = "MAML: meta-learned initialisation, adapted by gradient steps on the support set"
    bn_mode = "support"
    ddp_compatible = False  # torch.func inner loop: gradients are all-reduced explicitly
    # adapt(): more classes than this and only the output layer adapts (module docstring).
    body_adapt_max_way: int = 50
    # Tasks per vmap call in training and episodic evaluation; None: all of them on a GPU,
    # one at a time (a Python loop, channels_last maps) on a CPU, where 16 tasks' grouped
    # convolutions over GBs of activations ran slower than small per-task passes that stay
    # in cache (benchmarks/peers.py). The same loss either way, to float rounding.
    task_chunk: int | None = None
    # Every class starts from the same head row, so the first step's body gradient is zero.
    _shared_head_row: bool = True

    def __init__(self, backbone: dict[str, Any] | None = None, *, inner_steps: int = 1,
                 inner_lr: float = 0.4, eval_inner_steps: int | None = None,
                 first_order: bool = False,
                 learn_inner_lr: bool = False) -> None:
        # Adaptation at test time takes as many steps as training did unless told otherwise:
        # an inner LR meta-learned for one step overshoots when applied three times. Measured
        # on the 300-step model of scripts/short_runs.sh, `nomgui-train evaluate --way 5
        # --shot 5 --episodes 1000 [--eval-inner-steps 1]`: 96.87% with 1 step, 65.62% with 3.
        if eval_inner_steps is None:
            eval_inner_steps = inner_steps
        super().__init__(backbone, inner_steps=inner_steps, inner_lr=inner_lr,
                         eval_inner_steps=eval_inner_steps, first_order=first_order,
                         learn_inner_lr=learn_inner_lr)
        d = self.backbone.embed_dim
        self.head_weight = nn.Parameter(torch.zeros(d))
        self.head_bias = nn.Parameter(torch.zeros(()))
        names = [n for n, _ in self.backbone.named_parameters()] + ["head.weight", "head.bias"]
        log_lr = torch.full((len(names),), math.log(inner_lr))
        # Stored as a log so a learned rate stays positive; a buffer when not learned.
        if learn_inner_lr:
            self.log_inner_lr = nn.Parameter(log_lr)
        else:
            self.register_buffer("log_inner_lr", log_lr)
        self._lr_names = names

    # -- one task ---------------------------------------------------------------------------
    def _inner_lrs(self) -> dict[str, torch.Tensor]:
        """The inner-loop learning rate of each parameter, by name (scalars)."""
        return dict(zip(self._lr_names, self.log_inner_lr.exp(), strict=True))

    def _init_task_params(self, body: Params, sx: torch.Tensor, sy: torch.Tensor, way: int
                          ) -> Params:
        """Parameters a task starts from: body + an N-row head (here: the shared row)."""
        del sx, sy
        return {**body, "head.weight": self.head_weight.expand(way, -1),
                "head.bias": self.head_bias.expand(way)}

    def _init_head(self, emb: torch.Tensor, sy: torch.Tensor, way: int) -> Params:
        """The output layer a task starts from, given its support embedding (S, D)."""
        del emb, sy
        return {"head.weight": self.head_weight.expand(way, -1),
                "head.bias": self.head_bias.expand(way)}

    def _forward(self, params: Params, x: torch.Tensor, stats: BNStats | None
                 ) -> tuple[torch.Tensor, BNStats]:
        """Logits (M, N) of x (M, 1, H, W) under ``params``, and the BN statistics used."""
        emb, used = self._embed(params, x, stats)
        return emb @ params["head.weight"].T + params["head.bias"], used

    def _embed(self, params: Params, x: torch.Tensor, stats: BNStats | None = None
               ) -> tuple[torch.Tensor, BNStats]:
        """Embedding (M, D) under the body part of ``params``; BN stats as in Conv4."""
        body = {k: v for k, v in params.items() if not k.startswith("head.")}
        return functional_call(self.backbone, body, (x, stats), {"return_stats": True})

    def _adapt_params(self, body: Params, sx: torch.Tensor, sy: torch.Tensor, way: int,
                      steps: int, first_order: bool, cancel: Cancel | None = None,
                      params: Params | None = None) -> Params:
        """``steps`` inner steps from ``params`` (default: the task's initial parameters)."""
        if params is None:
            params = self._init_task_params(body, sx, sy, way)
        lrs = self._inner_lrs()

        def support_loss(p: Params) -> torch.Tensor:
            logits, _ = self._forward(p, sx, None)
            return F.cross_entropy(logits, sy)

        for _ in range(steps):
            check_cancel(cancel)
            grads = grad(support_loss)(params)
            if first_order:
                grads = {k: g.detach() for k, g in grads.items()}
            params = {k: p - lrs[k] * grads[k] for k, p in params.items()}
        return params

    def _task_logits(self, body: Params, sx: torch.Tensor, sy: torch.Tensor,
                     qx: torch.Tensor, way: int, steps: int, first_order: bool) -> torch.Tensor:
        if self._shared_head_row and steps >= 1:
            # Every head row equal: the support loss is log N for any body, so the first
            # step's body gradient is zero, and so are its derivatives (the second-order
            # terms). That step runs on the head alone, from one support pass that also
            # gives the statistics when no body step follows: the same loss and
            # meta-gradient to float rounding, without a pass back through the convolutions.
            emb, stats = self._embed(body, sx)  # (S, D)
            lrs = self._inner_lrs()

            def head_loss(head: Params) -> torch.Tensor:
                return F.cross_entropy(emb @ head["head.weight"].T + head["head.bias"], sy)

            head = self._init_head(emb, sy, way)
            grads = grad(head_loss)(head)
            if first_order:
                grads = {k: g.detach() for k, g in grads.items()}
            params = {**body, **{k: h - lrs[k] * grads[k] for k, h in head.items()}}
            if steps > 1:
                params = self._adapt_params(body, sx, sy, way, steps - 1, first_order,
                                            params=params)
                _, stats = self._forward(params, sx, None)
        elif steps >= 1:
            # The head comes from the support embedding (Proto-MAML): one support pass gives
            # it and, by its vector-Jacobian product, the first step's body gradient (the
            # direct one, the head held fixed, as torch.func.grad over body and head gives).
            emb, embed_vjp = vjp(lambda b: self._embed(b, sx)[0], body)  # (S, D)
            head = self._init_head(emb, sy, way)
            lrs = self._inner_lrs()

            def head_loss(h: Params, e: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(e @ h["head.weight"].T + h["head.bias"], sy)

            g_head, g_emb = grad(head_loss, argnums=(0, 1))(head, emb)
            grads = {**embed_vjp(g_emb)[0], **g_head}
            if first_order:
                grads = {k: g.detach() for k, g in grads.items()}
            params = {k: p - lrs[k] * grads[k] for k, p in {**body, **head}.items()}
            if steps > 1:
                params = self._adapt_params(body, sx, sy, way, steps - 1, first_order,
                                            params=params)
            _, stats = self._forward(params, sx, None)  # support statistics of the adapted net
        else:
            params = self._adapt_params(body, sx, sy, way, steps, first_order)
            _, stats = self._forward(params, sx, None)
        logits, _ = self._forward(params, qx, stats)
        return logits

    # -- the Learner interface --------------------------------------------------------------
    def _batched_logits(self, ep: Episode, steps: int, first_order: bool) -> torch.Tensor:
        body = dict(self.backbone.named_parameters())

        def task(sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
            return self._task_logits(body, sx, sy, qx, ep.way, steps, first_order)

        chunk = self.task_chunk or (1 if ep.support_x.device.type == "cpu" else ep.batch)
        if chunk >= ep.batch:
            return vmap(task)(ep.support_x, ep.support_y, ep.query_x)  # (B, NQ, N)
        if chunk == 1:
            return torch.stack([task(ep.support_x[t], ep.support_y[t], ep.query_x[t])
                                for t in range(ep.batch)])
        return torch.cat([vmap(task)(ep.support_x[i:i + chunk], ep.support_y[i:i + chunk],
                                     ep.query_x[i:i + chunk])
                          for i in range(0, ep.batch, chunk)])

    def loss(self, batch: Episode) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self._batched_logits(batch, self.hparams["inner_steps"],
                                      self.hparams["first_order"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        return loss, episode_accuracy(logits.detach(), batch.query_y).mean()

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        return self._batched_logits(episode, self.hparams["eval_inner_steps"], True).detach()

    def _head_step(self, emb: torch.Tensor, sy: torch.Tensor, head: Params,
                   lrs: dict[str, torch.Tensor]) -> Params:
        """One inner step on the output layer alone, the body frozen: emb (S, D) is the
        support embedding. The gradient of the mean cross-entropy is written out:
        d loss / d logits = (softmax - onehot) / S."""
        w, b = head["head.weight"], head["head.bias"]  # (N, D), (N,)
        g = torch.addmm(b, emb, w.T).softmax(-1)  # (S, N)
        g[torch.arange(len(sy), device=sy.device), sy] -= 1.0
        g /= len(sy)
        return {"head.weight": w - lrs["head.weight"] * (g.T @ emb),
                "head.bias": b - lrs["head.bias"] * g.sum(0)}

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None) -> Classifier:
        """First-order adaptation (no outer gradient). Head-only steps where the body's
        gradient is zero, and every step above :attr:`body_adapt_max_way` classes (see the
        module docstring); the rest through body and head as in training."""
        steps = self.hparams["eval_inner_steps"]
        body = {k: v.detach() for k, v in self.backbone.named_parameters()}
        head_steps = steps if way > self.body_adapt_max_way else int(self._shared_head_row)
        head_steps = min(head_steps, steps)
        with torch.no_grad():
            lrs = self._inner_lrs()
            emb, stats = self._embed(body, support_x)  # (S, D), support statistics
            head = self._init_head(emb, support_y, way)
            for _ in range(head_steps):
                check_cancel(cancel)
                head = self._head_step(emb, support_y, head, lrs)
        params = {**body, **head}
        if head_steps < steps:  # the body adapts: statistics of the adapted net
            params = self._adapt_params(body, support_x, support_y, way, steps - head_steps,
                                        True, cancel, params)
            params = {k: v.detach() for k, v in params.items()}
            with torch.no_grad():
                _, stats = self._forward(params, support_x, None)

        def classify(x: torch.Tensor) -> torch.Tensor:
            return self._forward(params, x, stats)[0]

        return classify
