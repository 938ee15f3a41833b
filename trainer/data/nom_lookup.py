"""Nôm lookup: name a glyph among every Nôm code point, not among a 5-way episode.

* **Vocabulary** (``nom_vocabulary.tsv`` beside this file, built by
  ``scripts/make_vocabulary.py``): the code points with a Vietnamese source or reading plus
  the characters of the woodblock crop set, each with the fonts that cover it.
* **Support**: clean renderings of the whole vocabulary, one per installed font that covers
  the code point (:func:`render_support`). Fonts are not crops: every code point, test
  characters included, may be rendered, in training too.
* **Queries**: real woodblock crops of the crop set's validation or test characters of its
  ``seed`` (or ``nom-only``) split. No crop of those characters reaches training:
  :func:`lookup_splits` builds the training set from crops of the *training* characters only,
  and the model file records both lists (see :func:`trainer.checkpoint.trained_on`).
* **Training set** (dataset ``nom-lookup``): woodblock-like renderings of every vocabulary
  code point (:func:`woodblock_sample`) plus the real crops of the training characters,
  labelled by code point, for a classifier over the whole vocabulary.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from trainer.data.episodes import Episode, random_affine, send
from trainer.data.glyphset import GlyphSet
from trainer.data.nom import load_nom
from trainer.data.nom_fonts import CANVAS, FONTS, FontCache, FontSpec, installed_fonts, tilt
from trainer.data.sources import DataError, Progress, cached, signature
from trainer.glyphs import PREPROCESS_VERSION, normalize
from trainer.learners.base import Learner, check_cancel

VOCABULARY = Path(__file__).resolve().parent / "nom_vocabulary.tsv"
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class Vocabulary:
    """The code points a lookup names, in file order; ``fonts[i]`` covers ``codepoints[i]``."""

    codepoints: list[str]
    chars: list[str]
    in_crops: list[bool]
    fonts: list[tuple[str, ...]]  # FontSpec.column names covering each code point

    def __len__(self) -> int:
        return len(self.codepoints)

    def digest(self) -> str:
        """sha256 of the code points and their fonts: names a rendering cache."""
        text = "\n".join(f"{cp}:{','.join(f)}" for cp, f in zip(self.codepoints, self.fonts,
                                                                strict=True))
        return hashlib.sha256(text.encode()).hexdigest()


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Read the vocabulary TSV (default :data:`VOCABULARY`); a missing or damaged file is a
    :class:`DataError`."""
    path = VOCABULARY if path is None else path
    try:
        lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines()
                 if ln and not ln.startswith("#")]
        rows = list(csv.DictReader(lines, delimiter="\t"))
        columns = [f.column for f in FONTS]
        return Vocabulary([r["codepoint"] for r in rows], [r["char"] for r in rows],
                          [r["in_crops"] == "1" for r in rows],
                          [tuple(c for c in columns if r.get(c) == "1") for r in rows])
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise DataError(f"the Nôm vocabulary {path} cannot be read: {exc}") from exc


def font_report(fonts: list[FontSpec] | None = None) -> tuple[list[str], list[str]]:
    """(fonts used, a line per missing font naming its Debian package)."""
    found = installed_fonts() if fonts is None else fonts
    names = {f.column for f in found}
    missing = [f"{f.column}: apt-get install {f.package}" for f in FONTS
               if f.column not in names]
    return [f.column for f in found], missing


def clean_rendering(char: str, font: ImageFont.FreeTypeFont) -> Image.Image:
    """Black glyph on white, centred on a CANVAS x CANVAS page: what a support image is."""
    img = Image.new("L", (CANVAS, CANVAS), 255)
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), char, font=font)
    d.text(((CANVAS - (box[2] - box[0])) / 2 - box[0], (CANVAS - (box[3] - box[1])) / 2 - box[1]),
           char, fill=0, font=font)
    return img


