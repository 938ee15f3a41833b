"""The one interface every learner implements, and the registry that lists them.

The CLI, the GUI's model menu and the test matrix all iterate :data:`LEARNERS`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from trainer.data.episodes import Episode
from trainer.models.conv4 import Conv4

Classifier = Callable[[torch.Tensor], torch.Tensor]  # images (M, 1, H, W) -> logits (M, N)
Embedder = Callable[[torch.Tensor], torch.Tensor]  # images (M, 1, H, W) -> embeddings (M, D)
Cancel = Callable[[], bool]  # True: the caller no longer wants the result
LEARNERS: dict[str, type[Learner]] = {}


class Cancelled(RuntimeError):
    """An adaptation was stopped because its caller's ``cancel()`` said so."""


def check_cancel(cancel: Cancel | None) -> None:
    """Raise :class:`Cancelled` when the caller asked to stop (called between steps)."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled")


def register(cls: type[Learner]) -> type[Learner]:
    LEARNERS[cls.name] = cls
    return cls


@contextlib.contextmanager
def eval_mode(learner: nn.Module) -> Iterator[None]:
    """Evaluation mode for the block (running batch-norm statistics), then the mode the
    learner had: evaluation happens in the middle of training runs."""
    was_training = learner.training
    learner.eval()
    try:
        yield
    finally:
        learner.train(was_training)

class Learner(nn.Module, ABC):
    """A few-shot learner: a backbone plus the algorithm's own parameters.

    Subclasses compute losses only; the optimizer, schedule, evaluation and checkpoints
    belong to :mod:`trainer.engine`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    batch_kind: ClassVar[Literal["episodes", "classification"]] = "episodes"
    bn_mode: ClassVar[Literal["running", "support"]] = "running"
    # Multi-process training wraps the learner in DistributedDataParallel when True; a
    # learner whose loss runs torch.func transforms sets False and gets an explicit
    # gradient all-reduce instead (trainer.distributed).
    ddp_compatible: ClassVar[bool] = True
    # Classes are means of support embeddings (ProtoNet, cosine): adapt_embedded works, so
    # a class set of any size can be embedded in chunks or from a cache (the Nôm lookup).
    classes_are_means: ClassVar[bool] = False

    def __init__(self, backbone: dict[str, Any] | None = None, **hparams: Any) -> None:
        super().__init__()
        args = {**(backbone or {}), "bn": self.bn_mode}
        self.backbone = Conv4(**args)
        self.hparams: dict[str, Any] = dict(hparams)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this learner: stored in every checkpoint."""
        return {"algo": self.name, "backbone": dict(self.backbone.args), "hparams": self.hparams}

    def forward(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Same as :meth:`loss`: DistributedDataParallel calls ``forward``."""
        return self.loss(batch)

    @abstractmethod
    def loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss (scalar, with graph) and accuracy (scalar) on one batch."""

    @abstractmethod
    def adapt(self, support_x: torch.Tensor, support_y: torch.Tensor, way: int,
              cancel: Cancel | None = None) -> Classifier:
        """A classifier for one task from its support set (S, 1, H, W), labels (S,) in 0..way-1.

        ``cancel`` is polled between steps of an iterative adaptation (raises Cancelled),
        so an app can drop a long fit of a big class set when the user moves on."""

    def adapt_embedded(self, support_emb: torch.Tensor, support_y: torch.Tensor, way: int,
                       embed: Embedder | None = None) -> Classifier:
        """A classifier from support *embeddings* (S, D) (``self.backbone``'s output), for
        learners whose adaptation needs nothing else (class means): lets a caller embed a
        large support set in chunks, or reuse embeddings it cached. ``embed`` (default
        ``self.backbone``) embeds the queries: e.g. the mean embedding of zoomed copies
        (:func:`trainer.lookup.zoomed`). Others raise NotImplementedError (they adapt
        weights, so they need the images)."""
        raise NotImplementedError(f"{self.name} adapts its weights to the support images")

    def episode_logits(self, episode: Episode) -> torch.Tensor:
        """Query logits (B, N*Q, N) for a batch of episodes, no outer graph. Subclasses
        vectorise this; the default adapts one task at a time."""
        out = []
        for t in range(episode.batch):
            classify = self.adapt(episode.support_x[t], episode.support_y[t], episode.way)
            out.append(classify(episode.query_x[t]))
        return torch.stack(out)


def episode_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy (B,) from logits (B, M, N) and labels (B, M)."""
    return (logits.argmax(-1) == labels).float().mean(-1)
