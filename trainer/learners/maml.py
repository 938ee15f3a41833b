"""MAML (Finn et al. 2017), second order by default, first order as a flag.

The inner loop is functional: ``torch.func.grad`` over a dict of parameters, and a batch
of tasks runs as one ``torch.func.vmap`` call instead of a Python loop per task. The outer
(meta) gradient flows through the inner updates by ordinary autograd; ``first_order``
detaches the inner gradients, which drops the second-derivative terms (FOMAML).

The output layer starts from ONE meta-learned row (weight (D,), bias ()) copied to every
class of a task (Unicorn-MAML, Ye & Chao 2022). MAML's usual N rows would tie each row to
an arbitrary label position and fix the way at training time; one shared row makes the
learner invariant to label order and lets the GUI adapt to any number of classes.

Optionally the inner learning rate is meta-learned, one per parameter tensor
(``learn_inner_lr``, as in MAML++/Meta-SGD at tensor granularity).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

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
    def _init_task_params(self, body: Params, sx: torch.Tensor, sy: torch.Tensor, way: int
                          ) -> Params:
        """Parameters a task starts from: body + an N-row head (here: the shared row)."""
        del sx, sy
        return {**body, "head.weight": self.head_weight.expand(way, -1),
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
                      steps: int, first_order: bool, cancel: Cancel | None = None) -> Params:
        params = self._init_task_params(body, sx, sy, way)
        lrs = dict(zip(self._lr_names, self.log_inner_lr.exp(), strict=True))

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
        params = self._adapt_params(body, sx, sy, way, steps, first_order)
        _, stats = self._forward(params, sx, None)  # support statistics of the adapted net
        logits, _ = self._forward(params, qx, stats)
        return logits

    # -- the Learner interface --------------------------------------------------------------
    def _batched_logits(self, ep: Episode, steps: int, first_order: bool) -> torch.Tensor:
        body = dict(self.backbone.named_parameters())

        def task(sx: torch.Tensor, sy: torch.Tensor, qx: torch.Tensor) -> torch.Tensor:
            return self._task_logits(body, sx, sy, qx, ep.way, steps, first_order)

        return vmap(task)(ep.support_x, ep.support_y, ep.query_x)  # (B, NQ, N)

    def loss(self, batch: Episode) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self._batched_logits(batch, self.hparams["inner_steps"],
                                      self.hparams["first_order"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        return loss, episode_accuracy(logits.detach(), batch.query_y).mean()

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        return self._batched_logits(episode, self.hparams["eval_inner_steps"], True).detach()

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None) -> Classifier:
        body = {k: v.detach() for k, v in self.backbone.named_parameters()}
        params = self._adapt_params(body, support_x, support_y, way,
                                    self.hparams["eval_inner_steps"], True, cancel)
        params = {k: v.detach() for k, v in params.items()}
        with torch.no_grad():
            _, stats = self._forward(params, support_x, None)

        def classify(x: torch.Tensor) -> torch.Tensor:
            return self._forward(params, x, stats)[0]

        return classify