def render_support(vocab: Vocabulary, size: int, *, fonts: list[FontSpec] | None = None,
                   cache_dir: Path | None = None, progress: Progress | None = None,
                   cancel: Cancel | None = None) -> GlyphSet:
    """One clean rendering per installed covering font of every code point (normalised
    like the crops, ``clean=True``). Class names are the code points; code points no
    installed font covers are left out. Cached in ``cache_dir``."""
    fonts = installed_fonts() if fonts is None else fonts
    by_column = {f.column: f for f in fonts}
    key = (f"nomsupport-{size}px-v{PREPROCESS_VERSION}-"
           f"{signature([], vocab.digest(), *[f.files for f in fonts])}")

    def build() -> GlyphSet:
        faces = FontCache()
        images: list[np.ndarray] = []
        labels: list[int] = []
        names: list[str] = []
        for i, (cp, char, cover) in enumerate(zip(vocab.codepoints, vocab.chars, vocab.fonts,
                                                  strict=True)):
            if i % 100 == 0:
                check_cancel(cancel)  # raises trainer.learners.Cancelled
            specs = [by_column[c] for c in cover if c in by_column]
            if not specs:
                continue
            for spec in specs:
                img = clean_rendering(char, faces.get(spec, char, int(CANVAS * 0.8)))
                images.append(normalize(img, size, ink="dark", clean=True))
                labels.append(len(names))
            names.append(cp)
            if progress is not None and i % 500 == 0:
                progress(i / len(vocab), f"rendered {i:,}/{len(vocab):,} characters")
        if not names:
            raise DataError("no installed font covers the Nôm vocabulary: "
                            + "; ".join(font_report(fonts)[1]))
        return GlyphSet(torch.from_numpy(np.stack(images)), torch.tensor(labels), names)

    return cached(cache_dir, key, build)


