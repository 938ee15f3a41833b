"""Omniglot (Lake et al. 2015): 1,623 characters x 20 drawers, 105x105, black ink on white.

Sources, tried in this order under ``root`` (and ``root/omniglot-py``, torchvision's folder,
and ``root/omniglot``):

* extracted folders ``images_background/`` and ``images_evaluation/`` (official layout);
* the zips ``images_background.zip`` and ``images_evaluation.zip``, read in place;
* with ``download=True``, torchvision's :class:`~torchvision.datasets.Omniglot` downloads and
  extracts the official zips into ``root/omniglot-py`` first.

torchvision's class insists on the official zips' MD5 even with ``download=False``; rebuilt
zips (same images, other MD5) fail it. So the layout is verified here instead: alphabet and
character counts, 20 drawings per character. Class order equals torchvision's (sorted
alphabets, then sorted characters), background before evaluation.
"""

from __future__ import annotations

from pathlib import Path

from trainer.data.glyphset import GlyphSet
from trainer.data.sources import (
    DataError,
    ImageRef,
    Progress,
    cached,
    decode_classes,
    scan_tree,
    signature,
)
from trainer.glyphs import PREPROCESS_VERSION

# part -> (alphabets, characters) of the official release.
LAYOUT = {"images_background": (30, 964), "images_evaluation": (20, 659)}
DRAWERS = 20

HOW_TO_GET = (
    "Get Omniglot in one of these ways:\n"
    "  * pass --download to let torchvision fetch the official zips into --data-root;\n"
    "  * or put images_background.zip and images_evaluation.zip (from "
    "github.com/brendenlake/omniglot, folder python/) in a folder and pass it as --data-root;\n"
    "  * or pass a folder holding the extracted images_background/ and images_evaluation/."
)


def _find_part(root: Path, part: str) -> Path | None:
    """The folder or zip that holds ``part``, or None."""
    for base in (root, root / "omniglot-py", root / "omniglot"):
        if (base / part).is_dir():
            return base
        if (base / f"{part}.zip").is_file():
            return base / f"{part}.zip"
    return None


def _download(root: Path) -> None:
    from torchvision.datasets import Omniglot

    for background in (True, False):
        try:
            Omniglot(str(root), background=background, download=True)
        except Exception as exc:
            raise DataError(f"downloading Omniglot into {root} failed: {exc}\n{HOW_TO_GET}") \
                from exc


def verify(part: str, classes: dict[str, list[ImageRef]], where: Path) -> None:
    """Raise :class:`DataError` unless ``classes`` is the complete official ``part``."""
    want_alphabets, want_chars = LAYOUT[part]
    alphabets = {name.split("/")[0] for name in classes}
    bad = [name for name, refs in classes.items() if len(refs) != DRAWERS]
    problems = []
    if len(alphabets) != want_alphabets:
        problems.append(f"{len(alphabets)} alphabets (expected {want_alphabets})")
    if len(classes) != want_chars:
        problems.append(f"{len(classes)} characters (expected {want_chars})")
    if bad:
        problems.append(f"{len(bad)} characters without exactly {DRAWERS} drawings, "
                        f"e.g. {bad[0]}")
    if problems:
        raise DataError(f"Omniglot {part} in {where} is incomplete: " + "; ".join(problems)
                        + f"\n{HOW_TO_GET}")


def load_omniglot(
    root: Path | None,
    size: int = 28,
    *,
    cache_dir: Path | None = None,
    download: bool = False,
    progress: Progress | None = None,
) -> GlyphSet:
    """All 1,623 Omniglot characters as one GlyphSet; ``groups`` says background/evaluation."""
    if root is None:
        raise DataError(f"no Omniglot data folder given (--data-root).\n{HOW_TO_GET}")
    root = Path(root).expanduser()
    if download:
        root.mkdir(parents=True, exist_ok=True)
        if any(_find_part(root, p) is None for p in LAYOUT):
            _download(root)
    found = {part: _find_part(root, part) for part in LAYOUT}
    missing = [p for p, where in found.items() if where is None]
    if missing:
        raise DataError(f"Omniglot not found in {root}: no {' or '.join(missing)} "
                        f"(folder or .zip).\n{HOW_TO_GET}")

    parts = {part: scan_tree(where, f"{part}/") for part, where in found.items()}
    for part, classes in parts.items():
        verify(part, classes, found[part])
    files = [w if w.suffix == ".zip" else w / p for p, w in found.items()]
    sig = signature([f for f in files if f.is_file()],
                    *[f"{k}:{len(v)}" for k, v in parts.items()], *files)
    key = f"omniglot-{size}px-v{PREPROCESS_VERSION}-{sig}"

    def build() -> GlyphSet:
        sets = [
            decode_classes(classes, size, ink="dark",
                           groups=dict.fromkeys(classes, part.removeprefix("images_")),
                           progress=progress)
            for part, classes in parts.items()
        ]
        return GlyphSet.concat(sets)

    return cached(cache_dir, key, build)
