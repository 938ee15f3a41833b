"""Episodic evaluation: mean accuracy over a fixed, seeded set of episodes, with a 95% CI."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from trainer.data.episodes import EpisodeSampler
from trainer.data.glyphset import GlyphSet
from trainer.learners.base import Learner, episode_accuracy

# Episodes are drawn in chunks of this many: the set of episodes depends only on the seed,
# the data and way/shot/query, never on how many tasks the device evaluates at once.
SAMPLE_CHUNK = 20


@dataclass(frozen=True)
class EvalResult:
    """Accuracy in percent: mean and the half-width of its 95% confidence interval."""

    mean: float
    ci95: float
    std: float
    episodes: int
    way: int
    shot: int
    query: int

    def __str__(self) -> str:
        return (f"{self.way}-way {self.shot}-shot: {self.mean:.2f} +- {self.ci95:.2f}% "
                f"({self.episodes} episodes)")

    def to_dict(self) -> dict:
        return asdict(self)


def confidence_interval(accuracies: torch.Tensor) -> tuple[float, float, float]:
    """(mean, 1.96 * std / sqrt(n), std) of per-episode accuracies (n,), in their units."""
    n = accuracies.numel()
    mean = float(accuracies.mean())
    std = float(accuracies.std(unbiased=True)) if n > 1 else 0.0
    return mean, 1.96 * std / math.sqrt(n), std


def evaluate(learner: Learner, glyphs: GlyphSet, *, way: int = 5, shot: int = 1,
             query: int = 15, episodes: int = 1000, seed: int = 0,
             device: torch.device | str = "cpu",
             progress: Callable[[float, str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvalResult:
    """Evaluate ``learner`` on ``episodes`` seeded episodes from ``glyphs``."""
    sampler = EpisodeSampler(glyphs, way, shot, query, SAMPLE_CHUNK,
                             generator=torch.Generator().manual_seed(seed))
    was_training = learner.training
    learner.eval()
    accs: list[torch.Tensor] = []
    done = 0
    try:
        with torch.no_grad():
            while done < episodes:
                if should_stop is not None and should_stop():
                    break
                ep = sampler.sample().to(device)
                take = min(SAMPLE_CHUNK, episodes - done)
                logits = learner.episode_logits(ep)
                accs.append(episode_accuracy(logits, ep.query_y)[:take].cpu())
                done += take
                if progress is not None:
                    progress(done / episodes, f"evaluated {done}/{episodes} episodes")
    finally:
        learner.train(was_training)
    acc = torch.cat(accs) * 100.0 if accs else torch.zeros(0)
    if acc.numel() == 0:
        raise RuntimeError("evaluation was stopped before the first episode")
    mean, ci, std = confidence_interval(acc)
    return EvalResult(mean, ci, std, int(acc.numel()), way, shot, query)


def classification_accuracy(learner: Learner, glyphs: GlyphSet, device: torch.device | str,
                            batch: int = 512) -> float:
    """Plain accuracy (percent) of a classifier learner's own head over all of ``glyphs``."""
    was_training = learner.training
    learner.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(glyphs.labels), batch):
                x = glyphs.images[start:start + batch].unsqueeze(1).float().div_(255).to(device)
                y = glyphs.labels[start:start + batch].to(device)
                _, acc = learner.loss((x, y))
                correct += float(acc) * len(y)
    finally:
        learner.train(was_training)
    return 100.0 * correct / max(len(glyphs.labels), 1)
