"""Chữ Nôm: real woodblock crops, and the Nôm-only view of them.

The crop set (``nom_woodblock_crops.zip``, or the same layout as a folder) holds one folder
per code point (``U+XXXX``) of 5-20 grayscale crops at scan resolution, dark ink on uneven
paper, plus ``classes.tsv``. Crops are normalised with ``clean=True`` (see
:func:`trainer.glyphs.clean_print`), the step the app applies to loaded scans as well.

Each class is tagged ``nom`` when it is Nôm proper (it occurs in a Nôm work: Truyện Kiều or
Lục Vân Tiên, or is Nôm-specific by code point: a Vietnamese-only IRG source, CJK Ext B or
later, or a private-use Nôm code point) and ``han`` otherwise; the ``nom-only`` split keeps
the ``nom`` classes of each part of the ``seed`` split.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError, Progress, cached, decode_classes, scan_tree, signature
from trainer.glyphs import PREPROCESS_VERSION

CODEPOINT = re.compile(r"U\+[0-9A-Fa-f]{4,6}")
ZIP_NAME = "nom_woodblock_crops.zip"
FOLDER = "nom_woodblock_crops"
NOM_WORKS = ("Tale_of_Kieu_1866", "Tale_of_Kieu_1871", "Tale_of_Kieu_1872", "nlvnpf-0059")
PREPROCESS = {"ink": "dark", "clean": True}

HOW_TO_GET = (
    f"Pass --data-root pointing at {ZIP_NAME}, at a folder holding it (or a nom/ folder "
    f"with it), or at a folder of the same layout: one folder per character named U+XXXX "
    "with its crops inside (classes.tsv beside them tags the Nôm-proper classes).")


def find_source(root: Path) -> tuple[Path, str]:
    """(folder or zip, prefix of the class folders inside it)."""
    root = Path(root).expanduser()
    if root.is_file() and root.suffix.lower() == ".zip":
        with zipfile.ZipFile(root) as zf:
            has_prefix = any(n.startswith(f"{FOLDER}/") for n in zf.namelist()[:10])
        return root, f"{FOLDER}/" if has_prefix else ""
    for base in (root, root / "nom"):
        if (base / ZIP_NAME).is_file():
            return base / ZIP_NAME, f"{FOLDER}/"
        if (base / FOLDER).is_dir():
            return base / FOLDER, ""
    if root.is_dir() and any(p.name.startswith("U+") for p in root.iterdir() if p.is_dir()):
        return root, ""
    raise DataError(f"no Nôm crop set found in {root}.\n{HOW_TO_GET}")


def read_class_table(source: Path, prefix: str) -> dict[str, dict[str, str]]:
    """classes.tsv as {codepoint: row}; empty when the source has none."""
    try:
        if source.suffix.lower() == ".zip":
            with zipfile.ZipFile(source) as zf:
                text = zf.read(f"{prefix}classes.tsv").decode("utf-8")
        else:
            text = (source / "classes.tsv").read_text(encoding="utf-8")
    except (KeyError, FileNotFoundError):
        return {}
    return {row["codepoint"]: row for row in csv.DictReader(io.StringIO(text), delimiter="\t")}


def is_nom_proper(row: dict[str, str]) -> bool:
    works = row.get("works", "").split()
    return (any(w in NOM_WORKS for w in works)
            or any(row.get(k) == "1" for k in ("vietnam_only_irg_source", "ext_b_or_later",
                                               "private_use_area")))


def load_nom(root: Path | None, size: int = 28, *, cache_dir: Path | None = None,
             progress: Progress | None = None) -> GlyphSet:
    """All crop classes as one GlyphSet; ``groups`` is ``nom`` / ``han`` (or empty)."""
    if root is None:
        raise DataError(f"no Nôm data given (--data-root).\n{HOW_TO_GET}")
    source, prefix = find_source(Path(root))
    classes = scan_tree(source, prefix)
    if len(classes) < 2:
        raise DataError(f"{source} holds {len(classes)} character folders.\n{HOW_TO_GET}")
    # Check the layout before training on it: any zip of class folders scans, and a model
    # trained on (say) Omniglot's would otherwise be tagged and cleaned as Nôm.
    odd = next((c for c in classes if not CODEPOINT.fullmatch(c)), None)
    if odd is not None:
        raise DataError(f"{source} is not a Nôm crop set: its class folder {odd!r} is not "
                        "named after a code point (U+XXXX), as every crop folder is")
    table = read_class_table(source, prefix)
    groups = ({name: "nom" if is_nom_proper(table.get(name, {})) else "han"
               for name in classes} if table else None)
    files = [source] if source.is_file() else [r.container / r.member
                                               for refs in classes.values() for r in refs]
    key = f"nom-{size}px-v{PREPROCESS_VERSION}-{signature(files, 'clean', bool(table))}"
    return cached(cache_dir, key, lambda: decode_classes(
        classes, size, ink="dark", clean=True, groups=groups, progress=progress))
