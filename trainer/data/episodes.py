"""N-way K-shot episodes, sampled in batches of tasks, entirely with tensor ops.

Glossary: an *episode* (task) has N classes (*way*); its *support* set has K labelled
examples per class (*shot*) and its *query* set Q more per class to classify. Labels are
remapped to 0..N-1 in each episode, in random order, so nothing can rely on class identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError


@dataclass(frozen=True)
class Episode:
    """A batch of B tasks, N-way, K-shot, Q-query.

    Attributes:
        support_x: float (B, N*K, 1, H, W) in [0, 1].
        support_y: int64 (B, N*K) in 0..N-1.
        query_x: float (B, N*Q, 1, H, W).
        query_y: int64 (B, N*Q).
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    way: int

    def to(self, device: torch.device | str) -> Episode:
        return Episode(self.support_x.to(device), self.support_y.to(device),
                       self.query_x.to(device), self.query_y.to(device), self.way)

    @property
    def batch(self) -> int:
        return int(self.support_x.shape[0])


def send(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device`` without making the host wait: to a CUDA device
    through pinned memory, asynchronously (a copy from pageable memory would wait for
    every kernel queued before it, a host sync each training step)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def rot90_batch(images: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate each image of (M, H, W) by k[m] * 90 degrees (k: int64 (M,), on the CPU: the
    choice of rows is made there, so images on an accelerator need no host sync)."""
    out = images.clone()
    for turns in (1, 2, 3):
        sel = torch.nonzero(k.cpu() == turns).flatten()
        if sel.numel():
            sel = send(sel, images.device)
            out[sel] = torch.rot90(images[sel], turns, dims=(-2, -1))
    return out


def random_affine(x: torch.Tensor, generator: torch.Generator, strength: float = 1.0
                  ) -> torch.Tensor:
    """Per-sample small affine jitter of (M, 1, H, W): rotation +-10 deg, scale 0.9-1.1,
    shear +-0.1, shift +-2 px at 28 px; all scaled by ``strength``."""
    m = x.shape[0]
    # Drawn by the (CPU) generator and moved: the same jitter on every device.
    u = send(torch.rand(m, 5, generator=generator) * 2 - 1, x.device)
    angle = u[:, 0] * math.radians(10) * strength
    scale = 1 + u[:, 1] * 0.1 * strength
    shear = u[:, 2] * 0.1 * strength
    shift = u[:, 3:5] * (4.0 / 28.0) * strength  # grid units: 2 px of 28 is 4/28
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear, shift[:, 0]], 1),
        torch.stack([sin, cos, shift[:, 1]], 1),
    ], 1)  # (M, 2, 3)
    return warp(x, theta)


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Images (M, 1, H, W) resampled through affine maps ``theta`` (M, 2, 3) in grid units
    (output -> input coordinates); outside the image is background 0."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


class EpisodeSampler:
    """Samples batches of episodes from a GlyphSet.

    Args:
        glyphs: the classes to draw from (one split's part).
        way, shot, query: N, K, Q.
        batch: tasks per call (B).
        generator: drives every random choice; its state is the sampler's state.
        rotations: multiply classes by four with 0/90/180/270 degree rotations (the
            ProtoNet and MAML papers' augmentation; a rotated character is a new class).
        affine: per-sample affine jitter strength (0 = off).
        min_images: draw only classes with at least this many images (default: K + Q).
        device: where episodes are made. The images (uint8) are copied there once; each
            call draws its choices on the CPU (the generator's stream, the same on every
            device) and sends only the row indices, so an accelerator gathers, converts
            and jitters its own batch instead of receiving float images every step.
    """

    def __init__(self, glyphs: GlyphSet, way: int, shot: int, query: int, batch: int = 1,
                 *, generator: torch.Generator, rotations: bool = False, affine: float = 0.0,
                 min_images: int | None = None, device: torch.device | str = "cpu") -> None:
        counts = glyphs.counts()
        # Classes with fewer than K + Q images cannot fill an episode and are left out;
        # min_images raises the bar so several (K, Q) settings draw on one set of classes.
        need = max(shot + query, min_images or 0)
        eligible = torch.nonzero(counts >= need).flatten()
        n_virtual = len(eligible) * (4 if rotations else 1)
        if n_virtual < way:
            raise DataError(
                f"{way}-way {shot}-shot {query}-query episodes need {way} classes with at "
                f"least {need} images each; this data has {len(eligible)}")
        self.glyphs, self.way, self.shot, self.query, self.batch = glyphs, way, shot, query, batch
        self.generator, self.rotations, self.affine = generator, rotations, affine
        self.eligible = eligible
        self.counts = counts
        self.offsets = glyphs.offsets()
        self.max_count = int(counts.max())
        self.device = torch.device(device)
        self.images = glyphs.images.to(self.device)

    def sample(self) -> Episode:
        b, n, k, q = self.batch, self.way, self.shot, self.query
        g = self.generator
        n_virtual = len(self.eligible) * (4 if self.rotations else 1)
        # N distinct (virtual) classes per task: argsort of random keys is a batched randperm.
        picks = torch.rand(b, n_virtual, generator=g).argsort(1)[:, :n]  # (B, N)
        classes = self.eligible[picks % len(self.eligible)]
        turns = picks // len(self.eligible)  # 0 unless rotations
        # K+Q distinct images per class; keys beyond the class's count sort last.
        counts = self.counts[classes]  # (B, N)
        keys = torch.rand(b, n, self.max_count, generator=g)
        keys = keys.masked_fill(torch.arange(self.max_count) >= counts[..., None], 2.0)
        pos = keys.argsort(-1)[..., : k + q]  # (B, N, K+Q)
        rows = self.offsets[classes][..., None] + pos
        # (B*N*(K+Q), H, W) uint8, gathered where the episode is made
        images = self.images[send(rows.reshape(-1), self.device)]
        if self.rotations:
            images = rot90_batch(images, turns[..., None].expand(-1, -1, k + q).reshape(-1))
        x = images.unsqueeze(1).float().div_(255.0)
        if self.affine > 0:
            x = random_affine(x, g, self.affine)
        x = x.view(b, n, k + q, *x.shape[1:])
        labels = torch.arange(n, device=self.device).view(1, n, 1).expand(b, n, k + q)
        return Episode(
            support_x=x[:, :, :k].reshape(b, n * k, *x.shape[3:]),
            support_y=labels[:, :, :k].reshape(b, n * k),
            query_x=x[:, :, k:].reshape(b, n * q, *x.shape[3:]),
            query_y=labels[:, :, k:].reshape(b, n * q),
            way=n,
        )

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class BatchSampler:
    """Plain classification minibatches (for transfer pre-training), same conventions."""

    def __init__(self, glyphs: GlyphSet, batch: int, *, generator: torch.Generator,
                 affine: float = 0.0, device: torch.device | str = "cpu") -> None:
        self.glyphs, self.batch, self.generator, self.affine = glyphs, batch, generator, affine
        self.device = torch.device(device)  # as in EpisodeSampler: data copied there once
        self.images = glyphs.images.to(self.device)
        self.labels = glyphs.labels.to(self.device)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float (B, 1, H, W); y: int64 (B,) class indices of the GlyphSet."""
        idx = torch.randint(len(self.glyphs.labels), (self.batch,), generator=self.generator)
        idx = send(idx, self.device)
        x = self.images[idx].unsqueeze(1).float().div_(255.0)
        if self.affine > 0:
            x = random_affine(x, self.generator, self.affine)
        return x, self.labels[idx]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
