from __future__ import annotations

import pytest
import torch

from trainer.data import DataError, GlyphSet
from trainer.data.episodes import EpisodeSampler, random_affine, rot90_batch
from trainer.data.splits import make_splits


def _ids_set(classes: int, per_class: int) -> GlyphSet:
    """Each image encodes (class, index) in its pixels so episodes can be traced back."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    images = torch.zeros(classes * per_class, 4, 4, dtype=torch.uint8)
    images[:, 0, 0] = labels.to(torch.uint8)
    images[:, 0, 1] = torch.arange(per_class).repeat(classes).to(torch.uint8)
    return GlyphSet(images, labels, [f"c{i}" for i in range(classes)])


def _trace(x: torch.Tensor) -> torch.Tensor:
    """(..., 1, 4, 4) float -> (..., 2) ints (class, index)."""
    px = (x[..., 0, 0, :2] * 255).round().long()
    return px


def test_episode_invariants():
    glyphs = _ids_set(30, 20)
    s = EpisodeSampler(glyphs, 5, 2, 3, 8, generator=torch.Generator().manual_seed(0))
    ep = s.sample()
    assert ep.support_x.shape == (8, 10, 1, 4, 4) and ep.query_x.shape == (8, 15, 1, 4, 4)
    for t in range(8):
        sup, qry = _trace(ep.support_x[t]), _trace(ep.query_x[t])
        assert set(ep.support_y[t].tolist()) == set(range(5))
        # the N classes are distinct, labels map one-to-one onto classes
        mapping = {int(y): int(c) for y, c in zip(ep.support_y[t], sup[:, 0], strict=True)}
        assert len(set(mapping.values())) == 5
        for y, c in zip(ep.query_y[t], qry[:, 0], strict=True):
            assert mapping[int(y)] == int(c)
        # support and query share no image
        assert not {tuple(r) for r in sup.tolist()} & {tuple(r) for r in qry.tolist()}


def test_sampler_is_reproducible_and_resumable():
    glyphs = _ids_set(30, 20)
    a = EpisodeSampler(glyphs, 5, 1, 2, 4, generator=torch.Generator().manual_seed(3))
    b = EpisodeSampler(glyphs, 5, 1, 2, 4, generator=torch.Generator().manual_seed(3))
    a.sample()
    state = a.state_dict()
    b.load_state_dict(state)
    assert torch.equal(a.sample().query_x, b.sample().query_x)


def test_small_classes_are_skipped_and_too_few_classes_rejected():
    glyphs = GlyphSet.concat([_ids_set(4, 20), _ids_set(10, 3)])
    s = EpisodeSampler(glyphs, 4, 1, 5, 16, generator=torch.Generator().manual_seed(0))
    assert bool((_trace(s.sample().support_x)[..., 1] < 20).all())
    assert set(s.eligible.tolist()) == {0, 1, 2, 3}
    with pytest.raises(DataError, match="need 5 classes"):
        EpisodeSampler(glyphs, 5, 1, 5, 1, generator=torch.Generator())


def test_rotations_make_new_classes():
    glyphs = _ids_set(2, 20)
    s = EpisodeSampler(glyphs, 8, 1, 1, 1, generator=torch.Generator().manual_seed(0),
                       rotations=True)
    ep = s.sample()  # 8-way from 2 classes only works with 4 rotations each
    assert ep.support_x.shape[1] == 8
    img = torch.arange(16, dtype=torch.uint8).view(1, 4, 4).repeat(4, 1, 1)
    out = rot90_batch(img, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out[0], img[0]) and torch.equal(out[2], torch.rot90(img[0], 2))


def test_affine_keeps_shape_and_range():
    x = torch.rand(6, 1, 28, 28)
    y = random_affine(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.equal(x, y)


def test_seed_split_is_the_seminar_one_and_disjoint():
    glyphs = _ids_set(1623, 1)
    s = make_splits(glyphs, "seed")
    assert (s.train.num_classes, s.val.num_classes, s.test.num_classes) == (1100, 100, 423)
    names = [set(p.class_names) for p in (s.train, s.val, s.test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert s.pretrain.num_classes == 1200
    # which classes each part holds is checked against stored hashes in test_splits.py


def test_lake_split_uses_the_official_parts():
    base = _ids_set(20, 1)
    glyphs = GlyphSet(base.images, base.labels, base.class_names,
                      ["background"] * 12 + ["evaluation"] * 8)
    with pytest.raises(DataError, match="background"):  # 12 cannot give 100 for validation
        make_splits(glyphs, "lake")
    big = _ids_set(300, 1)
    glyphs = GlyphSet(big.images, big.labels, big.class_names,
                      ["background"] * 200 + ["evaluation"] * 100)
    s = make_splits(glyphs, "lake")
    assert (s.train.num_classes, s.val.num_classes, s.test.num_classes) == (100, 100, 100)
    assert set(s.test.groups) == {"evaluation"} and set(s.val.groups) == {"background"}
