"""The Nôm lookup protocol: name real crops among every code point of the vocabulary.

Support: clean font renderings of the whole vocabulary (:func:`trainer.data.nom_lookup.
render_support`), adapted as one class set (``learner.adapt``: a ProtoNet's prototypes, a
cosine model's class directions). Queries: real crops of a split part's characters, which
must never have reached training as crops (the seen-class guard of ``evaluate``). Reports
top-1 / top-5 / top-10 accuracy with 95% confidence intervals (normal approximation of a
binomial proportion, as the queries are independent draws), the numbers of classes and
queries, and the fonts. Optionally each crop is also seen zoomed (test-time augmentation,
:func:`zoomed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from trainer.data.episodes import warp
from trainer.data.glyphset import GlyphSet
from trainer.learners.base import Embedder, Learner, eval_mode

KS = (1, 5, 10)
ZOOM_RANGE = (0.5, 2.0)  # the test-time magnifications a crop may be seen at


@dataclass(frozen=True)
class LookupResult:
    """Top-k accuracies in percent with the half-widths of their 95% intervals."""

    top: dict[str, float]  # "1", "5", "10" -> percent
    top_ci95: dict[str, float]
    classes: int  # code points in the vocabulary (support classes)
    queries: int
    query_classes: int
    fonts: list[str] = field(default_factory=list)
    renderings: int = 0  # support images

    def __str__(self) -> str:
        tops = ", ".join(f"top-{k} {self.top[k]:.2f} +- {self.top_ci95[k]:.2f}%"
                         for k in self.top)
        return (f"lookup among {self.classes:,} code points: {tops} ({self.queries:,} crops "
                f"of {self.query_classes:,} characters; fonts {', '.join(self.fonts)})")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def mean(self) -> float:
        """Top-1, the figure a run's validation tracks."""
        return self.top["1"]


