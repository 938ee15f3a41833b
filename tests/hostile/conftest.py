"""Fixtures of the hostile-input battery: bad inputs are built here, not stored."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import make_class_tree


def inked(seed: int = 0, size: int = 48):
    """A Glyph with ink (a few random strokes), as the canvas or a file gives it."""
    from nomgui.glyph import Glyph

    rng = np.random.default_rng(seed)
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    for _ in range(3):
        d.line([tuple(rng.uniform(5, size - 5, 2)) for _ in range(3)], fill=0, width=4)
    return Glyph(np.asarray(img, dtype=np.uint8), (), f"glyph{seed}")


def blank():
    from nomgui.glyph import Glyph

    return Glyph(np.full((48, 48), 255, np.uint8), (), "blank.png")


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (not following links) and a hash of its bytes."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = ("link:" + os.readlink(p)) if p.is_symlink() else \
                hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A folder beside the data folder that no store operation may touch."""
    root = tmp_path / "outside"
    (root / "victim").mkdir(parents=True)
    (root / "victim" / "precious.txt").write_text("do not delete")
    (root / "x").mkdir()
    Image.new("L", (8, 8), 0).save(root / "x" / "keep.png")
    (root / "secret.txt").write_text("private")
    return root


@pytest.fixture(scope="session")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 generated classes x 6 drawings: a folder data set the trainer reads in a second."""
    root = tmp_path_factory.mktemp("hostile_glyphs")
    make_class_tree(root, classes=8, per_class=6, seed=3)
    return root


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid (untrained) ProtoNet model file."""
    from trainer import checkpoint as ckpt
    from trainer.learners import create_learner

    path = tmp_path_factory.mktemp("hostile_model") / "good.pt"
    ckpt.save(ckpt.model_payload(create_learner("protonet", {"hidden": 8})), path)
    return path


def one_line(text: str) -> bool:
    lines = [x for x in text.splitlines() if x.strip()]
    return len(lines) == 1 and "Traceback" not in text
