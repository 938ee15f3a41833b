"""Nôm crops: loader (real slice when ../shared has it, else generated crops of the same
layout), print cleaning, and the nom-only split."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import SHARED
from trainer.data import DataError, load_dataset
from trainer.data.nom import find_source, load_nom
from trainer.data.splits import make_splits
from trainer.glyphs import clean_print, normalize

NOM_ZIP = SHARED / "nom" / "nom_woodblock_crops.zip"
HEADER = ["codepoint", "char", "n_images_in_zip", "n_boxes_in_source",
          "vietnam_only_irg_source", "ext_b_or_later", "private_use_area", "kIRG_VSource",
          "kVietnamese", "in_NomNaTong", "works"]


def _crop(rng: np.random.Generator, strokes: list) -> Image.Image:
    """A dark print on uneven gray paper, with a bit of a neighbour at the top edge."""
    h, w = 30, 26
    paper = np.linspace(170, 220, w)[None, :].repeat(h, 0) + rng.normal(0, 6, (h, w))
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for (x0, y0, x1, y1) in strokes:
        d.line([(x0 + rng.normal(0, .5), y0), (x1, y1 + rng.normal(0, .5))], fill=30, width=3)
    d.rectangle((8, 0, 12, 1), fill=40)  # neighbour's stroke cut by the crop
    return img


def make_nom_tree(root: Path, n_classes: int = 12, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for c in range(n_classes):
        cp = f"U+{0x4E00 + c:04X}"
        (root / cp).mkdir(parents=True)
        strokes = [tuple(rng.uniform(4, 22, 4)) for _ in range(3)]
        for i in range(per_class):
            _crop(rng, strokes).save(root / cp / f"{cp}_{i + 1:02d}.png")
        nom = c % 2 == 0
        rows.append([cp, chr(0x4E00 + c), per_class, per_class, "0", "0", "0", "", "",
                     "1", "Tale_of_Kieu_1866" if nom else "DVSKTT_ban_toan"])
    with (root / "classes.tsv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(HEADER)
        w.writerows(rows)
    return root


def test_generated_layout_and_nom_only_split(tmp_path):
    root = make_nom_tree(tmp_path / "nom_woodblock_crops")
    glyphs = load_dataset("nom", tmp_path, cache_dir=tmp_path / "cache")
    assert glyphs.num_classes == 12 and glyphs.images.shape == (72, 28, 28)
    assert glyphs.groups.count("nom") == 6
    assert glyphs.images[:, 0, 0].float().mean() < 10  # paper is gone, ink is high
    full, nom = make_splits(glyphs, "seed"), make_splits(glyphs, "nom-only")
    for part in ("train", "val", "test"):
        assert set(nom.part(part).class_names) <= set(full.part(part).class_names)
        assert set(nom.part(part).groups) <= {"nom"}
    assert find_source(root)[0] == root


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        load_nom(tmp_path, 28)
    glyphs = load_dataset("folder", make_nom_tree(tmp_path / "x"))  # no Nôm tags
    with pytest.raises(DataError, match="nom-only"):
        make_splits(glyphs, "nom-only")


def test_clean_print_drops_edge_bits_and_uneven_paper():
    img = np.full((40, 40), 0.2, np.float32) + np.linspace(0, 0.3, 40)[None, :]
    img[10:30, 18:22] = 1.0  # the character
    img[0:3, 2:8] = 0.9  # a neighbour's stroke at the edge
    out = clean_print(img)
    assert out[1, 4] == 0 and out[20, 20] > 0.9 and out[20, 35] == 0


@pytest.mark.skipif(not NOM_ZIP.is_file(), reason="needs ../shared/data/nom")
def test_real_crops_slice(tmp_path):
    """Twelve real classes cut from the zip, with their classes.tsv rows."""
    dest = tmp_path / "nom_woodblock_crops"
    with zipfile.ZipFile(NOM_ZIP) as zf:
        table = zf.read("nom_woodblock_crops/classes.tsv").decode("utf-8")
        rows = list(csv.reader(io.StringIO(table), delimiter="\t"))
        keep = rows[1:13]
        for row in keep:
            for name in zf.namelist():
                if name.startswith(f"nom_woodblock_crops/{row[0]}/"):
                    out = tmp_path / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(zf.read(name))
    with (dest / "classes.tsv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows([rows[0], *keep])
    glyphs = load_nom(dest, 28)
    assert glyphs.num_classes == 12 and set(glyphs.groups) <= {"nom", "han"}
    assert int(glyphs.counts().min()) >= 5
    # print comes out like every other source: ink high on a clean background
    assert glyphs.images[:, 0, :].float().mean() < 30 and glyphs.images.max() == 255
    with Image.open(next(dest.rglob("*.png"))) as im:
        assert normalize(im, 28, ink="dark", clean=True).shape == (28, 28)


def _tiny_tsv(folder: Path, chars: str) -> Path:
    from trainer.data.nom_fonts import FONTS

    cols = ["codepoint", "char", "block", "kIRG_VSource", "vietnam_only_source",
            "kVietnamese", "in_NomNaTong", "nomnaocr_val_freq", *[f.column for f in FONTS]]
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "nom_codepoints.tsv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(cols)
        for ch in chars:
            w.writerow([f"U+{ord(ch):04X}", ch, "", "V0-1", "1", "x", "1", "0",
                        *["1"] * len(FONTS)])
    return folder


def test_font_rendered_set_from_installed_fonts(tmp_path):
    from trainer.data.nom_fonts import installed_fonts, load_nom_fonts

    fonts = installed_fonts()  # .ci/run installs fonts-hanazono and fonts-babelstone-han
    root = _tiny_tsv(tmp_path / "d", "𠊛𠀧𠄩人")
    glyphs = load_nom_fonts(root, 28, samples=4)
    again = load_nom_fonts(root, 28, samples=4)
    assert glyphs.num_classes == 4 and glyphs.images.shape == (16, 28, 28)
    assert torch_equal(glyphs.images, again.images)  # seeded: reproducible
    assert len(fonts) >= 1
    # samples of one class differ (augmentation)
    assert not torch_equal(glyphs.images[0], glyphs.images[1])
    # the crop set's own characters are left out when it lies beside the TSV
    make_nom_tree(root / "nom_woodblock_crops", n_classes=2, per_class=5)
    (root / "nom_woodblock_crops" / "classes.tsv").write_text(
        "\t".join(HEADER) + "\nU+4EBA\t人\t5\t5\t0\t0\t0\t\t\t1\tx\n", encoding="utf-8")
    assert "U+4EBA" not in load_nom_fonts(root, 28, samples=2).class_names


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
