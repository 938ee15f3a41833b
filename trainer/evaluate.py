"""Episodic evaluation: mean accuracy over a fixed, seeded set of episodes, with a 95% CI,
and the seen-class guard: a score is only a *test* score on classes the model never saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from trainer import checkpoint as ckpt
from trainer.data.episodes import EpisodeSampler
from trainer.data.glyphset import GlyphSet
from trainer.data.splits import make_splits, trained_parts
from trainer.learners.base import Learner, episode_accuracy, eval_mode

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
    classes: int = 0  # classes the episodes were drawn from (those with enough images)

    def __str__(self) -> str:
        return (f"{self.way}-way {self.shot}-shot: {self.mean:.2f} +- {self.ci95:.2f}% "
                f"({self.episodes} episodes from {self.classes} classes)")

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
             should_stop: Callable[[], bool] | None = None,
             min_images: int | None = None) -> EvalResult:
    """Evaluate ``learner`` on ``episodes`` seeded episodes from ``glyphs``.

    Episodes draw from the classes with at least ``shot + query`` images, or
    ``min_images`` if larger: give a table's largest ``shot + query`` so that every
    column is measured on one set of classes.
    """
    sampler = EpisodeSampler(glyphs, way, shot, query, SAMPLE_CHUNK,
                             generator=torch.Generator().manual_seed(seed),
                             min_images=min_images)
    accs: list[torch.Tensor] = []
    done = 0
    with eval_mode(learner), torch.no_grad():
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
    acc = torch.cat(accs) * 100.0 if accs else torch.zeros(0)
    if acc.numel() == 0:
        raise RuntimeError("evaluation was stopped before the first episode")
    mean, ci, std = confidence_interval(acc)
    return EvalResult(mean, ci, std, int(acc.numel()), way, shot, query,
                      len(sampler.eligible))


def classification_accuracy(learner: Learner, glyphs: GlyphSet, device: torch.device | str,
                            batch: int = 512) -> float:
    """Plain accuracy (percent) of a classifier learner's own head over all of ``glyphs``."""
    correct = 0
    with eval_mode(learner), torch.no_grad():
        for start in range(0, len(glyphs.labels), batch):
            x = glyphs.images[start:start + batch].unsqueeze(1).float().div_(255).to(device)
            y = glyphs.labels[start:start + batch].to(device)
            _, acc = learner.loss((x, y))
            correct += float(acc) * len(y)
    return 100.0 * correct / max(len(glyphs.labels), 1)


@dataclass(frozen=True)
class AllClassesResult:
    """One N-way task over every class of a split, in percent. ``mean`` and ``ci95`` are
    the test accuracy and its binomial 95% CI over test images; ``way`` is the number of
    classes and ``shot`` the training images per class, named as in :class:`EvalResult`
    so recorded evaluations of both protocols read alike."""

    mean: float
    ci95: float
    val: float
    way: int
    shot: int
    val_per_class: int
    test_images: int

    def __str__(self) -> str:
        return (f"{self.way}-way, {self.shot} training images per class: "
                f"test {self.mean:.2f} +- {self.ci95:.2f}% ({self.test_images} images), "
                f"validation {self.val:.2f}%")

    def to_dict(self) -> dict:
        return asdict(self)


