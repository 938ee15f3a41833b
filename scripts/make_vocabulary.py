"""Build trainer/data/nom_vocabulary.tsv: the code points a Nôm lookup names.

    python scripts/make_vocabulary.py ../shared/data/nom

Vocabulary: every row of ``nom_codepoints.tsv`` with a Vietnamese IRG source or a quốc ngữ
reading (Unihan 15.0 kIRG_VSource / kVietnamese, Unicode License v3), plus every character
of the woodblock crop set (its ``classes.tsv``: code points only, no image). Font coverage
is the TSV's cmap columns; for crop characters the TSV lacks, it is probed with the fonts
installed here (a glyph that renders like the font's missing-glyph box is not covered).
Characters no font covers are kept out (they cannot be rendered for the lookup).
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from trainer.data.nom_fonts import FONTS

OUT = Path(__file__).resolve().parent.parent / "trainer" / "data" / "nom_vocabulary.tsv"
COLUMNS = [f.column for f in FONTS]
HEADER = ("# Nôm lookup vocabulary: code points with a Vietnamese source or reading (Unihan "
          "15.0, Unicode License v3) and the characters of the woodblock crop set.\n"
          "# Built by scripts/make_vocabulary.py. Columns: codepoint, char, in_crops, then 1 "
          "where the font (Debian package in trainer/data/nom_fonts.py) covers it.\n")


def probe(char: str, spec) -> bool:
    """True when ``spec``'s font draws ``char`` differently from a missing glyph."""
    file = spec.files[0 if ord(char) < 0x10000 else 1]
    if not Path(file).is_file():
        return False
    font = ImageFont.truetype(file, 48, index=spec.index)

    def draw(c: str) -> np.ndarray:
        img = Image.new("L", (64, 64), 0)
        ImageDraw.Draw(img).text((4, 4), c, fill=255, font=font)
        return np.asarray(img)

    ink = draw(char)
    return bool(ink.any()) and not np.array_equal(ink, draw("\U0010fffd"))


def main() -> None:
    root = Path(sys.argv[1])
    with (root / "nom_codepoints.tsv").open(encoding="utf-8") as f:
        rows = {r["codepoint"]: r for r in csv.DictReader(f, delimiter="\t")}
    with zipfile.ZipFile(root / "nom_woodblock_crops.zip") as zf:
        text = zf.read("nom_woodblock_crops/classes.tsv").decode("utf-8")
    crops = {r["codepoint"]: r for r in csv.DictReader(io.StringIO(text), delimiter="\t")}
    chosen = {cp for cp, r in rows.items() if r["kIRG_VSource"] or r["kVietnamese"]}
    chosen |= set(crops)
    out = []
    for cp in sorted(chosen, key=lambda c: int(c[2:], 16)):
        char = chr(int(cp[2:], 16))
        if cp in rows:
            cover = [rows[cp].get(c) == "1" for c in COLUMNS]
        else:
            cover = [probe(char, spec) for spec in FONTS]
        if any(cover):
            out.append((cp, char, int(cp in crops), *map(int, cover)))
    with OUT.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        f.write("\t".join(["codepoint", "char", "in_crops", *COLUMNS]) + "\n")
        for row in out:
            f.write("\t".join(map(str, row)) + "\n")
    dropped = len(chosen) - len(out)
    print(f"{len(out)} code points ({sum(r[2] for r in out)} with crops) -> {OUT}; "
          f"{dropped} no font covers left out")


if __name__ == "__main__":
    main()
