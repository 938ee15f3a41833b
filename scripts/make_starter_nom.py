"""Render the bundled Nôm starter class set: the 20 most frequent Vietnamese-coined characters
(in NomNaOCR's validation text) that have a quốc ngữ reading, each in three free fonts:
HanaMin (fonts-hanazono; Hanazono/OFL), TW-Sung (fonts-cns11643-sung; OGDL-TW-1.0),
BabelStone Han (fonts-babelstone-han; Arphic PL + CC-BY-SA).

    python scripts/make_starter_nom.py ../shared/data/nom/nom_codepoints.tsv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = {  # name: (file for the BMP, file for the supplementary planes), Debian package
    "hanazono": (("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
                  "/usr/share/fonts/truetype/hanazono/HanaMinB.ttf"), "fonts-hanazono"),
    "tw_sung": (("/usr/share/fonts/truetype/cns11643/TW-Sung-98_1.ttf",
                 "/usr/share/fonts/truetype/cns11643/TW-Sung-Ext-B-98_1.ttf"),
                "fonts-cns11643-sung"),
    "babelstone": (("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf",) * 2,
                   "fonts-babelstone-han"),
}
OUT = Path(__file__).resolve().parent.parent / "resources" / "starter" / "nom"
COUNT = 20


def render(char: str, font_file: str, size: int = 96) -> np.ndarray | None:
    """Dark on white, centred; None when the font has no glyph (it draws .notdef)."""
    font = ImageFont.truetype(font_file, int(size * 0.8))

    def draw(c: str) -> np.ndarray:
        img = Image.new("L", (size, size), 255)
        d = ImageDraw.Draw(img)
        box = d.textbbox((0, 0), c, font=font)
        d.text(((size - box[2] - box[0]) / 2, (size - box[3] - box[1]) / 2), c, fill=0,
               font=font)
        return np.asarray(img)

    out, missing = draw(char), draw("\U0010fffd")
    return None if np.array_equal(out, missing) or out.min() > 128 else out


def main() -> None:
    for files, package in FONTS.values():
        for f in files:
            if not Path(f).is_file():
                sys.exit(f"font {f} is missing: apt-get install {package}")
    with open(sys.argv[1], encoding="utf-8") as f:
        # Nôm proper: coined in Vietnam (only a Vietnamese IRG source), with a reading.
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if r["kVietnamese"].strip() and r["vietnam_only_source"] == "1"]
    rows.sort(key=lambda r: -int(r["nomnaocr_val_freq"] or 0))
    done = 0
    for r in rows:
        char = r["char"]
        plane = 0 if ord(char) < 0x10000 else 1
        images = {n: render(char, files[plane]) for n, (files, _) in FONTS.items()}
        if any(v is None for v in images.values()):
            continue
        folder = OUT / char
        folder.mkdir(parents=True, exist_ok=True)
        for n, img in images.items():
            Image.fromarray(img).save(folder / f"{n}.png", optimize=True)
        done += 1
        if done == COUNT:
            break
    print(f"wrote {done} characters to {OUT}")


if __name__ == "__main__":
    main()