def woodblock_sample(char: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator,
                     neighbour: Callable[[], tuple[str, ImageFont.FreeTypeFont]]
                     ) -> Image.Image:
    """A font glyph made to look like a woodblock crop: uneven paper, ink bleed or wear,
    broken strokes, specks, fragments of the characters above and below (vertical text) or
    beside, a small tilt, low resolution (crops are 11-39 px), blur and noise."""
    paper, ink = rng.uniform(170, 235), rng.uniform(10, 70)
    img = Image.new("L", (CANVAS, CANVAS), int(paper))
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), char, font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    x = (CANVAS - w) / 2 - box[0] + rng.normal(0, 2.0)
    y = (CANVAS - h) / 2 - box[1] + rng.normal(0, 2.0)
    bold = rng.random() < 0.3
    d.text((x, y), char, fill=int(ink), font=font, stroke_width=1 if bold else 0,
           stroke_fill=int(ink))
    gap = rng.uniform(1, 8)
    for dx, dy, chance in ((0, -1, 0.35), (0, 1, 0.35), (-1, 0, 0.12), (1, 0, 0.12)):
        if rng.random() < chance:  # a neighbour's edge inside the crop
            other, ofont = neighbour()
            ob = d.textbbox((0, 0), other, font=ofont)
            ox = x + dx * (w + gap) + box[0] - ob[0]
            oy = y + dy * (h + gap) + box[1] - ob[1]
            d.text((ox, oy), other, fill=int(ink), font=ofont)
    for _ in range(rng.integers(0, 6)):  # broken strokes: worn wood, paper showing
        cx, cy = rng.uniform(CANVAS * 0.2, CANVAS * 0.8, 2)
        r = rng.uniform(0.8, 2.5)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(paper))
    for _ in range(rng.integers(0, 4)):  # ink specks
        cx, cy = rng.uniform(0, CANVAS, 2)
        r = rng.uniform(0.5, 1.5)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(ink))
    wear = rng.random()
    if wear < 0.25:
        img = img.filter(ImageFilter.MaxFilter(3))  # eroded, thin strokes
    elif wear < 0.5:
        img = img.filter(ImageFilter.MinFilter(3))  # ink bleed, thick strokes
    img = tilt(img, rng.normal(0, 2.5), rng.normal(0, 0.05), int(paper))
    low = int(rng.uniform(18, 44))  # scan resolution of a crop
    img = img.resize((low, low), Image.Resampling.BOX).resize((CANVAS, CANVAS),
                                                              Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    arr = np.asarray(img, dtype=np.float32)
    texture = np.asarray(Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32))
                         .resize((CANVAS, CANVAS), Image.Resampling.BICUBIC))
    arr = (arr + texture * rng.uniform(0, 6)
           + np.linspace(-1, 1, CANVAS)[:, None] * rng.normal(0, 8)
           + rng.normal(0, rng.uniform(0, 6), arr.shape))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_training(vocab: Vocabulary, size: int, *, samples: int = 6, seed: int = 0,
                    fonts: list[FontSpec] | None = None, cache_dir: Path | None = None,
                    progress: Progress | None = None) -> GlyphSet:
    """``samples`` woodblock-like renderings of every covered code point (fonts in turn,
    glyph size 60-95% of the page), seeded per code point so the set is reproducible."""
    fonts = installed_fonts() if fonts is None else fonts
    by_column = {f.column: f for f in fonts}
    plan = [(cp, ch, [by_column[c] for c in cover if c in by_column])
            for cp, ch, cover in zip(vocab.codepoints, vocab.chars, vocab.fonts, strict=True)]
    plan = [p for p in plan if p[2]]
    key = (f"nomwoodblock-{size}px-v{PREPROCESS_VERSION}-"
           f"{signature([], vocab.digest(), *[f.files for f in fonts], samples, seed)}")

    def build() -> GlyphSet:
        faces = FontCache()
        images = np.zeros((len(plan) * samples, size, size), dtype=np.uint8)
        for c, (_cp, char, specs) in enumerate(plan):
            rng = np.random.default_rng([seed, c])
            for s in range(samples):
                spec = specs[(s + c) % len(specs)]
                px = int(CANVAS * rng.uniform(0.6, 0.95))

                def neighbour(rng: np.random.Generator = rng, px: int = px
                              ) -> tuple[str, ImageFont.FreeTypeFont]:
                    _, other, ospecs = plan[int(rng.integers(len(plan)))]
                    ospec = ospecs[int(rng.integers(len(ospecs)))]
                    return other, faces.get(ospec, other, px)

                img = woodblock_sample(char, faces.get(spec, char, px), rng, neighbour)
                try:
                    images[c * samples + s] = normalize(img, size, ink="dark", clean=True)
                except ValueError:  # nothing left after wear and cleaning: a plain one
                    images[c * samples + s] = normalize(
                        clean_rendering(char, faces.get(spec, char, px)), size, ink="dark",
                        clean=True)
            if progress is not None and c % 500 == 0:
                progress(c / len(plan), f"rendered {c:,}/{len(plan):,} characters")
        labels = torch.arange(len(plan)).repeat_interleave(samples)
        return GlyphSet(torch.from_numpy(images), labels, [p[0] for p in plan])

    return cached(cache_dir, key, build)


def lookup_support(vocab: Vocabulary, size: int, kind: str = "clean", *,
                   cache_dir: Path | None = None, progress: Progress | None = None,
                   cancel: Cancel | None = None) -> GlyphSet:
    """The renderings that stand for each code point: ``clean`` (:func:`render_support`),
    ``woodblock`` (:func:`render_training`'s 6 per code point) or ``both``."""
    if kind not in ("clean", "woodblock", "both"):
        raise ValueError(f"unknown support {kind!r}: clean, woodblock or both")
    parts = []
    if kind in ("clean", "both"):
        parts.append(render_support(vocab, size, cache_dir=cache_dir, progress=progress,
                                    cancel=cancel))
    if kind in ("woodblock", "both"):
        parts.append(render_training(vocab, size, cache_dir=cache_dir, progress=progress))
    if len(parts) == 2:
        _same_code_points(*parts)
    return parts[0] if len(parts) == 1 else GlyphSet.merge(parts)


def _same_code_points(clean: GlyphSet, woodblock: GlyphSet) -> None:
    """The clean and woodblock renderings must stand for the same code points in the same
    order (both are made from one vocabulary and one font list; a stale cache could not)."""
    if clean.class_names != woodblock.class_names:
        raise DataError("the clean and woodblock renderings cover different code points")


