"""An in-memory set of normalised glyphs: one uint8 tensor, sorted by class.

Kept as uint8 (28x28: 784 bytes a glyph, about 25 MB for all of Omniglot) and converted to
float only per batch, so no PNG is read and no float copy of the set is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class GlyphSet:
    """Glyphs grouped by class.

    Attributes:
        images: uint8 (M, H, W), ink high, rows of one class contiguous and in class order.
        labels: int64 (M,), class index of each row, non-decreasing.
        class_names: one name per class, e.g. ``"Latin/character01"`` or ``"U+4E00"``.
        groups: one tag per class (e.g. ``"background"``/``"evaluation"``), for splits.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    groups: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 3:
            raise ValueError(f"images must be uint8 (M, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have one entry per image")
        if self.labels.numel() and bool((self.labels[1:] < self.labels[:-1]).any()):
            raise ValueError("images must be sorted by class")
        if self.groups and len(self.groups) != len(self.class_names):
            raise ValueError("groups must have one entry per class")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def counts(self) -> torch.Tensor:
        """int64 (C,): images per class."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def offsets(self) -> torch.Tensor:
        """int64 (C,): row of each class's first image."""
        counts = self.counts()
        return torch.cumsum(counts, 0) - counts

    def subset(self, classes: list[int] | torch.Tensor) -> GlyphSet:
        """The given classes (in the given order), relabelled 0..len(classes)-1."""
        classes = torch.as_tensor(classes, dtype=torch.int64)
        counts, offsets = self.counts(), self.offsets()
        rows = [torch.arange(int(offsets[c]), int(offsets[c] + counts[c])) for c in classes]
        index = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
        new_labels = torch.repeat_interleave(torch.arange(len(classes)), counts[classes])
        names = [self.class_names[int(c)] for c in classes]
        groups = [self.groups[int(c)] for c in classes] if self.groups else []
        return GlyphSet(self.images[index], new_labels, names, groups)

    def split_samples(self, first: int) -> tuple[GlyphSet, GlyphSet]:
        """Split every class by sample: its first ``first`` images, and the rest."""
        offsets = self.offsets()
        pos = torch.arange(self.labels.numel()) - offsets[self.labels]
        head = pos < first
        return (
            GlyphSet(self.images[head], self.labels[head], self.class_names, self.groups),
            GlyphSet(self.images[~head], self.labels[~head], self.class_names, self.groups),
        )

    @staticmethod
    def concat(sets: list[GlyphSet]) -> GlyphSet:
        """Classes of all sets, in order, relabelled consecutively."""
        images, labels, names, groups, base = [], [], [], [], 0
        for s in sets:
            images.append(s.images)
            labels.append(s.labels + base)
            names += s.class_names
            groups += s.groups or [""] * s.num_classes
            base += s.num_classes
        return GlyphSet(torch.cat(images), torch.cat(labels), names, groups)

    @staticmethod
    def merge(sets: list[GlyphSet]) -> GlyphSet:
        """Images of sets that share one class list (same names, same order), as one set
        sorted by class: e.g. font renderings and real crops of the same code points."""
        names = sets[0].class_names
        if any(s.class_names != names for s in sets):
            raise ValueError("merge needs sets with the same class names in the same order")
        labels = torch.cat([s.labels for s in sets])
        order = torch.argsort(labels, stable=True)
        return GlyphSet(torch.cat([s.images for s in sets])[order], labels[order], names,
                        sets[0].groups)

    def to_state(self) -> dict:
        """A dict of tensors and strings that ``torch.load(weights_only=True)`` accepts."""
        return {"images": self.images, "labels": self.labels,
                "class_names": list(self.class_names), "groups": list(self.groups)}

    @staticmethod
    def from_state(state: dict) -> GlyphSet:
        return GlyphSet(state["images"], state["labels"], list(state["class_names"]),
                        list(state["groups"]))