def proportion_ci(hits: int, n: int) -> float:
    """Half-width of the 95% interval of a proportion hits / n, in percent."""
    if n == 0:
        return 0.0
    p = hits / n
    return 100 * 1.96 * math.sqrt(p * (1 - p) / n)


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Images (M, 1, H, W) magnified about their centre by ``factor`` (> 1: the middle
    1/factor of the image fills it; < 1: shrunk, the border filled with background 0)."""
    if factor == 1.0:
        return x
    theta = torch.tensor([[1 / factor, 0.0, 0.0], [0.0, 1 / factor, 0.0]],
                         dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
    return warp(x, theta)


def zoomed(embed: Embedder, zooms: Sequence[float]) -> Embedder:
    """An embedder whose embedding (M, D) of images (M, 1, H, W) is the mean of ``embed``'s
    over the zoomed copies of each (test-time augmentation). The mean embedding, not the
    mean of the classes' scores: a crop's scores stay on the scale that the model's
    calibration ("none of these") measured. ``zooms`` (1,) returns ``embed`` itself."""
    zooms = tuple(float(z) for z in zooms)
    if zooms == (1.0,):
        return embed

    def embed_views(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([embed(zoom(x, z)) for z in zooms]).mean(0)

    return embed_views


def embed_images(learner: Learner, images: torch.Tensor, device: torch.device | str,
                 batch: int = 2048, cancel: Callable[[], bool] | None = None,
                 progress: Callable[[float, str], None] | None = None) -> torch.Tensor:
    """Backbone embeddings (M, D) of uint8 glyphs (M, H, W), in batches, in evaluation mode
    (the learner's own mode restored after) and without a graph; ``cancel`` is polled
    between batches (raises :class:`trainer.learners.Cancelled`)."""
    from trainer.learners.base import check_cancel

    out = []
    with eval_mode(learner), torch.no_grad():
        for start in range(0, images.shape[0], batch):
            check_cancel(cancel)
            x = images[start:start + batch].unsqueeze(1).to(device).float().div_(255.0)
            out.append(learner.backbone(x))
            if progress is not None:
                progress(min(1.0, (start + batch) / images.shape[0]), "embedding renderings")
    return torch.cat(out)


def lookup_accuracy(learner: Learner, support: GlyphSet, queries: GlyphSet, *,
                    device: torch.device | str = "cpu", fonts: list[str] | None = None,
                    batch: int = 2048, limit: int | None = None,
                    progress: Callable[[float, str], None] | None = None,
                    support_emb: torch.Tensor | None = None,
                    zooms: Sequence[float] = (1.0,)) -> LookupResult:
    """Adapt to the whole ``support`` set and rank its classes for every query crop.

    ``queries.class_names`` must be code points of ``support`` (others are an error: they
    could never be named). ``limit`` takes an evenly spaced subset of the queries (a
    training run's quick validation). ``support_emb`` (M, D): the support images'
    embeddings by this learner (:func:`embed_images`), when the caller has them already.
    ``zooms``: each query is embedded as the mean over these magnifications of it
    (:func:`zoomed`; the default, 1 alone, is the crop as it is)."""
    index = {name: i for i, name in enumerate(support.class_names)}
    missing = [n for n in queries.class_names if n not in index]
    if missing:
        raise ValueError(f"{len(missing)} query characters are not in the vocabulary, e.g. "
                         f"{missing[0]}")
    target = torch.tensor([index[n] for n in queries.class_names])[queries.labels]
    rows = torch.arange(queries.labels.numel())
    if limit is not None and limit < rows.numel():
        rows = torch.linspace(0, rows.numel() - 1, limit).round().long()
    hits = dict.fromkeys(KS, 0)
    with eval_mode(learner), torch.no_grad():
        emb = (embed_images(learner, support.images, device, batch)
               if support_emb is None else support_emb)
        classify = learner.adapt_embedded(emb, support.labels.to(device), support.num_classes,
                                          embed=zoomed(learner.backbone, zooms))
        for start in range(0, rows.numel(), batch):
            chunk = rows[start:start + batch]
            q = queries.images[chunk].unsqueeze(1).float().div_(255.0).to(device)
            ranked = classify(q).topk(max(KS), dim=-1).indices.cpu()
            found = ranked == target[chunk][:, None]
            for k in KS:
                hits[k] += int(found[:, :k].any(-1).sum())
            if progress is not None:
                progress(min(1.0, (start + batch) / rows.numel()), "ranking crops")
    n = int(rows.numel())
    return LookupResult({str(k): 100 * hits[k] / n for k in KS},
                        {str(k): proportion_ci(hits[k], n) for k in KS},
                        support.num_classes, n, int(queries.labels[rows].unique().numel()),
                        list(fonts or []), int(support.labels.numel()))


def chosen_zooms(metrics: dict) -> tuple[float, ...]:
    """The test-time zooms a model file's ``metrics["lookup_zooms"]`` holds (stored by
    ``nomgui-train lookup-zooms``), or (1.0,) when it holds none. A malformed entry (a file
    edited by hand, or of another version) is an error, not silently ignored."""
    entry = metrics.get("lookup_zooms")
    if entry is None:
        return (1.0,)
    zooms = entry.get("zooms") if isinstance(entry, dict) else None
    if (not isinstance(zooms, list) or not zooms
            or not all(isinstance(z, (int, float)) and ZOOM_RANGE[0] <= z <= ZOOM_RANGE[1]
                       for z in zooms)):
        raise ValueError(f"the model file's lookup zooms {zooms!r} are not magnifications "
                         f"from {ZOOM_RANGE[0]:g} to {ZOOM_RANGE[1]:g}: run nomgui-train "
                         "lookup-zooms on it again")
    return tuple(float(z) for z in zooms)


def choose_zooms(learner: Learner, support: GlyphSet, queries: GlyphSet,
                 candidates: Sequence[Sequence[float]], *, device: torch.device | str = "cpu",
                 fonts: list[str] | None = None,
                 progress: Callable[[float, str], None] | None = None) -> dict:
    """Measure the lookup of ``queries`` (validation crops) with each candidate set of
    zooms and pick the best top-1; a tie goes to fewer views (cheaper, and not chosen by
    noise). The support is embedded once. Returns ``{"zooms": best, "queries": n,
    "candidates": [{"zooms", "top", "top_ci95"}, ...]}``."""
    emb = embed_images(learner, support.images, device)
    measured = []
    for i, zooms in enumerate(candidates):
        result = lookup_accuracy(learner, support, queries, device=device, fonts=fonts,
                                 support_emb=emb, zooms=zooms)
        measured.append({"zooms": [float(z) for z in zooms], "top": result.top,
                         "top_ci95": result.top_ci95, "queries": result.queries})
        if progress is not None:
            progress((i + 1) / len(candidates), "measuring zooms")
    best = max(measured, key=lambda m: (m["top"]["1"], -len(m["zooms"])))
    return {"zooms": best["zooms"], "queries": best["queries"],
            "candidates": [{k: v for k, v in m.items() if k != "queries"} for m in measured]}


__all__ = ["KS", "ZOOM_RANGE", "LookupResult", "choose_zooms", "chosen_zooms", "embed_images",
           "lookup_accuracy", "proportion_ci", "zoom", "zoomed"]