@dataclass(frozen=True)
class LookupSplits:
    """``train``: renderings of every code point plus crops of the training characters
    (one class per code point); ``val`` / ``test``: crops of the validation / test
    characters the vocabulary covers; ``crop_train``: the characters whose crops train;
    ``support``: the clean renderings a lookup ranks against (cached like the rest)."""

    train: GlyphSet
    val: GlyphSet
    test: GlyphSet
    crop_train: list[str]
    support: GlyphSet  # clean renderings of the vocabulary, what validation ranks against
    renderings: GlyphSet  # the woodblock-like renderings of ``train``, one class a code point
    crops: GlyphSet  # the real crops of ``train``: the training characters, by code point


def crop_parts(root: Path | None, size: int, split: str = "seed", *,
               cache_dir: Path | None = None, progress: Progress | None = None,
               vocab: Vocabulary | None = None):
    """The crop set's ``split`` (``seed`` or ``nom-only``), each part restricted to code
    points of the vocabulary."""
    from trainer.data.splits import make_splits

    if split not in ("seed", "nom-only"):
        raise DataError(f"the Nôm lookup uses the crop set's 'seed' or 'nom-only' split, "
                        f"not {split!r}")
    vocab = load_vocabulary() if vocab is None else vocab
    known = set(vocab.codepoints)
    parts = make_splits(load_nom(root, size, cache_dir=cache_dir, progress=progress), split)
    keep = [[i for i, n in enumerate(p.class_names) if n in known]
            for p in (parts.train, parts.val, parts.test)]
    return tuple(p.subset(k) for p, k in zip((parts.train, parts.val, parts.test), keep,
                                             strict=True))


def lookup_splits(root: Path | None, size: int, *, samples: int = 6,
                  cache_dir: Path | None = None, progress: Progress | None = None
                  ) -> LookupSplits:
    """The ``nom-lookup`` training data and its validation / test crops (``seed`` split)."""
    vocab = load_vocabulary()
    crops_train, crops_val, crops_test = crop_parts(root, size, cache_dir=cache_dir,
                                                    progress=progress, vocab=vocab)
    fonts = render_training(vocab, size, samples=samples, cache_dir=cache_dir,
                            progress=progress)
    index = {cp: i for i, cp in enumerate(fonts.class_names)}
    extra = [index[n] for n in crops_train.class_names]
    labels = torch.tensor(extra, dtype=torch.int64)[crops_train.labels]
    order = torch.argsort(labels, stable=True)
    relabelled = GlyphSet(crops_train.images[order], labels[order], fonts.class_names)
    train = GlyphSet.merge([fonts, relabelled])
    support = render_support(vocab, size, cache_dir=cache_dir, progress=progress)
    _same_code_points(support, fonts)
    return LookupSplits(train, crops_val, crops_test, list(crops_train.class_names), support,
                        fonts, crops_train)