def split_each_class(glyphs: GlyphSet, sizes: tuple[int, ...], seed: int
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle each class's images (seeded) and cut them into consecutive parts.

    Returns one (x float (M, 1, H, W), y int64 (M,)) per entry of ``sizes`` and a last part
    with the remaining images. Every class needs more than ``sum(sizes)`` images.
    """
    counts, offsets = glyphs.counts(), glyphs.offsets()
    need = sum(sizes) + 1
    if int(counts.min()) < need:
        raise ValueError(f"every class needs at least {need} images for this protocol; "
                         f"the smallest has {int(counts.min())}")
    g = torch.Generator().manual_seed(seed)
    bounds = [0, *torch.tensor(sizes).cumsum(0).tolist(), None]
    rows: list[list[torch.Tensor]] = [[] for _ in range(len(sizes) + 1)]
    for c in range(glyphs.num_classes):
        perm = torch.randperm(int(counts[c]), generator=g) + offsets[c]
        for i in range(len(rows)):
            rows[i].append(perm[bounds[i]:bounds[i + 1]])
    parts = []
    for r in rows:
        index = torch.cat(r)
        parts.append((glyphs.images[index].unsqueeze(1).float().div_(255.0),
                      glyphs.labels[index]))
    return parts


def all_classes_accuracy(learner: Learner, glyphs: GlyphSet, *, train_per_class: int = 10,
                         val_per_class: int = 4, seed: int = 0,
                         device: torch.device | str = "cpu", batch: int = 512
                         ) -> AllClassesResult:
    """The seminar's transfer protocol, for any learner: adapt to ALL classes of ``glyphs``
    at once from ``train_per_class`` images each, then classify the rest among all of them.

    Of each class's images (seeded shuffle), ``train_per_class`` are the support set,
    ``val_per_class`` the validation set and the rest the test set (Omniglot's 20
    drawings: 10 / 4 / 6). Validation is reported beside test so that any choice made
    on it (fine-tuning steps, say) is made without looking at test.
    """
    (sx, sy), (vx, vy), (tx, ty) = split_each_class(glyphs, (train_per_class, val_per_class),
                                                    seed)
    with eval_mode(learner):
        classify = learner.adapt(sx.to(device), sy.to(device), glyphs.num_classes)

        def accuracy(x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
            correct = 0
            with torch.no_grad():
                for start in range(0, len(y), batch):
                    logits = classify(x[start:start + batch].to(device))
                    correct += int((logits.argmax(-1).cpu() == y[start:start + batch]).sum())
            return correct / max(len(y), 1), len(y)

        val, _ = accuracy(vx, vy)
        test, n = accuracy(tx, ty)
    ci = 1.96 * math.sqrt(test * (1 - test) / n) if n else 0.0  # binomial, over images
    return AllClassesResult(mean=100 * test, ci95=100 * ci, val=100 * val,
                            way=glyphs.num_classes, shot=train_per_class,
                            val_per_class=val_per_class, test_images=n)


# -- held-out examples of a class set ---------------------------------------------------------

HELD_OUT_PROTOCOL = "held-out examples"
HELD_OUT_PART = "held-out examples of your class set"


@dataclass(frozen=True)
class HeldOutResult:
    """A class-set model on examples it never trained or validated on, in percent.

    ``mean`` is the share of held-out examples classified right among ALL the classes;
    ``ci_low``..``ci_high`` its 95% Wilson interval (honest at a handful of examples and
    at 100%, where the normal approximation claims +- 0) and ``ci95`` the larger of its
    two half-widths. ``way`` is the number of classes, ``shot`` the fewest training
    examples of a class, named as in :class:`EvalResult`.
    """

    mean: float
    ci95: float
    ci_low: float
    ci_high: float
    held_out: int  # examples measured
    held_out_classes: int  # classes they belong to
    train_examples: int
    way: int
    shot: int

    def __str__(self) -> str:
        return (f"held-out examples: {self.mean:.1f}% (95% CI {self.ci_low:.1f}-"
                f"{self.ci_high:.1f}%), {self.held_out} examples of {self.held_out_classes} "
                f"classes, classified among all {self.way} from {self.train_examples} "
                "training examples")

    def to_dict(self) -> dict:
        return asdict(self)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (fractions) of ``correct`` successes in ``n`` trials."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def held_out_accuracy(learner: Learner, train: GlyphSet, held: GlyphSet, *,
                      device: torch.device | str = "cpu", batch: int = 512) -> HeldOutResult:
    """Fit ``learner`` to every class of ``train`` from all its examples, as the app fits a
    class set, then classify each example of ``held`` (same classes and labels) among all
    of them. ``held`` must hold at least one example."""
    n = held.labels.numel()
    if n == 0:
        raise ValueError("no examples were held out to measure")
    if held.class_names != train.class_names:
        raise ValueError("the held-out examples must have the training examples' classes")
    sx = train.images.unsqueeze(1).float().div_(255.0)  # (S, 1, H, W)
    correct = 0
    # as Model.fit: no outer graph (MAML's inner loop still works)
    with eval_mode(learner), torch.no_grad():
        classify = learner.adapt(sx.to(device), train.labels.to(device), train.num_classes)
        for start in range(0, n, batch):
            x = held.images[start:start + batch].unsqueeze(1).float().div_(255.0)
            logits = classify(x.to(device))
            correct += int((logits.argmax(-1).cpu() == held.labels[start:start + batch]).sum())
    low, high = wilson_interval(correct, n)
    mean = correct / n
    counts = train.counts()
    return HeldOutResult(mean=100 * mean, ci95=100 * max(mean - low, high - mean),
                         ci_low=100 * low, ci_high=100 * high, held_out=n,
                         held_out_classes=int((held.counts() > 0).sum()),
                         train_examples=int(train.labels.numel()), way=train.num_classes,
                         shot=int(counts.min()))


# -- the seen-class guard ---------------------------------------------------------------------

SEEN_LABEL = "seen classes"  # what a record says instead of "test" under --allow-seen


class SeenClassesError(ValueError):
    """``evaluate`` was asked for a score on classes the model was trained or validated on."""


@dataclass(frozen=True)
class ClassCheck:
    """Which characters of an evaluated part the model has seen, and how that is known."""

    seen: list[str]  # characters of the part among the model's train / val / init classes
    characters: int  # characters in the part
    source: str  # "model file" or "training configuration" (files without the record)
    trained: dict[str, Any] | None  # the model's trained_on record (None: unknown)


def model_trained_on(payload: dict[str, Any], dataset: str, glyphs: GlyphSet | None
                     ) -> tuple[dict[str, Any] | None, str]:
    """The model's ``trained_on`` record, and where it came from.

    Files written before models recorded their classes are re-derived from their stored
    configuration (data set, split, split seed 0) when ``glyphs`` is that data set; a file
    that started from another model (``init_from``) then has unknown extra classes.
    """
    if "trained_on" in payload:
        return payload["trained_on"], "model file"
    cfg = payload.get("train_config", {})
    if glyphs is None or cfg.get("dataset") != dataset or "split" not in cfg:
        return None, "unknown"
    splits = make_splits(glyphs, cfg["split"], seed=0)
    train, val = trained_parts(payload["learner"]["algo"], splits)
    note = "started from another model, whose classes are unknown" if cfg.get(
        "init_from") else None
    return ckpt.trained_on(dataset=dataset, split=cfg["split"], split_seed=0,
                           rotations=bool(cfg.get("rotations")), train=train, val=val,
                           note=note), "training configuration"


def check_classes(payload: dict[str, Any], part: GlyphSet, *, dataset: str,
                  glyphs: GlyphSet | None = None) -> ClassCheck:
    """Compare the characters of ``part`` with those the model was trained on."""
    trained, source = model_trained_on(payload, dataset, glyphs)
    characters = {ckpt.character_of(n) for n in part.class_names}
    seen = sorted(characters & ckpt.seen_classes(trained)) if trained is not None else []
    return ClassCheck(seen, len(characters), source, trained)


def part_label(check: ClassCheck, *, part: str, dataset: str, split: str,
               allow_seen: bool) -> str:
    """What a record calls the evaluated part: ``part`` ("test") only when the model has
    seen none of its classes; :data:`SEEN_LABEL` under ``allow_seen``; ``"all classes"``
    for split ``all``, which is never a test. Otherwise :class:`SeenClassesError`."""
    where = f"{dataset}/{split} {part}"
    if check.trained is None:
        if allow_seen:
            return SEEN_LABEL
        raise SeenClassesError(
            f"the model file does not say which classes it was trained on and its training "
            f"data set differs, so whether {where} is unseen cannot be checked; pass "
            f"--allow-seen to evaluate anyway (recorded as '{SEEN_LABEL}')")
    if check.seen:
        if allow_seen:
            return SEEN_LABEL
        t = check.trained
        raise SeenClassesError(
            f"{len(check.seen)} of the {check.characters} characters of {where} were "
            f"among this model's training or validation classes ({t.get('dataset')}/"
            f"{t.get('split')}, from its {check.source}), e.g. {check.seen[0]}: that is not "
            f"a test. Evaluate on the split it was trained with, or pass --allow-seen "
            f"(recorded as '{SEEN_LABEL}')")
    return "all classes" if split == "all" else part
