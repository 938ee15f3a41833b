"""The Nôm lookup: vocabulary, renderings, the lookup protocol and its seen-crop guard, the
cosine learner, and a lookup training run end to end on a small vocabulary.

Crops are made here (woodblock-like renderings of vocabulary characters written as a crop
set folder), so nothing needs ../shared; the fonts are the two .ci/run installs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFont

from trainer import checkpoint as ckpt
from trainer.cli import main as cli_main
from trainer.data import nom_lookup
from trainer.data.nom_fonts import CANVAS, installed_fonts
from trainer.data.nom_lookup import (
    clean_rendering,
    load_vocabulary,
    render_support,
    woodblock_sample,
)
from trainer.learners import create_learner
from trainer.learners.cosine import class_directions
from trainer.lookup import lookup_accuracy, proportion_ci, zoom, zoomed

N_CLASSES = 60


def test_vocabulary_covers_the_crop_set_and_every_entry_has_a_font():
    vocab = load_vocabulary()
    assert len(vocab) > 13_000
    assert len(set(vocab.codepoints)) == len(vocab)
    assert all(vocab.fonts), "a code point no font covers cannot be rendered"
    assert sum(vocab.in_crops) > 4_000
    assert all(chr(int(cp[2:], 16)) == ch for cp, ch in zip(vocab.codepoints, vocab.chars,
                                                             strict=True))


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory) -> Path:
    """A vocabulary file of the first N_CLASSES code points both test fonts cover."""
    vocab = load_vocabulary()
    rows = [i for i, f in enumerate(vocab.fonts)
            if {"hanazono", "babelstone"} <= set(f)][:N_CLASSES]
    path = tmp_path_factory.mktemp("vocab") / "vocab.tsv"
    cols = ["hanazono", "babelstone", "tw_sung", "tw_kai", "noto_serif_tc"]
    lines = ["codepoint\tchar\tin_crops\t" + "\t".join(cols)]
    for i in rows:
        lines.append(f"{vocab.codepoints[i]}\t{vocab.chars[i]}\t1\t"
                     + "\t".join("1" if c in ("hanazono", "babelstone") else "0" for c in cols))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def crop_tree(small_vocab, tmp_path_factory) -> Path:
    """A crop-set folder (U+XXXX/*.png) of woodblock-like renderings, 6 per character."""
    vocab = load_vocabulary(small_vocab)
    fonts = installed_fonts()
    root = tmp_path_factory.mktemp("crops")
    for c, (cp, ch) in enumerate(zip(vocab.codepoints, vocab.chars, strict=True)):
        rng = np.random.default_rng(100 + c)
        folder = root / cp
        folder.mkdir()
        for s in range(6):
            spec = fonts[s % len(fonts)]
            font = ImageFont.truetype(spec.files[0 if ord(ch) < 0x10000 else 1], 48,
                                      index=spec.index)
            woodblock_sample(ch, font, rng, lambda f=font, c=ch: (c, f)).save(folder / f"{s}.png")
    return root


def test_support_has_one_clean_rendering_per_installed_covering_font(small_vocab):
    vocab = load_vocabulary(small_vocab)
    fonts = [f for f in installed_fonts() if f.column in ("hanazono", "babelstone")]
    support = render_support(vocab, 28, fonts=fonts)
    assert support.class_names == vocab.codepoints
    assert support.counts().tolist() == [len(fonts)] * len(vocab)
    assert support.images.dtype == torch.uint8 and support.images.shape[1:] == (28, 28)
    # Different fonts draw the same code point differently.
    if len(fonts) == 2:
        assert not torch.equal(support.images[0], support.images[1])


def test_lookup_ranks_the_right_code_point_and_reports_intervals(small_vocab):
    """Queries identical to one font's renderings sit exactly on their class when the
    support has that one font: top-1 must be 100%. A wrong label mapping fails it."""
    vocab = load_vocabulary(small_vocab)
    fonts = [f for f in installed_fonts() if f.column == "hanazono"]
    support = render_support(vocab, 28, fonts=fonts)
    torch.manual_seed(0)
    for algo in ("protonet", "cosine"):
        learner = create_learner(algo, {"image_size": 28},
                                 **({"num_classes": 5} if algo == "cosine" else {}))
        # Queries: the same images, their classes in reverse order (a mapping by name).
        queries = support.subset(list(range(support.num_classes))[::-1])
        result = lookup_accuracy(learner, support, queries, fonts=["hanazono"], batch=7)
        assert result.top["1"] == 100.0 and result.top["10"] == 100.0
        assert result.classes == N_CLASSES and result.queries == N_CLASSES
        assert result.query_classes == N_CLASSES
    assert proportion_ci(50, 100) == pytest.approx(100 * 1.96 * 0.05)
    assert proportion_ci(0, 0) == 0.0


def test_cosine_directions_follow_labels_and_adapt_matches_embedded():
    torch.manual_seed(0)
    emb = torch.randn(6, 4)
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    d = class_directions(emb, labels, 3)
    perm = torch.tensor([3, 1, 5, 0, 4, 2])
    assert torch.allclose(d, class_directions(emb[perm], labels[perm], 3))
    assert torch.allclose(d.norm(dim=-1), torch.ones(3))
    learner = create_learner("cosine", {"image_size": 28}, num_classes=3).eval()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        a = learner.adapt(x, labels, 3, chunk=4)(x)
        b = learner.adapt_embedded(learner.backbone(x), labels, 3)(x)
    assert torch.allclose(a, b, atol=1e-5)


def test_cosine_pretraining_learns(small_vocab):
    vocab = load_vocabulary(small_vocab)
    support = render_support(vocab, 28)
    torch.manual_seed(0)
    learner = create_learner("cosine", {"image_size": 28}, num_classes=support.num_classes)
    opt = torch.optim.Adam(learner.parameters(), lr=3e-3)
    x = support.images.unsqueeze(1).float() / 255
    losses = []
    for _ in range(40):
        loss, _acc = learner.loss((x, support.labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_lookup_training_run_then_evaluate_with_the_guard(small_vocab, crop_tree, tmp_path,
                                                         monkeypatch, capsys):
    """pretrain --algo cosine --dataset nom-lookup, then evaluate --lookup: the test crops'
    characters were rendered in training but none of their crops was; the validation
    crops chose the model, so evaluating on them is refused."""
    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    cache = tmp_path / "cache"
    common = ["--data-root", str(crop_tree), "--cache-dir", str(cache), "--device", "cpu"]
    code = cli_main(["pretrain", "--algo", "cosine", "--dataset", "nom-lookup", *common,
                     "--out", str(tmp_path / "run"), "--steps", "30", "--val-every", "15",
                     "--batch", "32", "--json-progress"])
    assert code == 0
    model = tmp_path / "run" / "best.pt"
    payload = ckpt.read(model)
    trained = payload["trained_on"]
    test_part = nom_lookup.crop_parts(crop_tree, 28, cache_dir=cache)[2]
    assert trained["dataset"] == "nom-lookup"
    assert not set(test_part.class_names) & ckpt.seen_classes(trained)
    assert "font renderings" in trained["note"]
    capsys.readouterr()

    assert cli_main(["evaluate", "--lookup", "--model", str(model), "--dataset", "nom",
                     "--split", "seed", "--part", "test", "--json", "--record",
                     *common]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["protocol"] == "lookup" and record["part"] == "test"
    assert record["classes"] == N_CLASSES and record["crops_seen_in_training"] == 0
    assert record["queries"] == int(test_part.labels.numel())
    assert set(record["top"]) == {"1", "5", "10"}
    assert record["top"]["1"] <= record["top"]["5"] <= record["top"]["10"]
    recorded = ckpt.read(model)["metrics"]["evaluations"]
    assert any(e["protocol"] == "lookup" for e in recorded)

    assert cli_main(["evaluate", "--lookup", "--model", str(model), "--dataset", "nom",
                     "--split", "seed", "--part", "val", *common]) == 2
    assert "were among this model's training or validation" in capsys.readouterr().err

    # Test-time zooms: said in the record; a meaningless one refused before any work.
    assert cli_main(["evaluate", "--lookup", "--model", str(model), "--dataset", "nom",
                     "--split", "seed", "--part", "test", "--json", "--zooms", "1", "1.1",
                     *common]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["zooms"] == [1.0, 1.1] and record["queries"] == int(test_part.labels.numel())
    assert cli_main(["evaluate", "--lookup", "--model", str(model), "--dataset", "nom",
                     "--split", "seed", "--part", "test", "--zooms", "1", "3", *common]) == 2
    assert "--zooms 3: each must be a magnification" in capsys.readouterr().err

    # lookup-zooms: candidates measured on the validation crops, the best stored; then
    # evaluate --lookup (and the app's fit, below) use the model's own.
    assert cli_main(["lookup-zooms", "--model", str(model), "--candidates", "1", "1,1.2",
                     "--json", *common]) == 0
    choice = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    val_part = nom_lookup.crop_parts(crop_tree, 28, cache_dir=cache)[1]
    assert [c["zooms"] for c in choice["candidates"]] == [[1.0], [1.0, 1.2]]
    assert choice["part"] == "val" and choice["queries"] == int(val_part.labels.numel())
    best = max(choice["candidates"], key=lambda c: (c["top"]["1"], -len(c["zooms"])))
    assert choice["zooms"] == best["zooms"]
    assert ckpt.read(model)["metrics"]["lookup_zooms"] == choice
    assert cli_main(["evaluate", "--lookup", "--model", str(model), "--dataset", "nom",
                     "--split", "seed", "--part", "test", "--json", "--record", *common]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["zooms"] == best["zooms"]
    # Recorded beside the earlier record without zooms, not over it (unless they are 1).
    lookups = [e for e in ckpt.read(model)["metrics"]["evaluations"]
               if e["protocol"] == "lookup"]
    assert sorted(tuple(e.get("zooms", [1.0])) for e in lookups) == sorted(
        {(1.0,), tuple(best["zooms"])})
    with pytest.raises(SystemExit) as exit_info:  # argparse's own one-line error
        cli_main(["lookup-zooms", "--model", str(model), "--candidates", "1,x", *common])
    assert exit_info.value.code == 2
    assert "'1,x' is not a comma-separated list" in capsys.readouterr().err
    assert cli_main(["lookup-zooms", "--model", str(model), "--candidates", "1,5",
                     *common]) == 2
    assert "--candidates 5: each must be a magnification" in capsys.readouterr().err


def test_clean_rendering_is_centred_ink_on_paper():
    spec = installed_fonts()[0]
    img = np.asarray(clean_rendering("人", ImageFont.truetype(spec.files[0], 40,
                                                              index=spec.index)))
    assert img.shape == (CANVAS, CANVAS) and img.min() < 50 and img[0, 0] == 255
    ys, xs = np.nonzero(img < 128)
    assert abs(xs.mean() - CANVAS / 2) < 6 and abs(ys.mean() - CANVAS / 2) < 6


def test_lookup_episodes_put_renderings_in_support_and_training_crops_in_queries(
        small_vocab, crop_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    splits = nom_lookup.lookup_splits(crop_tree, 28, cache_dir=tmp_path)
    way, distractors = 4, 6
    sampler = nom_lookup.LookupEpisodeSampler(
        splits, way, 2, 3, distractors, generator=torch.Generator().manual_seed(0))
    clean = {bytes(im.numpy()): splits.support.class_names[int(y)]
             for im, y in zip(splits.support.images, splits.support.labels, strict=True)}
    wood = {bytes(im.numpy()): splits.renderings.class_names[int(y)]
            for im, y in zip(splits.renderings.images, splits.renderings.labels, strict=True)}
    crops = {bytes(im.numpy()): splits.crops.class_names[int(y)]
             for im, y in zip(splits.crops.images, splits.crops.labels, strict=True)}
    for _ in range(3):
        ep = sampler.sample()
        assert ep.batch == 1 and ep.way == way + distractors
        to_u8 = [bytes((x[0] * 255).round().to(torch.uint8).numpy()) for x in ep.support_x[0]]
        names: dict[int, set[str]] = {}
        for key, y in zip(to_u8, ep.support_y[0].tolist(), strict=True):
            assert key in clean or key in wood  # renderings only, never a crop
            names.setdefault(y, set()).add(clean.get(key) or wood[key])
        assert sorted(names) == list(range(way + distractors))
        assert all(len(v) == 1 for v in names.values())  # one code point a class
        for x, y in zip(ep.query_x[0], ep.query_y[0].tolist(), strict=True):
            key = bytes((x[0] * 255).round().to(torch.uint8).numpy())
            assert crops[key] == next(iter(names[y]))  # a crop of that class's character
            assert crops[key] in splits.crop_train  # of a training character only
        assert ep.query_y.numel() == way * 3


def test_lookup_episodes_have_one_size_and_every_rendering_of_each_class(
        small_vocab, crop_tree, tmp_path, monkeypatch):
    """Code points covered by different numbers of fonts still give episodes of one size
    (sizes that varied fragmented the trainer's heap), and each class's support holds every
    clean rendering of its code point, repeated to fill the slots."""
    import dataclasses

    from trainer.data.glyphset import GlyphSet

    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    splits = nom_lookup.lookup_splits(crop_tree, 28, cache_dir=tmp_path)
    sup = splits.support
    if int(sup.counts().max()) < 2:
        pytest.skip("needs two fonts that cover the vocabulary")
    # Odd classes keep only their first rendering: 1 font against several.
    first = sup.offsets()[sup.labels]
    keep = (sup.labels % 2 == 0) | (torch.arange(len(sup.labels)) == first)
    uneven = GlyphSet(sup.images[keep], sup.labels[keep], sup.class_names)
    assert len(set(uneven.counts().tolist())) > 1
    splits = dataclasses.replace(splits, support=uneven)
    way, shot, distractors = 3, 2, 5
    sampler = nom_lookup.LookupEpisodeSampler(
        splits, way, shot, 2, distractors, generator=torch.Generator().manual_seed(0))
    slots = int(uneven.counts().max())
    renderings = {}  # code point -> its clean renderings' bytes
    for im, y in zip(uneven.images, uneven.labels.tolist(), strict=True):
        renderings.setdefault(uneven.class_names[y], set()).add(bytes(im.numpy()))
    owner = {key: cp for cp, keys in renderings.items() for key in keys}
    for _ in range(6):
        ep = sampler.sample()
        assert ep.support_x.shape[1] == (way + distractors) * (slots + shot)
        seen: dict[int, list[bytes]] = {}
        for x, y in zip(ep.support_x[0], ep.support_y[0].tolist(), strict=True):
            key = bytes((x[0] * 255).round().to(torch.uint8).numpy())
            if key in owner:
                seen.setdefault(y, []).append(key)
        for keys in seen.values():
            assert len(keys) == slots
            assert set(keys) == renderings[owner[keys[0]]]  # every font, none foreign
        assert len(seen) == way + distractors


def _episode_code_points(splits, ep) -> list[str]:
    """The code point of each support class of a lookup episode, by its clean renderings."""
    clean = {bytes(im.numpy()): splits.support.class_names[int(y)]
             for im, y in zip(splits.support.images, splits.support.labels, strict=True)}
    names: dict[int, str] = {}
    for x, y in zip(ep.support_x[0], ep.support_y[0].tolist(), strict=True):
        key = bytes((x[0] * 255).round().to(torch.uint8).numpy())
        if key in clean:
            names[y] = clean[key]
    return [names[y] for y in sorted(names)]


def test_hard_distractors_come_from_the_confusable_lists(small_vocab, crop_tree, tmp_path,
                                                         monkeypatch):
    """--hard-distractors: that many of an episode's distractors are code points its
    characters are confused with (the miner's lists, mined at the first episode and again
    at each refresh), the rest random; one episode size; a resumed sampler continues with
    the same lists and the same episodes."""
    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    splits = nom_lookup.lookup_splits(crop_tree, 28, cache_dir=tmp_path)
    names = splits.support.class_names
    index = {cp: i for i, cp in enumerate(names)}
    own = [index[n] for n in splits.crops.class_names]
    # Each training character is "confused" with the 3 code points after it.
    table = torch.tensor([[(i + d) % len(names) for d in (1, 2, 3)] for i in own])
    calls = []

    def miner(support_emb):
        calls.append(support_emb)
        return table

    way, distractors, hard = 3, 6, 4
    sampler = nom_lookup.LookupEpisodeSampler(
        splits, way, 2, 2, distractors, generator=torch.Generator().manual_seed(0),
        hard=hard, miner=miner)
    plain = nom_lookup.LookupEpisodeSampler(
        splits, way, 2, 2, distractors, generator=torch.Generator().manual_seed(0))
    assert not calls  # mined lazily, with the weights the run starts from
    for _ in range(5):
        ep = sampler.sample()
        assert ep.support_x.shape == plain.sample().support_x.shape
        cps = _episode_code_points(splits, ep)
        assert len(cps) == len(set(cps)) == way + distractors
        chars = [index[c] for c in cps[:way]]
        near = {int(j) for i in chars for j in table[own.index(i)]} - set(chars)
        got = {index[c] for c in cps[way:way + hard]}
        assert got <= near and len(got) == min(hard, len(near))
    assert len(calls) == 1
    emb = torch.ones(3)
    sampler.refresh(emb)
    assert len(calls) == 2 and calls[0] is None and calls[1] is emb  # a validation's, reused
    state = sampler.state_dict()
    assert torch.equal(state["confusable"], table)
    resumed = nom_lookup.LookupEpisodeSampler(
        splits, way, 2, 2, distractors, generator=torch.Generator().manual_seed(9),
        hard=hard, miner=miner)
    resumed.load_state_dict(state)
    a, b = sampler.sample(), resumed.sample()
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert len(calls) == 2  # the resumed sampler did not mine again
    with pytest.raises(nom_lookup.DataError, match="more than --distractors"):
        nom_lookup.LookupEpisodeSampler(splits, way, 2, 2, 2, hard=3, miner=miner,
                                        generator=torch.Generator())


def test_confusable_code_points_are_the_nearest_other_prototypes(small_vocab, crop_tree,
                                                                  tmp_path, monkeypatch):
    """The miner ranks every code point's clean-rendering prototype by its distance from
    the mean embedding of a training character's crops, the character itself excluded."""
    from trainer.lookup import embed_images
    from trainer.models.conv4 import prototypes

    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    splits = nom_lookup.lookup_splits(crop_tree, 28, cache_dir=tmp_path)
    torch.manual_seed(0)
    learner = create_learner("protonet", {"image_size": 28}).train()
    got = nom_lookup.confusable_code_points(learner, splits, 5)
    assert learner.training  # put back as it was
    learner.eval()
    support_emb = embed_images(learner, splits.support.images, "cpu")
    # The same lists from the embeddings a validation already made.
    assert torch.equal(nom_lookup.confusable_code_points(learner, splits, 5,
                                                         support_emb=support_emb), got)
    protos = prototypes(support_emb, splits.support.labels, splits.support.num_classes)
    centres = prototypes(embed_images(learner, splits.crops.images, "cpu"),
                         splits.crops.labels, splits.crops.num_classes)
    names = splits.support.class_names
    assert got.shape == (splits.crops.num_classes, 5)
    for c, name in enumerate(splits.crops.class_names):
        d = ((protos - centres[c]) ** 2).sum(1)
        d[names.index(name)] = float("inf")
        want = d.argsort()[:5]
        assert names.index(name) not in got[c].tolist()
        torch.testing.assert_close(d[got[c]], d[want], rtol=1e-4, atol=1e-5)


def test_protonet_meta_trains_on_lookup_episodes(small_vocab, crop_tree, tmp_path,
                                                 monkeypatch, capsys):
    """meta-train --algo protonet --dataset nom-lookup: chosen on the lookup of validation
    crops; --batch above 1 and other learners are refused with a message."""
    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    common = ["--data-root", str(crop_tree), "--cache-dir", str(tmp_path / "cache"),
              "--device", "cpu"]
    args = ["meta-train", "--dataset", "nom-lookup", *common, "--way", "4", "--shot", "2",
            "--query", "2", "--distractors", "6", "--steps", "6", "--val-every", "3"]
    assert cli_main([*args, "--algo", "protonet", "--batch", "4",
                     "--out", str(tmp_path / "bad")]) == 2
    assert "--batch 1" in capsys.readouterr().err
    assert cli_main([*args, "--algo", "maml", "--batch", "1",
                     "--out", str(tmp_path / "bad2")]) == 2
    assert "ProtoNet" in capsys.readouterr().err
    assert cli_main([*args, "--algo", "protonet", "--batch", "1",
                     "--out", str(tmp_path / "run")]) == 0
    payload = ckpt.read(tmp_path / "run" / "best.pt")
    assert payload["train_config"]["distractors"] == 6
    assert payload["trained_on"]["dataset"] == "nom-lookup"
    assert payload["metrics"]["val_acc"] is not None
    # Hard distractors and an unpooled last block, from the pooled model's weights; the
    # result names crops through evaluate --lookup like any lookup model.
    assert cli_main([*args, "--algo", "protonet", "--batch", "1", "--hard-distractors", "3",
                     "--no-last-pool", "--init-from", str(tmp_path / "run" / "best.pt"),
                     "--out", str(tmp_path / "hard")]) == 0
    payload = ckpt.read(tmp_path / "hard" / "best.pt")
    assert payload["train_config"]["hard_distractors"] == 3
    assert payload["learner"]["backbone"]["last_pool"] is False
    learner, _ = ckpt.load_learner(tmp_path / "hard" / "best.pt")
    assert learner.backbone.embed_dim == 576
    assert cli_main([*args[:1], "--algo", "protonet", "--batch", "1",
                     "--hard-distractors", "7", "--dataset", "nom-lookup", *common,
                     "--way", "4", "--distractors", "6",
                     "--out", str(tmp_path / "bad3")]) == 2
    assert "hard_distractors" in capsys.readouterr().err


def test_a_model_that_adapts_weights_is_refused_before_any_rendering(tmp_path):
    """MAML cannot name the vocabulary from embeddings: said at once, not after rendering
    and embedding 50,000 images (the app showed 25 s of progress first)."""
    from trainer.api import load_model

    ckpt.save(ckpt.model_payload(create_learner("maml")), tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    steps = []
    with pytest.raises(NotImplementedError, match="adapts its weights"):
        model.fit_lookup(cache_dir=tmp_path / "cache",
                         progress=lambda f, msg: steps.append(msg))
    assert steps == [] and not (tmp_path / "cache").exists()


def test_the_app_fit_embeds_a_glyph_as_the_mean_of_the_models_zooms(small_vocab, tmp_path,
                                                                    monkeypatch):
    """Model.fit_lookup (the app's lookup) with a model file that stores lookup zooms: a
    glyph's scores are those of the mean embedding of its zoomed copies; a malformed
    entry is refused before any rendering."""
    from trainer.api import load_model

    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    torch.manual_seed(0)
    learner = create_learner("protonet", {"image_size": 28})
    payload = ckpt.model_payload(learner)
    payload["metrics"]["lookup_zooms"] = {"zooms": [1.0, 1.2]}
    ckpt.save(payload, tmp_path / "z.pt")
    assert load_model(tmp_path / "z.pt").info.lookup_zooms == (1.0, 1.2)
    fitted = load_model(tmp_path / "z.pt").fit_lookup(cache_dir=tmp_path / "cache")
    glyph = render_support(load_vocabulary(small_vocab), 28).images[3].numpy()
    x = torch.from_numpy(glyph)[None, None].float() / 255
    learner.eval()
    with torch.no_grad():
        plain = fitted.logits([glyph])
        mean = (learner.backbone(x) + learner.backbone(zoom(x, 1.2))) / 2
        alone = learner.backbone(x)
    support = render_support(load_vocabulary(small_vocab), 28)
    with torch.no_grad():
        emb = learner.backbone(support.images.unsqueeze(1).float() / 255)
    protos = torch.stack([emb[support.labels == c].mean(0)
                          for c in range(support.num_classes)])
    assert torch.allclose(torch.from_numpy(plain), -torch.cdist(mean, protos) ** 2,
                          rtol=1e-4, atol=1e-3)
    assert not torch.allclose(torch.from_numpy(plain), -torch.cdist(alone, protos) ** 2,
                              rtol=1e-4, atol=1e-3)

    payload["metrics"]["lookup_zooms"] = {"zooms": ["big"]}
    ckpt.save(payload, tmp_path / "bad.pt")
    assert load_model(tmp_path / "bad.pt").info.lookup_zooms == ()  # shown as none
    steps = []
    with pytest.raises(ValueError, match="lookup zooms"):
        load_model(tmp_path / "bad.pt").fit_lookup(cache_dir=tmp_path / "cache2",
                                                   progress=lambda f, m: steps.append(m))
    assert steps == [] and not (tmp_path / "cache2").exists()


def test_the_embedding_cache_outlives_a_metrics_change_not_a_weights_change(
        small_vocab, tmp_path, monkeypatch):
    """The app's cache of rendering embeddings is keyed by the model's weights: recording
    an evaluation or choosing zooms (the file's bytes change) reuses it; other weights, or
    the same weights unpooled (another embedding), embed again."""
    from trainer import lookup
    from trainer.api import load_model

    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    calls = []
    real = lookup.embed_images

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lookup, "embed_images", counting)
    torch.manual_seed(0)
    path, cache = tmp_path / "m.pt", tmp_path / "cache"
    first = create_learner("protonet", {"image_size": 28})
    ckpt.save(ckpt.model_payload(first), path)
    load_model(path).fit_lookup(cache_dir=cache)
    assert len(calls) == 1
    ckpt.update_metrics(path, lambda m: m.__setitem__("lookup_zooms", {"zooms": [1.0, 1.1]}),
                        "lookup zooms")
    load_model(path).fit_lookup(cache_dir=cache)
    assert len(calls) == 1  # same weights: loaded from the cache
    unpooled = create_learner("protonet", {"image_size": 28, "last_pool": False})
    unpooled.load_state_dict(first.state_dict())  # the same weights, another embedding
    for learner in (unpooled, create_learner("protonet", {"image_size": 28})):
        ckpt.save(ckpt.model_payload(learner), path)
        load_model(path).fit_lookup(cache_dir=cache)
    assert len(calls) == 3


def test_vocabulary_curve_script_reports_every_size_and_the_ranks(small_vocab, crop_tree,
                                                                  tmp_path, monkeypatch,
                                                                  capsys):
    """scripts/lookup_vocabulary_curve.py (the README's diagnostic table): a line per
    vocabulary size below the whole, the whole, and rank quantiles; top-1 among 5 is never
    below top-1 among all (fewer rivals cannot beat the right code point more often)."""
    import importlib.util
    import re
    import sys

    monkeypatch.setattr(nom_lookup, "VOCABULARY", small_vocab)
    torch.manual_seed(0)
    model = tmp_path / "m.pt"
    payload = ckpt.model_payload(create_learner("protonet", {"image_size": 28,
                                                             "last_pool": False}))
    payload["metrics"]["lookup_zooms"] = {"zooms": [1.0, 1.2]}  # ranked as the app would
    ckpt.save(payload, model)
    script = Path(__file__).resolve().parents[2] / "scripts" / "lookup_vocabulary_curve.py"
    spec = importlib.util.spec_from_file_location("lookup_vocabulary_curve", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["x", "--model", str(model), "--data-root",
                                      str(crop_tree), "--cache-dir", str(tmp_path / "c"),
                                      "--sizes", "5", "20", "1000"])
    assert module.main() == 0
    out = capsys.readouterr().out
    tops = {int(n.replace(",", "")): float(v)
            for n, v in re.findall(r"top-1 among +([\d,]+): ([\d.]+)%", out)}
    assert sorted(tops) == [5, 20, N_CLASSES]  # 1,000 is more than the vocabulary
    assert tops[5] >= tops[N_CLASSES]
    assert "rank of the right code point, quantiles 25%" in out
    assert "support both, zooms 1, 1.2" in out


def test_zoom_magnifies_about_the_centre():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 10:18, 10:18] = 1.0  # an 8 x 8 square in the middle
    assert zoom(x, 1.0) is x
    big, small = zoom(x, 2.0), zoom(x, 0.5)
    # Twice as wide and tall (16 x 16, four times the ink), half (4 x 4, a quarter);
    # still centred (the ink's centre of mass stays at 13.5).
    assert big.sum().item() == pytest.approx(4 * 64, rel=0.05)
    assert small.sum().item() == pytest.approx(64 / 4, rel=0.1)
    rows = torch.arange(28.0)
    for img in (big, small):
        assert (img[0, 0].sum(1) * rows).sum() / img.sum() == pytest.approx(13.5, abs=0.05)
    assert small[..., :8, :].abs().max() == 0  # the border is background


def test_zoomed_queries_are_the_mean_embedding_of_the_views():
    """A zoomed query's ProtoNet logits are minus its views' mean embedding's squared
    distances to the prototypes (the scale the calibration measured), its cosine scores
    those of that mean's direction."""
    torch.manual_seed(0)
    support, labels = torch.rand(12, 1, 28, 28), torch.arange(12) % 6
    queries = torch.rand(5, 1, 28, 28)
    zooms = (0.9, 1.0, 1.15)
    for algo in ("protonet", "cosine"):
        learner = create_learner(algo, {"image_size": 28},
                                 **({"num_classes": 6} if algo == "cosine" else {})).eval()
        with torch.no_grad():
            emb = learner.backbone(support)
            logits = learner.adapt_embedded(emb, labels, 6,
                                            embed=zoomed(learner.backbone, zooms))(queries)
            mean_q = torch.stack([learner.backbone(zoom(queries, z)) for z in zooms]).mean(0)
            if algo == "protonet":
                protos = torch.stack([emb[labels == c].mean(0) for c in range(6)])
                expected = -torch.cdist(mean_q, protos) ** 2
            else:
                expected = learner.scores(mean_q, class_directions(emb, labels, 6))
        assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-3)
    assert zoomed(learner.backbone, [1]) is learner.backbone  # no views: the embedder
