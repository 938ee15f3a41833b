"""Cosine classifier ("Baseline++", Chen et al. 2019; normalised softmax): pre-train a
classifier whose logits are a learned scale times the cosine between the L2-normalised
embedding and each class's normalised weight vector. New classes get the normalised mean
of their examples' normalised embeddings as weights ("imprinting", Qi et al. 2018): no
training per task, so a class set of 13,000 code points is fitted by one embedding pass.

Used for the Nôm lookup: the classifier is trained over the whole vocabulary (font
renderings of every code point plus real crops of the training characters), so an
embedding of a real crop lands near the normalised renderings of its code point.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.data.episodes import Episode
from trainer.learners.base import (
    Cancel,
    Classifier,
    Embedder,
    Learner,
    check_cancel,
    register,
)


def class_directions(emb: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Normalised means of normalised embeddings: emb (..., S, D), labels (..., S) in
    0..way-1 -> (..., N, D), unit rows. Labels, not sample order, pick the rows."""
    unit = F.normalize(emb, dim=-1)
    if emb.dim() == 2:  # one class set, maybe 13,000 classes: no (S, N) one-hot matrix
        sums = unit.new_zeros(way, unit.shape[-1]).index_add_(0, labels, unit)
    else:
        onehot = F.one_hot(labels, way).to(emb.dtype)  # (..., S, N)
        sums = onehot.transpose(-1, -2) @ unit  # (..., N, D)
    return F.normalize(sums, dim=-1)


@register
class Cosine(Learner):
    name = "cosine"
    description = "Cosine classifier (Baseline++): normalised embeddings, classes by their mean"
    batch_kind = "classification"
    bn_mode = "running"
    classes_are_means = True

    def __init__(self, backbone: dict[str, Any] | None = None, *, num_classes: int = 1200,
                 scale: float = 10.0) -> None:
        super().__init__(backbone, num_classes=num_classes, scale=scale)
        self.weight = nn.Parameter(torch.randn(num_classes, self.backbone.embed_dim) * 0.01)
        # Learned temperature: cosines lie in [-1, 1], too flat a softmax without it.
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def scores(self, emb: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """Logits (..., M, N): scale x cosine of embeddings (..., M, D) to unit rows (..., N, D)."""
        return self.log_scale.exp() * F.normalize(emb, dim=-1) @ directions.transpose(-1, -2)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch  # (B, 1, H, W), (B,)
        logits = self.scores(self.backbone(x), F.normalize(self.weight, dim=-1))
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        b, nk = episode.batch, episode.support_x.shape[1]
        x = torch.cat([episode.support_x.flatten(0, 1), episode.query_x.flatten(0, 1)])
        emb = self.backbone(x)
        support, query = emb[: b * nk].view(b, nk, -1), emb[b * nk:].view(b, -1, emb.shape[-1])
        return self.scores(query, class_directions(support, episode.support_y, episode.way))

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None, chunk: int = 2048) -> Classifier:
        # Embedded in chunks (a vocabulary's renderings are tens of thousands of images),
        # polling cancel between them.
        parts = []
        for start in range(0, support_x.shape[0], chunk):
            check_cancel(cancel)
            parts.append(self.backbone(support_x[start:start + chunk]))
        return self.adapt_embedded(torch.cat(parts), support_y, way)

    def adapt_embedded(self, support_emb: torch.Tensor, support_y: torch.Tensor, way: int,
                       embed: Embedder | None = None) -> Classifier:
        directions = class_directions(support_emb, support_y, way)  # (N, D)
        embed = embed or self.backbone

        def classify(x: torch.Tensor) -> torch.Tensor:
            return self.scores(embed(x), directions)

        return classify
