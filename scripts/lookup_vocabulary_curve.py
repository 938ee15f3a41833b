"""How the Nôm lookup's top-1 falls as the vocabulary grows, and where the right code point
ranks: a diagnostic for lookup models (why wider embeddings and hard distractors help).

    python scripts/lookup_vocabulary_curve.py --model M --data-root DATA/nom \\
        [--split seed] [--part val] [--support both] [--sizes 5 20 100 500 2000]

For every crop of ``--part`` (validation by default: a diagnostic must not tune on test),
top-1 among ``size`` code points: its own and ``size - 1`` others drawn at random (seed 0),
ranked by the learner as in ``evaluate --lookup`` (a ProtoNet: the
prototypes of their font renderings; each crop at the model's test-time zooms unless
``--zooms`` says otherwise); then among all of
them; then quantiles of the right code point's rank (0: first) among all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer.checkpoint import load_learner
from trainer.data.nom_lookup import crop_parts, load_vocabulary, lookup_support
from trainer.learners.base import eval_mode
from trainer.lookup import chosen_zooms, embed_images, zoomed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data-root", type=Path, required=True, help="the Nôm crop set's folder")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--split", default="seed", choices=("seed", "nom-only"))
    p.add_argument("--part", default="val", choices=("val", "test"))
    p.add_argument("--support", default="both", choices=("clean", "woodblock", "both"))
    p.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100, 500, 2000])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--zooms", type=float, nargs="+",
                   help="test-time zooms of each crop (default: the model's own, else 1)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    learner, payload = load_learner(args.model)
    zooms = args.zooms or list(chosen_zooms(payload["metrics"]))
    size = learner.backbone.args["image_size"]
    vocab = load_vocabulary()
    parts = crop_parts(args.data_root, size, args.split, cache_dir=args.cache_dir, vocab=vocab)
    queries = dict(zip(("train", "val", "test"), parts, strict=True))[args.part]
    support = lookup_support(vocab, size, args.support, cache_dir=args.cache_dir)
    n = support.num_classes
    with eval_mode(learner), torch.no_grad():
        # The learner's own ranking, as evaluate --lookup's (trainer.lookup.lookup_accuracy)
        classify = learner.adapt_embedded(embed_images(learner, support.images, "cpu"),
                                          support.labels, n,
                                          embed=zoomed(learner.backbone, zooms))
        x = queries.images.unsqueeze(1)
        scores = torch.cat([classify(x[i:i + 1024].float().div_(255.0))
                            for i in range(0, len(x), 1024)])  # (Q, n), higher is nearer
    index = {cp: i for i, cp in enumerate(support.class_names)}
    target = torch.tensor([index[c] for c in queries.class_names])[queries.labels]
    own = scores.gather(1, target[:, None])  # (Q, 1)
    g = torch.Generator().manual_seed(0)
    print(f"{args.model.name}: {len(x):,} {args.part} crops of {args.split}, "
          f"support {args.support}, zooms {', '.join(f'{z:g}' for z in zooms)}")
    for size in [s for s in args.sizes if s < n]:
        # size - 1 random others per crop (drawn from the n - 1 code points not its own)
        others = torch.randint(0, n - 1, (len(x), size - 1), generator=g)
        others += (others >= target[:, None]).long()
        beaten = (scores.gather(1, others) > own).any(1)
        print(f"  top-1 among {size:>6,}: {100 * (1 - beaten.float().mean()):.2f}%")
    rank = (scores > own).sum(1).float()
    print(f"  top-1 among {n:>6,}: {100 * (rank == 0).float().mean():.2f}%")
    qs = (0.25, 0.5, 0.75, 0.9)
    print("  rank of the right code point, quantiles "
          + ", ".join(f"{q:.0%}: {int(rank.quantile(q))}" for q in qs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
