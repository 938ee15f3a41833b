"""Seeded, class-disjoint splits of a GlyphSet into meta-train / val / test classes.

* ``seed``: the seminar's split. All classes shuffled with a fixed seed; meta-learning uses
  the first 1,100 for training, the next 100 for validation, the remaining 423 for testing.
  Transfer learning pre-trains on the first 1,200 (train + val) and is evaluated on the 423.
  Other data sets: 70% / 15% / 15% of the classes, shuffled the same way.
* ``nom-only``: the ``seed`` split of the Nôm crops, each part restricted to the classes
  tagged ``nom`` (Nôm proper), so a model can be reported on Nôm and on all Hán-Nôm.
* ``lake``: Omniglot's own split. Train on the 964 background characters (minus 100 carved
  out, seeded, for validation), test on the 659 evaluation characters.
* ``vinyals``: the papers' split (Vinyals et al. 2016; the lists of Snell et al. 2017, in
  ``trainer/data/vinyals/``): 1,028 / 172 / 423 characters, each rotation (0/90/180/270)
  its own class in every part: 4,112 training, 688 validation, 1,692 test classes. The test
  characters are mostly whole alphabets, so it is harder than ``seed``. Its parts already
  hold the rotations: train on it without ``--rotations``.
* ``all``: every class in every part. Not for reporting results: it is for adapting a model
  to a user's own few classes (the app's class set), where a class-disjoint split would
  leave nothing to train on; validation then measures fit to those same classes.
  With ``holdout_per_class`` (``--holdout-per-class``) examples are held out instead of
  classes: see :func:`hold_out_examples`; the test part is then those held-out examples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer.data.episodes import rot90_batch
from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError

SPLITS = ("seed", "lake", "vinyals", "nom-only", "all")
VINYALS_DIR = Path(__file__).resolve().parent / "vinyals"  # train/val/test.txt, with credit
SEED_SPLIT = (1100, 100, 423)  # Omniglot: train, val, test classes
OTHER_SPLIT = (0.70, 0.15, 0.15)  # other data sets: fractions of classes
LAKE_VAL = 100  # validation classes carved out of Omniglot's background set


@dataclass(frozen=True)
class Splits:
    """Class-disjoint parts; ``pretrain`` is what transfer learning trains on (train + val)."""

    train: GlyphSet
    val: GlyphSet
    test: GlyphSet

    @property
    def pretrain(self) -> GlyphSet:
        return GlyphSet.concat([self.train, self.val])

    def part(self, name: str) -> GlyphSet:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split part {name!r}; choose train, val or test")
        return getattr(self, name)


def trained_parts(algo: str, splits: Splits) -> tuple[list[str], list[str]]:
    """Class names a learner trains on and validates on: transfer pre-trains on train + val
    (and validates on other drawings of them), the others train on train, validate on val."""
    if algo == "transfer":
        return splits.pretrain.class_names, []
    return splits.train.class_names, splits.val.class_names


def class_permutation(num_classes: int, seed: int) -> torch.Tensor:
    return torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed))


def make_splits(glyphs: GlyphSet, split: str, seed: int = 0, holdout_per_class: int = 0
                ) -> Splits:
    """Split ``glyphs`` by class. ``seed`` fixes the shuffle; 0 gives the published split.

    ``holdout_per_class`` (split ``all`` only): train and validate on the examples left
    after :func:`hold_out_examples`; the test part is the held-out examples.
    """
    n = glyphs.num_classes
    if holdout_per_class and split != "all":
        raise DataError(f"holding out examples is for split 'all' (a class set); split "
                        f"{split!r} already tests on classes it never trained on")
    if split == "all":
        if n < 2:
            raise DataError(f"{n} class is too few: at least two are needed")
        if holdout_per_class:
            train, held = hold_out_examples(glyphs, holdout_per_class, seed)
            return Splits(train, train, held)
        return Splits(glyphs, glyphs, glyphs)
    if split == "nom-only":
        if "nom" not in glyphs.groups:
            raise DataError("the 'nom-only' split needs the Nôm crop set with its classes.tsv")
        full = make_splits(glyphs, "seed", seed)
        return Splits(*(_only(part, "nom") for part in (full.train, full.val, full.test)))
    if split == "seed":
        perm = class_permutation(n, seed)
        if n == sum(SEED_SPLIT):
            n_train, n_val = SEED_SPLIT[0], SEED_SPLIT[1]
        else:
            n_val = round(n * OTHER_SPLIT[1])
            n_train = n - n_val - round(n * OTHER_SPLIT[2])
        if n - n_train - n_val < 2 or n_train < 2:
            raise DataError(f"{n} classes are too few for a train/val/test split")
        parts = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    elif split == "vinyals":
        if set(glyphs.groups) != {"background", "evaluation"}:
            raise DataError("the 'vinyals' split exists for Omniglot only")
        lists = read_vinyals()
        return Splits(*(rotated_classes(glyphs, lists[p]) for p in ("train", "val", "test")))
    elif split == "lake":
        if set(glyphs.groups) != {"background", "evaluation"}:
            raise DataError("the 'lake' split exists for Omniglot only (background/evaluation)")
        groups = torch.tensor([g == "background" for g in glyphs.groups])
        background = torch.nonzero(groups).flatten()
        evaluation = torch.nonzero(~groups).flatten()
        if len(background) < LAKE_VAL + 2 or len(evaluation) < 2:
            raise DataError(f"the 'lake' split needs over {LAKE_VAL} background classes "
                            f"(has {len(background)}) and evaluation classes to test on")
        shuffled = background[class_permutation(len(background), seed)]
        parts = (shuffled[LAKE_VAL:].sort().values, shuffled[:LAKE_VAL].sort().values,
                 evaluation)
    else:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return Splits(*(glyphs.subset(p) for p in parts))


def hold_out_examples(glyphs: GlyphSet, per_class: int, seed: int = 0
                      ) -> tuple[GlyphSet, GlyphSet]:
    """Hold out up to ``per_class`` examples of each class, to measure a model on examples
    of its classes that it never trained or validated on.

    A class never gives more than half of its examples (so always keeps one to train on):
    a class with a single example trains on it and is not scored. Which examples go is
    drawn per class from ``seed`` and the class's name, so adding a class or examples of
    one class leaves the other classes' choice as it was. This is a selection of rows of
    ``glyphs``; nothing is removed from the data itself.

    Returns (training, held-out): both with every class of ``glyphs`` and its labels, the
    held-out part empty where no class has two examples.
    """
    if per_class < 0:
        raise ValueError(f"examples held out per class must be 0 or more, not {per_class}")
    counts, offsets = glyphs.counts(), glyphs.offsets()
    held = torch.zeros(glyphs.labels.numel(), dtype=torch.bool)
    for c, name in enumerate(glyphs.class_names):
        n = int(counts[c])
        take = min(per_class, n // 2)
        if take:
            key = hashlib.sha256(f"{seed}\n{name}".encode()).digest()
            g = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1)
            held[int(offsets[c]) + torch.randperm(n, generator=g)[:take]] = True
    return (GlyphSet(glyphs.images[~held], glyphs.labels[~held], glyphs.class_names,
                     glyphs.groups),
            GlyphSet(glyphs.images[held], glyphs.labels[held], glyphs.class_names,
                     glyphs.groups))


def read_vinyals(folder: Path = VINYALS_DIR) -> dict[str, list[str]]:
    """The Vinyals split's class lists: part -> ["Alphabet/characterNN/rotDDD", ...]."""
    out = {}
    for part in ("train", "val", "test"):
        path = folder / f"{part}.txt"
        if not path.is_file():
            raise DataError(f"the Vinyals split list {path} is missing (it ships with "
                            "nomgui: reinstall)")
        out[part] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return out


def rotated_classes(glyphs: GlyphSet, entries: list[str]) -> GlyphSet:
    """One class per entry "Alphabet/characterNN/rotDDD": the character's images turned
    counter-clockwise by DDD degrees (DDD in 000, 090, 180, 270)."""
    index = {name: i for i, name in enumerate(glyphs.class_names)}
    classes, turns = [], []
    for entry in entries:
        name, _, rot = entry.rpartition("/")
        if name not in index or rot not in ("rot000", "rot090", "rot180", "rot270"):
            raise DataError(f"Vinyals split class {entry!r} is not in this Omniglot (its "
                            f"{glyphs.num_classes} characters)")
        classes.append(index[name])
        turns.append(int(rot[3:]) // 90)
    base = glyphs.subset(classes)
    per_image = torch.tensor(turns).repeat_interleave(base.counts())  # (M,)
    return GlyphSet(rot90_batch(base.images, per_image), base.labels, list(entries),
                    base.groups)


def _only(glyphs: GlyphSet, group: str) -> GlyphSet:
    return glyphs.subset([i for i, g in enumerate(glyphs.groups) if g == group])
