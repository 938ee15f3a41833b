"""The facade the GUI (and scripts) use. Nothing outside trainer/ should need more.

    model = load_model("resources/models/protonet-omniglot.pt")
    clf = model.fit(glyphs, labels)        # glyphs: uint8 (H, W) arrays from normalize_glyph
    clf.top_k(glyph, k=5)                 # [("a", 0.93), ("b", 0.04), ...]

Progress is a plain ``(fraction, message)`` callable, cancellation a ``() -> bool``.
Every call here may take long (torch): never call it on a GUI thread.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer import checkpoint as ckpt
from trainer.calibrate import for_classes
from trainer.checkpoint import ModelFileError
from trainer.data import preprocess_for
from trainer.data.sources import DataError
from trainer.evaluate import HELD_OUT_PROTOCOL
from trainer.glyphs import EmptyGlyphError, normalize, to_tensor_batch
from trainer.learners import LEARNERS, Cancel, Cancelled, Classifier, Learner

__all__ = [
    "LEARNERS", "Cancelled", "DataError", "EmptyGlyphError", "FittedClassifier", "Model",
    "ModelFileError", "ModelInfo", "load_model", "missing_nom_fonts", "model_info",
    "nom_vocabulary", "normalize_glyph",
]

Progress = Callable[[float, str], None]


def normalize_glyph(image: Any, size: int = 28, *, clean_print: bool = False) -> np.ndarray:
    """The one preprocessing path (see :mod:`trainer.glyphs`): any image -> uint8 (size, size).

    Pass the model's ``ModelInfo.clean_print`` so the app's glyphs are prepared exactly as
    the model's training data was.
    """
    return normalize(image, size, clean=clean_print)


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI shows about a model file without building it."""

    path: Path
    algo: str
    description: str
    image_size: int
    clean_print: bool = False  # glyphs go through trainer.glyphs.clean_print (scans)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    first_order: bool = False  # MAML family: first-order variant
    names_vocabulary: bool = False  # classes are embedding means: can run the Nôm lookup

    @property
    def name(self) -> str:
        """The learner as a person would name it: 'maml (first order)' for FOMAML."""
        return f"{self.algo} (first order)" if self.first_order else self.algo

    @property
    def lookup_zooms(self) -> tuple[float, ...]:
        """The test-time zooms the Nôm lookup embeds a glyph at (stored by ``nomgui-train
        lookup-zooms``; (1.0,): the glyph as it is). A malformed entry reads as (): the
        lookup's fit then refuses the file with the reason."""
        from trainer.lookup import chosen_zooms

        try:
            return chosen_zooms(self.metrics)
        except ValueError:
            return ()

    @property
    def headline_accuracy(self) -> str:
        """E.g. '5-way 1-shot 98.1 ± 0.3% (omniglot test)', or the validation score; for
        a class-set model its held-out figure, e.g. 'held-out examples 91.7% (95% CI
        74-98%, 24 of your examples)', or 'not evaluated' and why."""
        if self.train_config.get("split") == "all":
            return self._class_set_accuracy()
        for e in self.metrics.get("evaluations", []):
            if e.get("protocol", "episodes") != "episodes":
                continue  # e.g. a 423-way all-classes result: not a few-shot figure
            return (f"{e['way']}-way {e['shot']}-shot {e['mean']:.1f} ± {e['ci95']:.1f}% "
                    f"({e['dataset']} {e['part']})")
        val = self.metrics.get("val_acc")
        return f"validation {val:.1f}%" if isinstance(val, float) else "not evaluated"

    def _class_set_accuracy(self) -> str:
        """Split all (a user's class set): only examples held out of training count
        (trainer --holdout-per-class); validation, and any score on its own classes, was
        measured on what it learnt, so neither is shown."""
        for e in self.metrics.get("evaluations", []):
            if e.get("protocol") == HELD_OUT_PROTOCOL:
                mean = e["mean"]
                low = e.get("ci_low", max(0.0, mean - e["ci95"]))
                high = e.get("ci_high", min(100.0, mean + e["ci95"]))
                return (f"held-out examples {mean:.1f}% (95% CI {low:.0f}-{high:.0f}%, "
                        f"{e.get('held_out', '?')} of your examples)")
        if self.train_config.get("holdout_per_class"):
            return ("not evaluated: no held-out example was measured (no class had the two "
                    "examples it needs to hold one out, or the run was killed before)")
        return "not evaluated: trained on every example of its data"


def _info(path: Path, payload: dict[str, Any]) -> ModelInfo:
    spec = payload["learner"]
    train_config = dict(payload.get("train_config", {}))
    clean = preprocess_for(train_config.get("dataset", ""))["clean"]
    return ModelInfo(Path(path), spec["algo"], LEARNERS[spec["algo"]].description,
                     int(spec.get("backbone", {}).get("image_size", 28)), clean,
                     dict(payload.get("metrics", {})), train_config,
                     bool(spec.get("hparams", {}).get("first_order", False)),
                     LEARNERS[spec["algo"]].classes_are_means)


def model_info(path: str | Path) -> ModelInfo:
    """Read a model file's description; raises :class:`ModelFileError` with a plain message."""
    return _info(Path(path), ckpt.read(Path(path)))


