"""A font-rendered Nôm set: every Nôm code point of ``nom_codepoints.tsv`` drawn with the
free CJK fonts Debian ships, with print-like augmentation, normalised like the real crops.

Classes: code points with a Vietnamese IRG source or a quốc ngữ reading that at least one
installed font covers (the TSV's cmap columns). When the real crop set's ``classes.tsv``
is found beside the TSV, its characters are left out, so a model trained on fonts and tested
on real crops is tested on characters it never saw.

Augmentation per sample (seeded by class, so the set is reproducible): font, glyph size,
stroke weight (thicker with a stroke outline, thinner with a light max-filter), small
rotation and shear, blur, paper level and gradient, ink level, noise.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from trainer.data.glyphset import GlyphSet
from trainer.data.nom import find_source, read_class_table
from trainer.data.sources import DataError, Progress, cached, signature
from trainer.glyphs import PREPROCESS_VERSION, normalize

TSV = "nom_codepoints.tsv"
CANVAS = 64


@dataclass(frozen=True)
class FontSpec:
    column: str  # coverage column in nom_codepoints.tsv
    files: tuple[str, str]  # file for the BMP, file for the supplementary planes
    package: str  # Debian package that installs it
    index: int = 0  # face inside a .ttc


FONTS = (
    FontSpec("hanazono", ("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
                          "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf"), "fonts-hanazono"),
    FontSpec("babelstone", ("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf",) * 2,
             "fonts-babelstone-han"),
    FontSpec("tw_sung", ("/usr/share/fonts/truetype/cns11643/TW-Sung-98_1.ttf",
                         "/usr/share/fonts/truetype/cns11643/TW-Sung-Ext-B-98_1.ttf"),
             "fonts-cns11643-sung"),
    FontSpec("tw_kai", ("/usr/share/fonts/truetype/cns11643/TW-Kai-98_1.ttf",
                        "/usr/share/fonts/truetype/cns11643/TW-Kai-Ext-B-98_1.ttf"),
             "fonts-cns11643-kai"),
    FontSpec("noto_serif_tc", ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",) * 2,
             "fonts-noto-cjk", index=3),
)


def installed_fonts() -> list[FontSpec]:
    """Fonts whose files are present; none at all is an error naming the packages."""
    found = [f for f in FONTS if all(Path(p).is_file() for p in f.files)]
    if not found:
        raise DataError("no CJK font for rendering Nôm is installed; install one or more "
                        "of: apt-get install " + " ".join(f.package for f in FONTS))
    return found


def find_tsv(root: Path) -> Path:
    root = Path(root).expanduser()
    for p in (root, root / TSV, root / "nom" / TSV):
        if p.is_file() and p.name == TSV:
            return p
    raise DataError(f"{TSV} not found in {root}: pass --data-root pointing at it or at the "
                    "folder that holds it")


def render_sample(char: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator
                  ) -> Image.Image:
    """One print-like rendering: dark ink on paper, CANVAS x CANVAS."""
    paper = rng.uniform(170, 235)
    ink = rng.uniform(10, 70)
    img = Image.new("L", (CANVAS, CANVAS), int(paper))
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), char, font=font)
    x = (CANVAS - (box[2] - box[0])) / 2 - box[0] + rng.normal(0, 1.5)
    y = (CANVAS - (box[3] - box[1])) / 2 - box[1] + rng.normal(0, 1.5)
    bold = rng.random() < 0.3
    d.text((x, y), char, fill=int(ink), font=font, stroke_width=1 if bold else 0,
           stroke_fill=int(ink))
    if not bold and rng.random() < 0.3:
        img = img.filter(ImageFilter.MaxFilter(3))  # thinner strokes (ink is dark)
    img = tilt(img, rng.normal(0, 3), rng.normal(0, 0.06), int(paper))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    arr = np.asarray(img, dtype=np.float32)
    gradient = np.linspace(-1, 1, CANVAS)[None, :] * rng.normal(0, 12)
    arr = arr + gradient + rng.normal(0, rng.uniform(0, 8), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def tilt(img: Image.Image, angle: float, shear: float, fill: int) -> Image.Image:
    """Shear (horizontal, about the page's centre) then rotate by ``angle`` degrees; the
    uncovered corners get ``fill`` (the paper)."""
    img = img.transform(img.size, Image.Transform.AFFINE,
                        (1, shear, -shear * CANVAS / 2, 0, 1, 0),
                        resample=Image.Resampling.BILINEAR, fillcolor=fill)
    return img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)


class FontCache:
    """FreeType faces by (file, face index, pixel size), loaded once; the file is the font's
    BMP or supplementary-plane file as ``char`` needs."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], ImageFont.FreeTypeFont] = {}

    def get(self, spec: FontSpec, char: str, px: int) -> ImageFont.FreeTypeFont:
        file = spec.files[0 if ord(char) < 0x10000 else 1]
        key = (file, spec.index, px)
        font = self._cache.get(key)
        if font is None:
            font = self._cache[key] = ImageFont.truetype(file, px, index=spec.index)
        return font


def load_nom_fonts(root: Path | None, size: int = 28, *, samples: int = 10,
                   cache_dir: Path | None = None, seed: int = 0,
                   progress: Progress | None = None) -> GlyphSet:
    """The rendered set as a GlyphSet: ``samples`` renderings per class."""
    if root is None:
        raise DataError(f"--dataset nom-fonts needs --data-root: {TSV} or its folder")
    tsv = find_tsv(Path(root))
    fonts = installed_fonts()
    try:
        crops, prefix = find_source(tsv.parent)
        exclude = set(read_class_table(crops, prefix))
    except DataError:
        exclude = set()
    with tsv.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if (r["kIRG_VSource"] or r["kVietnamese"]) and r["codepoint"] not in exclude]
    plan = [(r["codepoint"], r["char"], [f for f in fonts if r.get(f.column) == "1"])
            for r in rows]
    plan = [p for p in plan if p[2]]
    if len(plan) < 2:
        raise DataError(f"the installed fonts cover {len(plan)} Nôm characters")
    key_parts = [f.files for f in fonts] + [samples, seed, len(exclude)]
    key = f"nomfonts-{size}px-v{PREPROCESS_VERSION}-{signature([tsv], *key_parts)}"

    def build() -> GlyphSet:
        faces = FontCache()
        images = np.zeros((len(plan) * samples, size, size), dtype=np.uint8)
        for c, (_cp, char, covering) in enumerate(plan):
            rng = np.random.default_rng([seed, c])
            for s in range(samples):
                spec = covering[s % len(covering)]
                px = int(CANVAS * rng.uniform(0.7, 0.9))
                images[c * samples + s] = normalize(
                    render_sample(char, faces.get(spec, char, px), rng), size, ink="dark",
                    clean=True)
            if progress is not None and c % 200 == 0:
                progress(c / len(plan), f"rendered {c}/{len(plan)} characters")
        labels = torch.arange(len(plan)).repeat_interleave(samples)
        return GlyphSet(torch.from_numpy(images), labels, [p[0] for p in plan])

    return cached(cache_dir, key, build)


__all__ = ["FONTS", "FontCache", "FontSpec", "installed_fonts", "load_nom_fonts",
           "render_sample", "tilt"]
