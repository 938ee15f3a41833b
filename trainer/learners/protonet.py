"""Prototypical Networks (Snell et al. 2017): classify by squared Euclidean distance to the
mean embedding of each class's support examples."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from trainer.data.episodes import Episode
from trainer.learners.base import (
    Cancel,
    Classifier,
    Embedder,
    Learner,
    check_cancel,
    episode_accuracy,
    register,
)
from trainer.models.conv4 import prototypes, sq_distances


@register
class ProtoNet(Learner):
    name = "protonet"
    description = "Prototypical Networks: nearest class mean in embedding space"
    bn_mode = "running"
    classes_are_means = True

    def __init__(self, backbone: dict[str, Any] | None = None) -> None:
        super().__init__(backbone)  # no hyperparameters of its own: others are an error

    def _embed_episode(self, ep: Episode) -> tuple[torch.Tensor, torch.Tensor]:
        """One conv pass over every image of every task: support (B, NK, D), query (B, NQ, D)."""
        b, nk, nq = ep.batch, ep.support_x.shape[1], ep.query_x.shape[1]
        x = torch.cat([ep.support_x.flatten(0, 1), ep.query_x.flatten(0, 1)])
        emb = self.backbone(x)
        return emb[: b * nk].view(b, nk, -1), emb[b * nk:].view(b, nq, -1)

    def _logits(self, ep: Episode) -> torch.Tensor:
        support, query = self._embed_episode(ep)
        protos = prototypes(support, ep.support_y, ep.way)  # (B, N, D)
        return -sq_distances(query, protos)  # (B, NQ, N)

    def loss(self, batch: Episode) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self._logits(batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        return loss, episode_accuracy(logits.detach(), batch.query_y).mean()

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        return self._logits(episode)

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None) -> Classifier:
        check_cancel(cancel)
        return self.adapt_embedded(self.backbone(support_x), support_y, way)

    def adapt_embedded(self, support_emb: torch.Tensor, support_y: torch.Tensor, way: int,
                       embed: Embedder | None = None) -> Classifier:
        protos = prototypes(support_emb, support_y, way)  # (N, D)
        protos_sq = (protos * protos).sum(-1)  # (N,), once, not at every prediction
        embed = embed or self.backbone

        def classify(x: torch.Tensor) -> torch.Tensor:
            return -sq_distances(embed(x), protos, protos_sq)

        return classify
