from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import HAS_OMNIGLOT, OMNIGLOT, make_class_tree
from trainer.data import DataError, load_dataset
from trainer.data.omniglot import load_omniglot
from trainer.data.sources import load_folder


def _zip_tree(root: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(root.rglob("*.png")):
            zf.write(f, f.relative_to(root).as_posix())
    return dest


def test_folder_and_zip_give_the_same_set(glyph_tree, glyph_set, tmp_path):
    assert glyph_set.num_classes == 60 and glyph_set.images.shape == (1200, 28, 28)
    assert glyph_set.images.dtype == torch.uint8
    assert glyph_set.class_names[0] == "alpha00/character01"
    zipped = load_folder(_zip_tree(glyph_tree, tmp_path / "g.zip"), 28)
    assert torch.equal(zipped.images, glyph_set.images)
    assert zipped.class_names == glyph_set.class_names


def test_cache_is_used_and_a_corrupt_cache_is_rebuilt(tmp_path):
    make_class_tree(tmp_path / "d", 3, 4)
    cache = tmp_path / "cache"
    first = load_folder(tmp_path / "d", 28, cache_dir=cache)
    (cached,) = cache.glob("*.pt")
    second = load_folder(tmp_path / "d", 28, cache_dir=cache)
    assert torch.equal(first.images, second.images)
    cached.write_bytes(b"not a torch file")
    third = load_folder(tmp_path / "d", 28, cache_dir=cache)
    assert torch.equal(first.images, third.images)


def test_broken_image_is_named(tmp_path):
    make_class_tree(tmp_path, 2, 3)
    bad = next(tmp_path.rglob("*.png"))
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=bad.name):
        load_folder(tmp_path, 28)


def test_non_images_are_ignored_and_too_few_classes_rejected(tmp_path):
    make_class_tree(tmp_path, 1, 3)
    (tmp_path / "alpha00" / "character01" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="at least 2"):
        load_folder(tmp_path, 28)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="--download"):
        load_omniglot(tmp_path / "nowhere", 28)
    with pytest.raises(DataError, match="--data-root"):
        load_dataset("omniglot", None)


def test_incomplete_omniglot_is_reported(tmp_path):
    make_class_tree(tmp_path / "images_background", 3, 20)
    make_class_tree(tmp_path / "images_evaluation", 2, 19)
    with pytest.raises(DataError, match=r"incomplete.*characters"):
        load_omniglot(tmp_path, 28)


@pytest.mark.skipif(not HAS_OMNIGLOT, reason="needs ../shared/data/omniglot")
def test_full_omniglot_from_the_rebuilt_zips(tmp_path):
    glyphs = load_omniglot(OMNIGLOT, 28, cache_dir=tmp_path)
    assert glyphs.num_classes == 1623 and glyphs.images.shape == (32460, 28, 28)
    assert glyphs.groups.count("background") == 964
    assert glyphs.class_names[0] == "Alphabet_of_the_Magi/character01"
    assert bool((glyphs.counts() == 20).all())
    # ink high, background low, like every other source
    assert glyphs.images[:, 0, 0].float().mean() < 5 and glyphs.images.max() == 255


@pytest.mark.skipif(not HAS_OMNIGLOT, reason="needs ../shared/data/omniglot")
def test_extracted_folder_in_torchvision_layout(tmp_path):
    """torchvision's folder (root/omniglot-py/images_*) works without the official MD5."""
    small = OMNIGLOT / "images_background_small1.zip"
    with zipfile.ZipFile(small) as zf:
        zf.extractall(tmp_path)
    dest = tmp_path / "omniglot-py"
    dest.mkdir()
    shutil.move(tmp_path / "images_background_small1", dest / "images_background")
    with pytest.raises(DataError, match="images_evaluation"):
        load_omniglot(tmp_path, 28)  # only a part is there: say which
    tree = load_folder(dest / "images_background", 28)
    assert tree.num_classes == 136
