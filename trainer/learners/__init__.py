"""Learners, one file each, registered by name in :data:`LEARNERS`."""

from __future__ import annotations

from typing import Any

from trainer.learners import cosine, maml, protomaml, protonet, transfer  # noqa: F401
from trainer.learners.base import LEARNERS, Cancel, Cancelled, Classifier, Learner

__all__ = ["LEARNERS", "Cancel", "Cancelled", "Classifier", "Learner", "create_learner"]


def create_learner(algo: str, backbone: dict[str, Any] | None = None, **hparams: Any) -> Learner:
    """Build a registered learner; unknown names and hyperparameters are errors."""
    if algo not in LEARNERS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(LEARNERS)}")
    try:
        return LEARNERS[algo](backbone, **hparams)
    except TypeError as exc:
        raise ValueError(f"bad settings for {algo}: {exc}") from exc
