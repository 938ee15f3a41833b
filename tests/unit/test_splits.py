"""The published splits, checked against stored hashes of their class names.

Omniglot's 1,623 class names are rebuilt without the data: the Vinyals lists name every
character, and the 20 evaluation alphabets below tell background from evaluation. Class
order is the loader's (background, then evaluation; sorted names). With ../shared's
Omniglot the real names are checked to be exactly these.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from tests.conftest import HAS_OMNIGLOT, OMNIGLOT
from trainer.checkpoint import names_hash
from trainer.config import TrainConfig
from trainer.data.glyphset import GlyphSet
from trainer.data.sources import DataError
from trainer.data.splits import VINYALS_DIR, make_splits, read_vinyals

EVALUATION_ALPHABETS = {
    "Angelic", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta", "Ge_ez",
    "Glagolitic", "Gurmukhi", "Kannada", "Keble", "Malayalam", "Manipuri", "Mongolian",
    "Old_Church_Slavonic_(Cyrillic)", "Oriya", "Sylheti", "Syriac_(Serto)", "Tengwar",
    "Tibetan", "ULOG"}
ALL_NAMES = "fb697c7dbe6cc84333b7b3e2841332da1d35015a1cf446f482444b14647235c4"
# split -> (classes, sha256 of the names in order) of train, val, test
EXPECTED = {
    "seed": [(1100, "67b29bad333f154fce2fd284a6058711676863fc59cfbd2c8c2828b81f3a514b"),
             (100, "6c00ddd0be095922e1310b30d32267222a7f8518a0429349640bcd5167cd428f"),
             (423, "78dbc2ba4d0eb5dc41cf6f8423c258dec52150f2b34ddacf4388348f26aeaa21")],
    "lake": [(864, "0c62e85327cef999f662d2200fa134353d502f7f5efe9aa929fb714aee0bc61c"),
             (100, "50b8e3cde06b64525326bef09deceda05aaa4a8f04b1140e6029cd6f7c8b5d15"),
             (659, "74ef7f7b66c3873a2127f490445c5f471c25e0490318b7613c9dda3e8cc5cf3a")],
    "vinyals": [(4112, "16ce2fdd6e167792430b6085d2b60a1fb317c2a634cc8df1fe299b11fbc81320"),
                (688, "e4b1922a00228517b260689e24c498bcd5df11e81e82cb32197d01e5639a5884"),
                (1692, "0d1c2bcec24fd424d0566bb0c9daa2d813e575ab477e61d6c43a57011ee5a235")],
}
# sha256 of the shipped list files: jakesnell/prototypical-networks at c9bb4d2, unchanged
LIST_FILES = {"train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
              "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
              "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204"}


def omniglot_names() -> tuple[list[str], list[str]]:
    """(class names, groups) of Omniglot in the loader's order, from the Vinyals lists."""
    chars = {e.rsplit("/", 1)[0] for part in read_vinyals().values() for e in part}
    background = sorted(c for c in chars if c.split("/")[0] not in EVALUATION_ALPHABETS)
    evaluation = sorted(c for c in chars if c.split("/")[0] in EVALUATION_ALPHABETS)
    return background + evaluation, ["background"] * len(background) + [
        "evaluation"] * len(evaluation)


def fake_omniglot() -> GlyphSet:
    """Omniglot's names and groups, one asymmetric 3 x 3 image per class (rotations show)."""
    names, groups = omniglot_names()
    images = torch.zeros(len(names), 3, 3, dtype=torch.uint8)
    images[:, 0, 0] = 255
    images[:, 0, 1] = 1
    return GlyphSet(images, torch.arange(len(names)), names, groups)


def test_shipped_vinyals_lists_are_the_published_ones():
    for part, digest in LIST_FILES.items():
        data = (VINYALS_DIR / f"{part}.txt").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, part
    shared = OMNIGLOT / "splits" / "vinyals"
    if shared.is_dir():
        for part in LIST_FILES:
            assert (shared / f"{part}.txt").read_bytes() == (
                VINYALS_DIR / f"{part}.txt").read_bytes()
    assert (VINYALS_DIR / "LICENSE").is_file() and "Jake Snell" in (
        VINYALS_DIR / "README.txt").read_text()


def test_rebuilt_names_are_omniglot():
    names, groups = omniglot_names()
    assert len(names) == 1623 and groups.count("background") == 964
    assert names_hash(names) == ALL_NAMES


@pytest.mark.skipif(not HAS_OMNIGLOT, reason="needs ../shared/data/omniglot")
def test_real_omniglot_has_exactly_these_names(tmp_path):
    from trainer.data.omniglot import load_omniglot

    real = load_omniglot(OMNIGLOT, 28, cache_dir=tmp_path)
    assert names_hash(real.class_names) == ALL_NAMES
    assert real.groups == omniglot_names()[1]


@pytest.mark.parametrize("split", sorted(EXPECTED))
def test_split_class_names_match_stored_hashes(split):
    s = make_splits(fake_omniglot(), split)
    got = [(p.num_classes, names_hash(p.class_names)) for p in (s.train, s.val, s.test)]
    assert got == EXPECTED[split]
    chars = [{n.rsplit("/rot", 1)[0] for n in p.class_names} for p in (s.train, s.val, s.test)]
    assert not (chars[0] & chars[1] or chars[0] & chars[2] or chars[1] & chars[2])


def test_vinyals_parts_are_rotated_characters():
    s = make_splits(fake_omniglot(), "vinyals")
    assert {len({n.rsplit("/rot", 1)[0] for n in p.class_names})
            for p in (s.train, s.val, s.test)} == {1028, 172, 423}
    test = s.test
    assert test.class_names[:2] == ["Gurmukhi/character42/rot000",
                                    "Gurmukhi/character42/rot090"]
    upright, turned = test.images[0], test.images[1]
    assert torch.equal(torch.rot90(upright, 1, (0, 1)), turned)  # counter-clockwise
    assert not torch.equal(upright, turned)
    # test alphabets are mostly whole: 12 of its 13 alphabets are wholly in test
    alpha = {n.split("/")[0] for n in test.class_names}
    other = {n.split("/")[0] for p in (s.train, s.val) for n in p.class_names}
    assert len(alpha) == 13 and len(alpha - other) == 12


def test_vinyals_needs_omniglot_and_no_extra_rotations():
    names, _ = omniglot_names()
    plain = GlyphSet(torch.zeros(len(names), 3, 3, dtype=torch.uint8),
                     torch.arange(len(names)), names)
    with pytest.raises(DataError, match="Omniglot only"):
        make_splits(plain, "vinyals")
    with pytest.raises(ValueError, match="drop --rotations"):
        TrainConfig(algo="protonet", split="vinyals", rotations=True)
