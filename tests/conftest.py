"""Shared fixtures. Qt runs offscreen; data comes from ../shared when present, else is made."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OMNIGLOT = SHARED / "omniglot"
HAS_OMNIGLOT = (OMNIGLOT / "images_background.zip").is_file() and (
    OMNIGLOT / "images_evaluation.zip").is_file()


def glyph_strokes(rng: np.random.Generator) -> list[np.ndarray]:
    """A random 'character': 2-4 polylines of 3 points in the unit square."""
    return [rng.uniform(0.15, 0.85, size=(3, 2)) for _ in range(rng.integers(2, 5))]


def draw_glyph(strokes: list[np.ndarray], rng: np.random.Generator, size: int = 105,
               jitter: float = 0.03) -> Image.Image:
    """One drawing of a character: black ink on white, like Omniglot, with hand jitter."""
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    shift = rng.normal(0, 0.04, size=2)
    for pts in strokes:
        p = (pts + shift + rng.normal(0, jitter, size=pts.shape)) * size
        d.line([tuple(q) for q in p], fill=0, width=int(rng.integers(5, 8)), joint="curve")
    return img


def make_class_tree(root: Path, classes: int, per_class: int, seed: int = 0,
                    prefix: str = "") -> list[str]:
    """Write a class-folder tree of generated glyphs; returns class names."""
    rng = np.random.default_rng(seed)
    names = []
    for c in range(classes):
        name = f"{prefix}alpha{c // 10:02d}/character{c % 10 + 1:02d}"
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        strokes = glyph_strokes(rng)
        for i in range(per_class):
            draw_glyph(strokes, rng).save(folder / f"{c:04d}_{i + 1:02d}.png")
        names.append(name)
    return names


@pytest.fixture(scope="session")
def glyph_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 generated classes x 20 drawings, as a class-folder tree."""
    root = tmp_path_factory.mktemp("glyphs")
    make_class_tree(root, classes=60, per_class=20)
    return root


@pytest.fixture(scope="session")
def glyph_set(glyph_tree: Path, tmp_path_factory: pytest.TempPathFactory):
    from trainer.data.sources import load_folder

    return load_folder(glyph_tree, 28, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def omniglot_or_generated(glyph_set, tmp_path_factory: pytest.TempPathFactory):
    """(name, GlyphSet): real Omniglot when ../shared has it, else the generated set."""
    if HAS_OMNIGLOT:
        from trainer.data.omniglot import load_omniglot

        return "omniglot", load_omniglot(OMNIGLOT, 28,
                                         cache_dir=tmp_path_factory.mktemp("ocache"))
    return "generated", glyph_set