class LookupEpisodeSampler:
    """Episodes of the lookup's own task, print against woodblock: the support set is font
    renderings, the queries are real crops (of training characters only).

    Each episode (one task; ``batch`` 1): ``way`` characters of the training crops, each
    with every clean rendering (one per font; repeated up to the most fonts any code point
    has, so that every episode has the same size) and ``shot`` woodblock-like renderings as
    support and ``query`` of its real crops as queries; plus ``distractors`` other code
    points of the vocabulary with support only (no crop of them is needed: rendering
    any code point is allowed), so that a crop must be told from characters it never
    appears as. A ProtoNet trained on these learns to put a crop near the prototype its
    character's fonts make, which is what :func:`trainer.lookup.lookup_accuracy` asks.
    Choices come from the CPU ``generator`` (its state is the sampler's); images are
    gathered on ``device``.
    """

    def __init__(self, splits: LookupSplits, way: int, shot: int, query: int,
                 distractors: int, *, generator: torch.Generator, affine: float = 0.0,
                 device: torch.device | str = "cpu", hard: int = 0,
                 miner: Callable[[torch.Tensor | None], torch.Tensor] | None = None
                 ) -> None:
        clean, wood, crops = splits.support, splits.renderings, splits.crops
        index = {cp: i for i, cp in enumerate(clean.class_names)}
        crop_counts = crops.counts()
        eligible = torch.nonzero(crop_counts >= query).flatten()
        if len(eligible) < way:
            raise DataError(f"lookup episodes of {way} characters with {query} crops each "
                            f"need {way} training characters with {query} crops; there are "
                            f"{len(eligible)}")
        if way + distractors > clean.num_classes:
            raise DataError(f"{way} characters + {distractors} distractors exceed the "
                            f"vocabulary's {clean.num_classes:,} code points")
        if shot > int(wood.counts().min()):
            raise DataError(f"--shot {shot}: the woodblock renderings have "
                            f"{int(wood.counts().min())} per code point")
        if hard > distractors:
            raise DataError(f"--hard-distractors {hard} is more than --distractors "
                            f"{distractors}: the hard ones are a share of the distractors")
        if hard and miner is None:
            raise ValueError("hard distractors need a miner (confusable_code_points)")
        self.way, self.shot, self.query, self.distractors = way, shot, query, distractors
        # Hard distractors: up to ``hard`` of each episode's distractors are code points its
        # characters' crops are confused with (``confusable``, (crop classes, K) vocabulary
        # indices, from ``miner``: mined with the model being trained at the first episode
        # and again at every refresh); the rest are drawn at random as before.
        self.hard, self.miner = hard, miner
        self.confusable: torch.Tensor | None = None
        self.generator, self.affine = generator, affine
        self.eligible = eligible
        self.crop_vocab = torch.tensor([index[n] for n in crops.class_names])
        self.device = torch.device(device)
        # One image bank on the device: clean renderings, woodblock renderings, crops.
        self.images = torch.cat([clean.images, wood.images, crops.images]).to(self.device)
        self.clean_off, self.clean_cnt = clean.offsets(), clean.counts()
        self.clean_slots = int(self.clean_cnt.max())  # clean support images per class
        self.wood_off = wood.offsets() + clean.images.shape[0]
        self.wood_cnt = wood.counts()
        self.crop_off = crops.offsets() + clean.images.shape[0] + wood.images.shape[0]
        self.crop_cnt = crop_counts
        self.vocab_size = clean.num_classes

    @property
    def batch(self) -> int:
        return 1

    def sample(self) -> Episode:
        g = self.generator
        picks = self.eligible[torch.randperm(len(self.eligible), generator=g)[: self.way]]
        chars = self.crop_vocab[picks]  # (way,) vocabulary indices
        # Distractors: other code points, none of the episode's characters.
        hard = self._hard_distractors(picks, chars)
        taken = torch.cat([chars, hard])
        pool = torch.randperm(self.vocab_size, generator=g)[: self.distractors + len(taken)]
        pool = pool[~torch.isin(pool, taken)][: self.distractors - len(hard)]
        classes = torch.cat([chars, hard, pool])
        support_rows, support_y = [], []
        for j, c in enumerate(classes.tolist()):
            n = int(self.clean_cnt[c])
            # Every code point fills the same number of clean slots, its fonts in a random
            # order repeated: each is present, and every episode has the same size. Sizes
            # that varied with the code points' font counts fragmented the heap that the
            # trainer's allocator tuning never returns (the process grew to 20 GB).
            fonts = (torch.randperm(n, generator=g)[torch.arange(self.clean_slots) % n] if n
                     else torch.arange(0))
            wood = torch.randperm(int(self.wood_cnt[c]), generator=g)[: self.shot]
            rows = torch.cat([self.clean_off[c] + fonts, self.wood_off[c] + wood])
            support_rows.append(rows)
            support_y.append(torch.full((rows.numel(),), j))
        query_rows = [self.crop_off[p] + torch.randperm(int(self.crop_cnt[p]),
                                                         generator=g)[: self.query]
                      for p in picks.tolist()]
        s_rows, q_rows = torch.cat(support_rows), torch.cat(query_rows)
        x = self.images[send(torch.cat([s_rows, q_rows]), self.device)]
        x = x.unsqueeze(1).float().div_(255.0)
        if self.affine > 0:
            x = random_affine(x, g, self.affine)
        s = s_rows.numel()
        q_y = torch.arange(self.way).repeat_interleave(self.query)
        return Episode(support_x=x[None, :s],
                       support_y=send(torch.cat(support_y)[None], self.device),
                       query_x=x[None, s:], query_y=send(q_y[None], self.device),
                       way=int(classes.numel()))

    def _hard_distractors(self, picks: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        """Up to ``hard`` code points (vocabulary indices), none of ``chars``, drawn from the
        confusable lists of the episode's characters (``picks``: crop classes) in a random
        order; empty without hard distractors."""
        if not self.hard:
            return torch.zeros(0, dtype=torch.int64)
        if self.confusable is None:
            self.refresh()
        assert self.confusable is not None
        near = self.confusable[picks].flatten()
        near = near[torch.randperm(near.numel(), generator=self.generator)]
        near = near[~torch.isin(near, chars)]
        # The first occurrence of each code point in the shuffled order: one listed by
        # several of the episode's characters has several chances to come early, so the
        # code points most confused with the episode are the likelier picks.
        uniq, inverse = torch.unique(near, return_inverse=True)
        first = torch.full((uniq.numel(),), near.numel(), dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(near.numel()), "amin")
        return near[first.sort().values][: self.hard]

    def refresh(self, support_emb: torch.Tensor | None = None) -> None:
        """Mine the confusable code points again with the model as it is now (from
        ``support_emb``, the clean renderings' embeddings, when the caller has them)."""
        if self.hard:
            assert self.miner is not None
            self.confusable = self.miner(support_emb).to(torch.int64).cpu()

    def state_dict(self) -> dict:
        state: dict = {"generator": self.generator.get_state()}
        if self.confusable is not None:  # a resumed run continues with the same lists
            state["confusable"] = self.confusable
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.confusable = state.get("confusable")


def confusable_code_points(learner: Learner, splits: LookupSplits, k: int, *,
                           device: torch.device | str = "cpu",
                           support_emb: torch.Tensor | None = None) -> torch.Tensor:
    """(C, k) vocabulary indices: for each training character of ``splits.crops`` (C of
    them, in its class order), the k code points other than itself whose prototypes (the
    mean embedding of their clean renderings) lie nearest the mean embedding of its real
    crops: what a crop of it is most likely taken for. The lookup's errors are such near
    neighbours (its accuracy falls with every doubling of the vocabulary), while random
    distractors are mostly easy. ``support_emb``: the embeddings of ``splits.support`` by
    this learner (:func:`trainer.lookup.embed_images`), when the caller has them (a
    validation's)."""
    from trainer.lookup import embed_images
    from trainer.models.conv4 import prototypes, sq_distances

    clean, crops = splits.support, splits.crops
    index = {cp: i for i, cp in enumerate(clean.class_names)}
    own = torch.tensor([index[n] for n in crops.class_names])
    if support_emb is None:
        support_emb = embed_images(learner, clean.images, device)
    protos = prototypes(support_emb, clean.labels.to(device), clean.num_classes)
    centres = prototypes(embed_images(learner, crops.images, device),
                         crops.labels.to(device), crops.num_classes)
    out = []
    for start in range(0, centres.shape[0], 512):
        d = sq_distances(centres[start:start + 512], protos)  # (c, vocabulary)
        d[torch.arange(d.shape[0]), own[start:start + 512].to(d.device)] = float("inf")
        out.append(d.topk(k, dim=1, largest=False).indices.cpu())
    return torch.cat(out)


__all__ = ["VOCABULARY", "LookupEpisodeSampler", "LookupSplits", "Vocabulary",
           "clean_rendering", "confusable_code_points",
           "crop_parts", "font_report", "load_vocabulary", "lookup_splits", "lookup_support",
           "render_support", "render_training", "woodblock_sample"]
