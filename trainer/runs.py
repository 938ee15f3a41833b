"""Wiring a training run together from a TrainConfig: data, split, sampler, validation.

Shared by the CLI and :mod:`trainer.api` so there is one way to start a run.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer import checkpoint as ckpt
from trainer import engine
from trainer.calibrate import calibrate_model_file
from trainer.config import TrainConfig
from trainer.data import GlyphSet, load_dataset
from trainer.data.episodes import BatchSampler, EpisodeSampler
from trainer.data.nom_lookup import (
    LookupEpisodeSampler,
    LookupSplits,
    confusable_code_points,
    lookup_splits,
)
from trainer.data.splits import Splits, make_splits, trained_parts
from trainer.distributed import SINGLE, Dist
from trainer.evaluate import (
    HELD_OUT_PART,
    HELD_OUT_PROTOCOL,
    classification_accuracy,
    evaluate,
    held_out_accuracy,
)
from trainer.learners import LEARNERS, Learner, create_learner
from trainer.lookup import embed_images, lookup_accuracy

LOOKUP_DATASET = "nom-lookup"
LOOKUP_VAL_QUERIES = 2000  # validation crops ranked at each validation of a lookup run
HARD_NEIGHBOURS = 20  # confusable code points kept per training character (hard distractors)

# Transfer pre-training validates on drawings it never trained on: of each pre-training
# class, the first PRETRAIN_TRAIN_SAMPLES images train, the rest measure accuracy.
PRETRAIN_TRAIN_SAMPLES = 17
SPLIT_SEED = 0  # every run uses the published split; --seed seeds sampling and weights


@dataclass
class DataOptions:
    root: Path | None
    cache_dir: Path | None
    download: bool = False


def load_splits(cfg: TrainConfig, data: DataOptions,
                progress: Callable[[float, str], None] | None = None) -> Splits:
    if cfg.dataset == LOOKUP_DATASET:
        # Renderings of the whole vocabulary + crops of the training characters; the
        # validation and test parts are crops of characters never trained on as crops.
        return lookup_splits(data.root, cfg.image_size, cache_dir=data.cache_dir,
                             progress=progress)
    glyphs = load_dataset(cfg.dataset, data.root, size=cfg.image_size,
                          cache_dir=data.cache_dir, download=data.download, progress=progress)
    return make_splits(glyphs, cfg.split, seed=SPLIT_SEED,
                       holdout_per_class=cfg.holdout_per_class)


def build(cfg: TrainConfig, splits: Splits, device: torch.device, dist: Dist = SINGLE
          ) -> tuple[Learner, engine.Sampler, Callable[[Learner], float]]:
    """Learner, training sampler and validation function for ``cfg``.

    Under torchrun the sampler draws this rank's share of ``cfg.batch`` from its own seed.
    """
    batch = dist.per_rank(cfg.batch)
    generator = torch.Generator().manual_seed(dist.seed(cfg.seed))
    torch.manual_seed(cfg.seed)  # the learner's initial weights, the same on every rank
    backbone: dict[str, Any] = {"image_size": cfg.image_size, "hidden": cfg.hidden}
    if not cfg.last_pool:
        backbone["last_pool"] = False
    if isinstance(splits, LookupSplits):
        # Chosen on the lookup of validation crops (a fixed subset, for speed) against
        # clean renderings of every code point. Either a classifier over the whole
        # vocabulary (pretrain), or ProtoNet on the lookup's own episodes: renderings as
        # support, real crops of training characters as queries (meta-train).
        if LEARNERS[cfg.algo].batch_kind == "episodes":
            if cfg.algo != "protonet":
                raise ValueError("lookup episodes train ProtoNet (the lookup ranks class "
                                 f"means); {cfg.algo} is not supported on nom-lookup")
            if batch != 1:
                raise ValueError("lookup episodes are one task each (hundreds of classes): "
                                 "use --batch 1")
            learner = create_learner(cfg.algo, backbone, **cfg.hparams)
            sampler = LookupEpisodeSampler(
                splits, cfg.way, cfg.shot, cfg.query, cfg.distractors, generator=generator,
                affine=cfg.affine, device=device, hard=cfg.hard_distractors,
                miner=lambda emb: confusable_code_points(learner, splits, HARD_NEIGHBOURS,
                                                         device=device, support_emb=emb))
        else:
            learner = create_learner(cfg.algo, backbone, **{
                "num_classes": splits.train.num_classes, **cfg.hparams})
            sampler = BatchSampler(splits.train, batch, generator=generator,
                                   affine=cfg.affine, device=device)

        def validate(model: Learner) -> float:
            # The clean renderings embedded once: ranked against, and mined from.
            emb = embed_images(model, splits.support.images, device)
            score = lookup_accuracy(model, splits.support, splits.val, device=device,
                                    limit=LOOKUP_VAL_QUERIES, support_emb=emb).mean
            if isinstance(sampler, LookupEpisodeSampler):
                sampler.refresh(emb)  # hard distractors mined again with the model as it is
            return score
    elif LEARNERS[cfg.algo].batch_kind == "classification":
        train_part, held_out = split_pretrain(splits.pretrain)
        learner = create_learner(cfg.algo, backbone,
                                 **{"num_classes": train_part.num_classes, **cfg.hparams})
        sampler: engine.Sampler = BatchSampler(train_part, batch, generator=generator,
                                               affine=cfg.affine, device=device)

        def validate(model: Learner) -> float:
            return classification_accuracy(model, held_out, device)
    else:
        learner = create_learner(cfg.algo, backbone, **cfg.hparams)
        sampler = EpisodeSampler(splits.train, cfg.way, cfg.shot, cfg.query, batch,
                                 generator=generator, rotations=cfg.rotations,
                                 affine=cfg.affine, device=device)

        def validate(model: Learner) -> float:
            return evaluate(model, splits.val, way=cfg.way, shot=cfg.shot, query=cfg.query,
                            episodes=cfg.val_episodes, seed=1, device=device).mean
    return learner, sampler, validate


def trained_on(cfg: TrainConfig, splits: Splits) -> dict:
    """What the run's model files say it was trained on (the seen-class guard's input):
    the parts of ``splits`` it trains and validates on, and the classes of the model it
    starts from (``--init-from``), which it has seen too."""
    pretrained: list[str] = []
    note = None
    if isinstance(splits, LookupSplits):
        # Crops of the training characters only; validation crops chose the model.
        train, val = splits.crop_train, splits.val.class_names
        note = (f"font renderings of all {splits.train.num_classes} vocabulary code points "
                "(test characters included, as print only); real crops only of the "
                "train_classes")
    else:
        train, val = trained_parts(cfg.algo, splits)
    if cfg.init_from:
        try:
            source = ckpt.read(Path(cfg.init_from)).get("trained_on")
        except ckpt.ModelFileError:
            source = None
        if source is not None:
            pretrained = sorted(ckpt.seen_classes(source))
        else:
            note = (f"started from {Path(cfg.init_from).name}, whose classes are not "
                    "recorded")
    record = ckpt.trained_on(dataset=cfg.dataset, split=cfg.split, split_seed=SPLIT_SEED,
                             rotations=cfg.rotations, train=train, val=val,
                             pretrained=pretrained, note=note)
    if cfg.holdout_per_class:
        # Every class is still trained on (each keeps an example); these examples are not.
        record["held_out"] = held_out_record(cfg, splits.test)
    return record


def held_out_record(cfg: TrainConfig, held: GlyphSet) -> dict:
    """What a model file says about the examples kept out of its training: how they were
    chosen, how many, and sha256 of each image (uint8 bytes), so anyone can check that
    none of them is among the training data."""
    return {"per_class": cfg.holdout_per_class, "seed": SPLIT_SEED,
            "examples": int(held.labels.numel()),
            "classes": int((held.counts() > 0).sum()),
            "image_sha256": [hashlib.sha256(im.numpy().tobytes()).hexdigest()
                             for im in held.images]}


def measure_held_out(cfg: TrainConfig, splits: Splits, model_file: Path,
                     device: torch.device) -> dict | None:
    """Classify the held-out examples with the model file's weights, fitted to the
    training examples of every class, and record the result in the file (protocol
    :data:`HELD_OUT_PROTOCOL`). None, and nothing recorded, when nothing was held out."""
    if not cfg.holdout_per_class or splits.test.labels.numel() == 0:
        return None
    learner, _ = ckpt.load_learner(model_file, device)
    result = held_out_accuracy(learner, splits.train, splits.test, device=device)
    record = {"algo": cfg.algo, "dataset": cfg.dataset, "split": cfg.split,
              "part": HELD_OUT_PART, "protocol": HELD_OUT_PROTOCOL,
              "per_class": cfg.holdout_per_class, **result.to_dict()}
    ckpt.record_evaluation(model_file, record)
    return record


def init_weights(learner: Learner, path: Path) -> int:
    """Start ``learner`` from the weights of the model file ``path``: every tensor whose name
    and shape match is copied (the whole backbone at least; a transfer head sized for other
    classes, or a learner's own extras, stay new). Returns the number of tensors copied."""
    payload = ckpt.read(path)
    source = payload["state_dict"]
    target = learner.state_dict()
    matched = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    backbone = [k for k in target if k.startswith("backbone.")]
    missing = [k for k in backbone if k not in matched]
    if missing:
        raise ValueError(f"--init-from {path}: its backbone does not fit this run's "
                         f"({len(missing)} of {len(backbone)} tensors differ, e.g. "
                         f"{missing[0]}); use a model with the same backbone")
    learner.load_state_dict({**target, **matched})
    return len(matched)


def split_pretrain(glyphs: GlyphSet) -> tuple[GlyphSet, GlyphSet]:
    counts = glyphs.counts()
    keep = int(min(PRETRAIN_TRAIN_SAMPLES, int(counts.min()) - 1))
    return glyphs.split_samples(max(keep, 1))


def run(cfg: TrainConfig, data: DataOptions, run_dir: Path, *, device: torch.device,
        resume: bool = False, on_event: Callable[[engine.Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None, dist: Dist = SINGLE,
        on_prepared: Callable[[], None] | None = None) -> engine.TrainResult:
    """Load the data, build the learner and train it (then calibrate and measure the held
    out examples). ``on_prepared`` is called once the data is loaded and the learner built,
    before anything is written to ``run_dir``."""
    dist.per_rank(cfg.batch)  # fail on an uneven batch before loading any data
    # Rank 0 decodes and caches the data set first; the other ranks then read the cache.
    splits = dist.main_first(lambda: load_splits(cfg, data))
    learner, sampler, validate = build(cfg, splits, device, dist)
    if cfg.init_from and not resume:  # a resumed run has its own weights in the checkpoint
        init_weights(learner, Path(cfg.init_from))
    if on_prepared is not None:
        on_prepared()
    result = engine.train(cfg, learner, sampler, validate, run_dir, device=device,
                          resume=resume, on_event=on_event, should_stop=should_stop,
                          dist=dist, trained=trained_on(cfg, splits))
    best = Path(run_dir) / "best.pt"
    if result.status == "finished" and dist.is_main and best.is_file():
        # The app's calibrated scores and "none of these" come from the model file; the
        # validation classes are already in memory.
        calibrate_model_file(best, splits.val, dataset=cfg.dataset, split=cfg.split,
                             episodes=50, device=device,
                             log=lambda m: print(m, file=sys.stderr))
    if result.status in ("finished", "stopped") and dist.is_main and best.is_file():
        # A stopped run's best model can be added to the models too: it is measured alike.
        record = measure_held_out(cfg, splits, best, device)
        if record is not None:
            print(f"{HELD_OUT_PART}: {record['mean']:.1f}% (95% CI {record['ci_low']:.1f}-"
                  f"{record['ci_high']:.1f}%, {record['held_out']} examples)",
                  file=sys.stderr)
            if on_event is not None:
                on_event({"event": "held_out", **{k: record[k] for k in (
                    "mean", "ci95", "ci_low", "ci_high", "held_out", "held_out_classes",
                    "way")}})
    return result
