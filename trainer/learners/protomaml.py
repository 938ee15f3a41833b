"""Proto-MAML (Triantafillou et al. 2020): MAML whose output layer starts from the
prototypes of the task's support set.

With prototype c_k, -|x - c_k|^2 = 2 c_k.x - |c_k|^2 - |x|^2, and |x|^2 is the same for
every class, so a linear layer with w_k = 2 c_k and b_k = -|c_k|^2 reproduces ProtoNet's
classifier exactly; MAML's inner loop then fine-tunes body and head from there. The
prototypes are computed with the body's parameters, so the meta-gradient reaches the body
through the head's initialisation too, also in the first-order variant.
"""

from __future__ import annotations

import torch

from trainer.learners.base import register
from trainer.learners.maml import MAML, Params
from trainer.models.conv4 import prototypes


@register
class ProtoMAML(MAML):
    name = "protomaml"
    description = "Proto-MAML: MAML whose output layer starts from the class prototypes"

    def __init__(self, backbone: dict | None = None, *, inner_steps: int = 1,
                 inner_lr: float = 0.1, eval_inner_steps: int | None = None,
                 first_order: bool = False,
                 learn_inner_lr: bool = False) -> None:
        super().__init__(backbone, inner_steps=inner_steps, inner_lr=inner_lr,
                         eval_inner_steps=eval_inner_steps, first_order=first_order,
                         learn_inner_lr=learn_inner_lr)
        # The head comes from prototypes; the shared row of MAML stays unused and frozen.
        self.head_weight.requires_grad_(False)
        self.head_bias.requires_grad_(False)

    _shared_head_row = False  # one row per class: the body's gradient is not zero

    def _init_task_params(self, body: Params, sx: torch.Tensor, sy: torch.Tensor, way: int
                          ) -> Params:
        emb, _ = self._embed(body, sx)
        return {**body, **self._init_head(emb, sy, way)}

    def _init_head(self, emb: torch.Tensor, sy: torch.Tensor, way: int) -> Params:
        c = prototypes(emb, sy, way)  # (N, D)
        return {"head.weight": 2 * c, "head.bias": -(c * c).sum(-1)}
