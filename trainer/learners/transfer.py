"""Transfer learning baseline (Chen et al. 2019, "Baseline"): pre-train a softmax classifier
over many classes, then, for a new task, train a fresh linear head on the support set's
embeddings (the backbone frozen, or fine-tuned too with ``finetune_backbone``)."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.data.episodes import Episode
from trainer.learners.base import Cancel, Classifier, Learner, check_cancel, register


@register
class Transfer(Learner):
    name = "transfer"
    description = "Transfer learning: pre-trained classifier, new head fine-tuned per task"
    batch_kind = "classification"
    bn_mode = "running"

    def __init__(self, backbone: dict[str, Any] | None = None, *, num_classes: int = 1200,
                 finetune_steps: int = 100, finetune_lr: float = 0.01,
                 finetune_backbone: bool = False) -> None:
        super().__init__(backbone, num_classes=num_classes, finetune_steps=finetune_steps,
                         finetune_lr=finetune_lr, finetune_backbone=finetune_backbone)
        self.classifier = nn.Linear(self.backbone.embed_dim, num_classes)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch  # (B, 1, H, W), (B,)
        logits = self.classifier(self.backbone(x))
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    def _fit_heads(self, support: torch.Tensor, labels: torch.Tensor, way: int,
                   cancel: Cancel | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Train T independent linear heads at once on frozen features.

        support (T, S, D), labels (T, S) -> weight (T, N, D), bias (T, N). The loss is the
        cross-entropy summed over each task's examples; Adam is element-wise, so the tasks
        do not interact. Its gradient is written out (d loss / d logits = softmax - onehot),
        which is what autograd computed, without the graph: at 1,000 classes these steps
        were most of a fit.
        """
        t, s, d = support.shape
        weight = torch.zeros(t, way, d, device=support.device, dtype=support.dtype)
        bias = torch.zeros(t, way, device=support.device, dtype=support.dtype)
        opt = torch.optim.Adam([weight, bias], lr=self.hparams["finetune_lr"])
        task = torch.arange(t, device=support.device)[:, None]
        row = torch.arange(s, device=support.device)[None, :]
        # [features, 1]: one product gives both gradients, every class's sums in the same
        # order whatever its position (Adam turns the rounding left of a zero gradient into
        # a full step, so a relabelled task must round alike; a separate sum over S did not).
        ones = support.new_ones(t, s, 1)
        augmented = torch.cat([support, ones], -1)  # (T, S, D + 1)
        with torch.no_grad():
            for _ in range(self.hparams["finetune_steps"]):
                check_cancel(cancel)
                if t == 1:  # one task (a fit): a matrix product, several times a bmm's speed
                    g = torch.addmm(bias[0], support[0], weight[0].T)[None]  # (1, S, N)
                else:
                    g = torch.baddbmm(bias[:, None, :], support, weight.transpose(1, 2))
                g = g.softmax(-1)
                g[task, row, labels] -= 1.0  # d loss / d logits, (T, S, N)
                grad = (g[0].T @ augmented[0])[None] if t == 1 \
                    else g.transpose(1, 2) @ augmented  # (T, N, D + 1)
                weight.grad, bias.grad = grad[..., :d], grad[..., d]
                opt.step()
        return weight, bias

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        if self.hparams["finetune_backbone"]:
            return super().episode_logits(episode)
        b = episode.batch
        with torch.no_grad():
            x = torch.cat([episode.support_x.flatten(0, 1), episode.query_x.flatten(0, 1)])
            emb = self.backbone(x)
        nk = episode.support_x.shape[1]
        support, query = emb[: b * nk].view(b, nk, -1), emb[b * nk:].view(b, -1, emb.shape[-1])
        weight, bias = self._fit_heads(support, episode.support_y, episode.way)
        return query @ weight.transpose(1, 2) + bias[:, None, :]

    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None) -> Classifier:
        if not self.hparams["finetune_backbone"]:
            with torch.no_grad():
                emb = self.backbone(support_x)
            weight, bias = self._fit_heads(emb[None], support_y[None], way, cancel)
            weight, bias = weight[0], bias[0]

            def classify(x: torch.Tensor) -> torch.Tensor:
                return self.backbone(x) @ weight.T + bias

            return classify

        # Fine-tune a copy of the whole net; BN keeps its pre-trained running statistics
        # (eval mode): a support set of a few images is too small to re-estimate them.
        net = copy.deepcopy(self.backbone).eval()
        head = nn.Linear(net.embed_dim, way).to(support_x.device)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        opt = torch.optim.Adam([*net.parameters(), *head.parameters()],
                               lr=self.hparams["finetune_lr"] * 0.1)
        with torch.enable_grad():
            for _ in range(self.hparams["finetune_steps"]):
                check_cancel(cancel)
                loss = F.cross_entropy(head(net(support_x)), support_y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.requires_grad_(False)
        head.requires_grad_(False)

        def classify_tuned(x: torch.Tensor) -> torch.Tensor:
            return head(net(x))

        return classify_tuned
