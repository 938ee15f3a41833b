"""Run configuration: a frozen dataclass, unknown keys rejected, saved beside each run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``hparams`` go to the learner's constructor."""

    algo: str
    dataset: str = "omniglot"
    split: str = "seed"
    image_size: int = 28
    hidden: int = 64  # backbone channels (Conv4's 64 in the papers)
    last_pool: bool = True  # False: Conv4's last block unpooled (a 576-number embedding)
    way: int = 5  # episodes: N-way
    shot: int = 1  # K-shot
    query: int = 15  # Q queries per class
    batch: int = 16  # tasks per meta-step; images per step for transfer pre-training
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | constant
    val_every: int = 500
    val_episodes: int = 200
    checkpoint_every: int = 200
    rotations: bool = False
    # nom-lookup episodes: code points with renderings only beside the `way` characters
    # (trainer.data.nom_lookup.LookupEpisodeSampler)
    distractors: int = 0
    # how many of those are mined: code points the characters' crops are confused with
    hard_distractors: int = 0
    affine: float = 0.0
    # Arithmetic of the training step: fp32; tf32 (CUDA matmuls and convolutions in
    # TensorFloat-32); bf16 (autocast to bfloat16 on a CPU with bf16 units or a GPU).
    # Weights, optimizer and evaluation stay float32 (trainer.engine.precision_context).
    precision: str = "fp32"
    seed: int = 0
    init_from: str | None = None  # model file whose matching weights start the run
    # split "all" (a class set): examples of each class kept out of training and
    # validation, measured once the run ends (trainer.data.splits.hold_out_examples)
    holdout_per_class: int = 0
    # (step, LR factor) where `resume --extend` took the cosine schedule over: from there it
    # runs from that factor down to zero at `steps` (see trainer.engine.schedule_factor).
    extend_from: tuple[int, float] | None = None
    hparams: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"not {self.precision!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be cosine or constant, not {self.schedule!r}")
        for name in ("way", "shot", "query", "batch", "steps", "image_size", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.way < 2:
            raise ValueError("way must be at least 2")
        if self.distractors < 0:
            raise ValueError("distractors must be 0 or more")
        if self.distractors and self.dataset != "nom-lookup":
            raise ValueError("--distractors belongs to lookup episodes: --dataset nom-lookup")
        if not 0 <= self.hard_distractors <= self.distractors:
            raise ValueError("hard_distractors must be between 0 and distractors (they are "
                             "a share of them)")
        if self.holdout_per_class < 0:
            raise ValueError("holdout_per_class must be 0 or more")
        if self.holdout_per_class and self.split != "all":
            raise ValueError("--holdout-per-class holds out examples of a class set (split "
                             "all); the other splits already test on unseen classes")
        if self.split == "vinyals" and self.rotations:
            # Rotating classes that are already rotations would put one class into an
            # episode twice under two labels.
            raise ValueError("the vinyals split already holds every rotation as its own "
                             "class: drop --rotations")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.extend_from is not None:
            out["extend_from"] = list(self.extend_from)  # the same in JSON and in torch files
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        if data.get("extend_from") is not None:
            data = {**data, "extend_from": tuple(data["extend_from"])}
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