class FittedClassifier:
    """A model adapted to one class set. ``classes[i]`` names logit column i."""

    def __init__(self, classify: Classifier, classes: list[str], image_size: int,
                 device: torch.device, clean_print: bool = False, temperature: float = 1.0,
                 none_threshold: float | None = None) -> None:
        self._classify, self.classes = classify, classes
        self.image_size, self._device, self.clean_print = image_size, device, clean_print
        # From the model file's calibration (trainer.calibrate), for this many classes:
        # probabilities are softmax(logits / temperature); a largest raw logit below
        # none_threshold means "none of these" (None: the model is not calibrated).
        self.temperature, self.none_threshold = temperature, none_threshold

    def logits(self, glyphs: Sequence[np.ndarray]) -> np.ndarray:
        """Raw scores (M, C) for normalised uint8 glyphs (M x (H, W))."""
        x = to_tensor_batch(list(glyphs)).to(self._device)
        with torch.no_grad():
            return self._classify(x).cpu().numpy()

    def predict_proba(self, glyphs: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities (M, C); softmax for display only, never for a loss."""
        scores = torch.from_numpy(self.logits(glyphs))
        return torch.softmax(scores / self.temperature, dim=-1).numpy()

    def top_k(self, glyph: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        """The k most likely classes of one glyph, best first, with probabilities."""
        return self.assess(glyph, k)[0]

    def assess(self, glyph: np.ndarray, k: int = 5) -> tuple[list[tuple[str, float]], bool]:
        """:meth:`top_k` of one glyph, and whether it is probably none of the classes (its
        largest logit under the calibrated threshold; always False when uncalibrated)."""
        logits = torch.from_numpy(self.logits([glyph])[0])
        probs = torch.softmax(logits / self.temperature, dim=-1).numpy()
        order = np.argsort(-probs)[:k]
        none = self.none_threshold is not None and float(logits.max()) < self.none_threshold
        return [(self.classes[i], float(probs[i])) for i in order], none


class Model:
    """A loaded model file."""

    FITS_KEPT = 4  # fitted class sets remembered by content (see fit)

    def __init__(self, learner: Learner, info: ModelInfo, device: torch.device) -> None:
        self.learner, self.info, self.device = learner, info, device
        self._fits: OrderedDict[str, Classifier] = OrderedDict()

    def fit(self, glyphs: Sequence[np.ndarray], labels: Sequence[str],
            progress: Progress | None = None, cancel: Cancel | None = None
            ) -> FittedClassifier:
        """Adapt to a class set: normalised glyphs (uint8 (H, W) each) and their labels.

        ``cancel`` is polled between adaptation steps; when it returns True the fit stops
        with :class:`Cancelled` (the app drops a long fit when the user moves on).

        The last :attr:`FITS_KEPT` fits are remembered by a hash of the glyphs' bytes and
        labels, in order: fitting this model to the same examples again (an undo, a set
        opened again) returns at once with the same classifier."""
        if len(glyphs) != len(labels):
            raise ValueError("one label per glyph is needed")
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError("a class set needs at least two classes to tell apart")
        size = self.info.image_size
        bad = [i for i, g in enumerate(glyphs) if np.shape(g) != (size, size)]
        if bad:
            raise ValueError(f"glyph {bad[0]} is {np.shape(glyphs[bad[0]])}, the model takes "
                             f"({size}, {size}): pass it through normalize_glyph first")
        if progress is not None:
            progress(0.0, f"fitting {len(classes)} classes")
        key = _content_key(glyphs, labels)
        classify = self._fits.get(key)
        if classify is None:
            index = {c: i for i, c in enumerate(classes)}
            x = to_tensor_batch(list(glyphs)).to(self.device)
            y = torch.tensor([index[lab] for lab in labels], device=self.device)
            # No outer gradient is ever needed here: without no_grad, ProtoNet's prototypes
            # keep the autograd graph of the whole support pass alive (1.4 GB for 2,000
            # examples). torch.func.grad (MAML's inner loop) and the transfer head's
            # enable_grad still work.
            with torch.no_grad():
                classify = self.learner.adapt(x, y, len(classes), cancel)
            self._fits[key] = classify
            while len(self._fits) > self.FITS_KEPT:
                self._fits.popitem(last=False)
        else:
            self._fits.move_to_end(key)
        if progress is not None:
            progress(1.0, "fitted")
        temperature, threshold = for_classes(self.info.metrics.get("calibration"), len(classes))
        return FittedClassifier(classify, classes, size, self.device, self.info.clean_print,
                                temperature, threshold)


    def fit_lookup(self, glyphs: Sequence[np.ndarray] = (), labels: Sequence[str] = (), *,
                   cache_dir: Path | None = None, progress: Progress | None = None,
                   cancel: Cancel | None = None) -> FittedClassifier:
        """The whole Nôm vocabulary as one class set (classes are the characters): clean
        renderings in every installed font that covers each code point, plus the user's
        own examples (``glyphs``, labelled with characters), which join the renderings of
        their character (or make a class of their own). Only for models whose classes are
        means of embeddings (``cosine``, ``protonet``).

        A glyph to name is embedded as the mean over the model file's test-time zooms of
        it (``metrics["lookup_zooms"]``, see :func:`trainer.lookup.choose_zooms`).

        The renderings and their embeddings by this model file are cached in
        ``cache_dir``: the first call renders and embeds some 60,000 images (tens of
        seconds on two cores, with ``progress``); later calls load them."""
        from trainer.data.nom_lookup import load_vocabulary, render_support
        from trainer.lookup import chosen_zooms, embed_images, zoomed

        if not self.learner.classes_are_means:
            # Said before rendering and embedding 50,000 images for nothing.
            raise NotImplementedError(f"{self.learner.name} adapts its weights to the "
                                      "support images, so it cannot name 13,000 classes "
                                      "from cached embeddings")
        zooms = chosen_zooms(self.info.metrics)  # a malformed entry: said before any work
        size = self.info.image_size
        vocab = load_vocabulary()

        def part(lo: float, hi: float) -> Progress | None:
            if progress is None:
                return None
            return lambda f, msg: progress(lo + (hi - lo) * f, msg)

        support = render_support(vocab, size, cache_dir=cache_dir, progress=part(0, 0.5),
                                 cancel=cancel)
        emb = _cached_embeddings(self, support, cache_dir, part(0.5, 1.0), cancel)
        char_of = dict(zip(vocab.codepoints, vocab.chars, strict=True))
        classes = [char_of[cp] for cp in support.class_names]
        index = {c: i for i, c in enumerate(classes)}
        for lab in labels:
            if lab not in index:
                index[lab] = len(classes)
                classes.append(lab)
        y = support.labels.to(self.device)
        if len(glyphs):
            own = embed_images(self.learner, torch.from_numpy(np.stack(list(glyphs))),
                               self.device, cancel=cancel)
            emb = torch.cat([emb, own])
            y = torch.cat([y, torch.tensor([index[lab] for lab in labels], device=self.device)])
        # A glyph is embedded as the mean over the model's test-time zooms of it (chosen
        # on validation crops by lookup-zooms; none stored: the glyph as it is).
        embed = zoomed(self.learner.backbone, zooms)
        with torch.no_grad():
            classify = self.learner.adapt_embedded(emb, y, len(classes), embed=embed)
        if progress is not None:
            progress(1.0, "fitted")
        temperature, threshold = for_classes(self.info.metrics.get("calibration"), len(classes))
        return FittedClassifier(classify, classes, size, self.device, self.info.clean_print,
                                temperature, threshold)


def _content_key(glyphs: Sequence[np.ndarray], labels: Sequence[str]) -> str:
    """A hash of a class set's examples in order: each glyph's shape and bytes, its label."""
    h = hashlib.sha256()
    for g, lab in zip(glyphs, labels, strict=True):
        a = np.ascontiguousarray(g)
        h.update(f"{a.dtype}{a.shape}{lab!r}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _cached_embeddings(model: Model, support: Any, cache_dir: Path | None,
                       progress: Progress | None, cancel: Cancel | None) -> torch.Tensor:
    """Embeddings (M, D) of the support renderings by this model file, cached by a hash
    of its weights and architecture and of the renderings: a retrained model never reuses
    them, and a file whose metrics only changed (an evaluation recorded, zooms chosen)
    does not embed 50,000 renderings again."""
    from trainer.lookup import embed_images

    path = None
    if cache_dir is not None:
        h = hashlib.sha256(json.dumps(model.learner.config(), sort_keys=True,
                                      default=str).encode())
        for name, tensor in model.learner.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        h.update(support.images.numpy().tobytes())
        path = Path(cache_dir) / f"lookup-embeddings-{h.hexdigest()[:20]}.pt"
        try:
            emb = torch.load(path, weights_only=True)
            if emb.shape[0] == support.labels.numel():
                return emb.to(model.device)
        except (OSError, RuntimeError, EOFError, ValueError):
            pass  # missing or damaged: embed again
    emb = embed_images(model.learner, support.images, model.device, cancel=cancel,
                       progress=progress)
    if path is not None:
        from trainer.data.sources import atomic_torch_save

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(emb.cpu(), path)
    return emb


def nom_vocabulary() -> list[tuple[str, str]]:
    """(code point, character) of every code point the Nôm lookup names."""
    from trainer.data.nom_lookup import load_vocabulary

    vocab = load_vocabulary()
    return list(zip(vocab.codepoints, vocab.chars, strict=True))


def missing_nom_fonts() -> list[str]:
    """A line per Nôm font that is not installed, naming its Debian package (empty when
    all are); with none installed the lookup cannot render at all."""
    from trainer.data.nom_lookup import font_report

    try:
        return font_report()[1]
    except DataError as exc:
        return [str(exc)]


def load_model(path: str | Path, device: str = "cpu") -> Model:
    """Load a model file (``torch.load(weights_only=True)``); errors are ModelFileError."""
    dev = torch.device(device)
    learner, payload = ckpt.load_learner(Path(path), dev)
    return Model(learner, _info(Path(path), payload), dev)
