"""Data sets by name: what the CLI's --dataset and the GUI's dialog offer."""

from __future__ import annotations

from pathlib import Path

from trainer.data.glyphset import GlyphSet
from trainer.data.omniglot import load_omniglot
from trainer.data.sources import DataError, Progress, load_folder

DATASETS = {
    "omniglot": "Omniglot, 1,623 handwritten characters x 20 (torchvision download or zips)",
    "folder": "any folder or .zip of class folders of glyph images (--data-root)",
}

__all__ = ["DATASETS", "DataError", "GlyphSet", "load_dataset"]


def load_dataset(name: str, root: Path | None, *, size: int = 28,
                 cache_dir: Path | None = None, download: bool = False,
                 progress: Progress | None = None) -> GlyphSet:
    """The whole data set ``name`` as one in-memory GlyphSet (cached in ``cache_dir``)."""
    if name == "omniglot":
        return load_omniglot(root, size, cache_dir=cache_dir, download=download,
                             progress=progress)
    if name == "folder":
        if root is None:
            raise DataError("--dataset folder needs --data-root: a folder of class folders")
        return load_folder(Path(root), size, cache_dir=cache_dir, progress=progress)
    raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
