"""Data sets by name: what the CLI's --dataset and the GUI's dialog offer."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from trainer.data.glyphset import GlyphSet
from trainer.data.nom import load_nom
from trainer.data.nom_fonts import load_nom_fonts
from trainer.data.omniglot import load_omniglot
from trainer.data.sources import DataError, Progress, load_folder

DATASETS = {
    "omniglot": "Omniglot, 1,623 handwritten characters x 20 (torchvision download or zips)",
    "nom": "Chữ Nôm / Hán-Nôm woodblock crops, 4,261 characters x 5-20 (nom_woodblock_crops)",
    "nom-fonts": "Nôm code points rendered with Debian's free CJK fonts (nom_codepoints.tsv)",
    "nom-lookup": "Nôm lookup training: woodblock-like renderings of every vocabulary code "
                  "point + crops of the crop set's training characters (pretrain; meta-train "
                  "--algo protonet: renderings as support, crops as queries)",
    "folder": "any folder or .zip of class folders of glyph images (--data-root)",
}
# Data sets of scanned print: their glyphs, and anything a model trained on them is shown,
# go through trainer.glyphs.clean_print.
CLEAN_PRINT = {"nom", "nom-fonts", "nom-lookup"}

__all__ = ["CLEAN_PRINT", "DATASETS", "DataError", "GlyphSet", "load_dataset",
           "preprocess_for"]


def preprocess_for(dataset: str) -> dict[str, bool]:
    """Options of :func:`trainer.glyphs.normalize` that a model trained on ``dataset`` needs."""
    return {"clean": dataset in CLEAN_PRINT}


def load_dataset(name: str, root: Path | None, *, size: int = 28,
                 cache_dir: Path | None = None, download: bool = False,
                 progress: Progress | None = None) -> GlyphSet:
    """The whole data set ``name`` as one in-memory GlyphSet (cached in ``cache_dir``).
    A damaged zip anywhere on the way is a :class:`DataError` naming it."""
    try:
        return _load(name, root, size=size, cache_dir=cache_dir, download=download,
                     progress=progress)
    except (zipfile.BadZipFile, EOFError, NotImplementedError, zlib.error) as exc:
        raise DataError(f"{root} holds a damaged or unsupported zip: "
                        f"{exc or exc.__class__.__name__}") from exc


def _load(name: str, root: Path | None, *, size: int, cache_dir: Path | None,
          download: bool, progress: Progress | None) -> GlyphSet:
    if name == "omniglot":
        return load_omniglot(root, size, cache_dir=cache_dir, download=download,
                             progress=progress)
    if name == "nom":
        return load_nom(root, size, cache_dir=cache_dir, progress=progress)
    if name == "nom-fonts":
        return load_nom_fonts(root, size, cache_dir=cache_dir, progress=progress)
    if name == "nom-lookup":
        raise DataError("nom-lookup is a training set for `nomgui-train pretrain` and "
                        "`meta-train --algo protonet` (renderings of the whole vocabulary "
                        "plus crops); evaluate a lookup model with `evaluate --lookup "
                        "--dataset nom`")
    if name == "folder":
        if root is None:
            raise DataError("--dataset folder needs --data-root: a folder of class folders")
        return load_folder(Path(root), size, cache_dir=cache_dir, progress=progress)
    raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
