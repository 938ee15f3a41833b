"""Print the README's results tables for the bundled models, from their recorded evaluations.

    python scripts/results_table.py [--rerun --data-root DATA] [--models resources/models]

Every number comes from ``nomgui-train evaluate --record`` on the shipped model file (the
evaluation is stored in the file). ``--rerun`` evaluates every model again first, with
that command, on the data set and split it was trained on: Omniglot 5/20-way, 1/5-shot,
15 queries, and for transfer models also the all-classes protocol (``--all-classes``);
Nôm 5-way 1/5-shot and 20-way 1-shot, 5 queries, on ``seed`` and ``nom-only``, every
column on one set of characters (``--min-images 10``: those with enough crops for 5-shot
5-query; the count is a column); 1,000 seeded episodes each. Only records of the part
"test" are shown: ``evaluate`` refuses classes a model was trained on. Models in
subfolders (``lake/``, ``vinyals/``) are included; the app lists only the top folder's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHAPES = {"omniglot": ([(5, 1), (5, 5), (20, 1), (20, 5)], 15),
          "nom": ([(5, 1), (5, 5), (20, 1)], 5)}  # data set -> [(way, shot)], queries
# One set of classes for every column: those with images for the largest shot + query.
MIN_IMAGES = {"nom": 10}


def splits_of(dataset: str, trained_on: str) -> list[str]:
    return ["seed", "nom-only"] if dataset == "nom" else [trained_on]


def adaptation(e: dict) -> str:
    """How an all-classes record adapted: transfer's fine-tuning, else the learner's own."""
    if e.get("finetune_steps") is None:
        steps = e.get("eval_inner_steps")
        return f"{steps} inner step{'s' * (steps != 1)}" if steps else "prototypes"
    net = "whole net" if e.get("finetune_backbone") else "new head"
    return f"{net}, {e['finetune_steps']} Adam steps"


def evaluate(path: Path, dataset: str, split: str, data_root: Path, extra: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "trainer", "evaluate", "--model", str(path),
                    "--dataset", dataset, "--split", split, "--record",
                    "--data-root", str(data_root), *extra], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=Path, default=REPO / "resources" / "models")
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--data-root", type=Path, help="with --rerun: the data set's folder")
    args = p.parse_args()
    if args.rerun and args.data_root is None:
        p.error("--rerun needs --data-root")
    from trainer.api import load_model

    rows: dict[str, list[str]] = {}
    whole: list[str] = []
    paths = sorted(args.models.glob("*.pt")) + sorted(args.models.glob("*/*.pt"))
    for path in paths:
        model = load_model(path)
        info = model.info
        dataset = info.train_config.get("dataset", "omniglot")
        if dataset == "nom-lookup":  # a lookup model: its episodic rows are on the crops
            dataset = "nom"
        shapes, query = SHAPES.get(dataset, SHAPES["omniglot"])
        splits = splits_of(dataset, info.train_config.get("split", "seed"))
        if args.rerun:
            for split in splits:
                for way, shot in shapes:
                    fixed = MIN_IMAGES.get(dataset)
                    evaluate(path, dataset, split, args.data_root,
                             ["--way", str(way), "--shot", str(shot), "--query", str(query),
                              "--episodes", "1000",
                              *(["--min-images", str(fixed)] if fixed else [])])
                if info.algo == "transfer":
                    evaluate(path, dataset, split, args.data_root, ["--all-classes"])
            model = load_model(path)  # with the evaluations just recorded
            info = model.info
        evals = [e for e in info.metrics.get("evaluations", []) if e["part"] == "test"]
        own = model.learner.hparams  # rows show the model's own adaptation
        found = {(e["split"], e["way"], e["shot"]): e for e in evals
                 if e.get("protocol", "episodes") == "episodes"
                 and e.get("eval_inner_steps") == own.get("eval_inner_steps")
                 and not e.get("finetune_backbone")
                 and e.get("min_images") == MIN_IMAGES.get(dataset)}
        name = str(path.relative_to(args.models))
        first_order = info.train_config.get("hparams", {}).get("first_order")
        learner = f"{info.algo}, first order" if first_order else info.algo
        for split in splits:
            cells = [f"{found[(split, w, s)]['mean']:.2f} +- {found[(split, w, s)]['ci95']:.2f}"
                     if (split, w, s) in found else "not evaluated" for w, s in shapes]
            if dataset in MIN_IMAGES:  # the one set of characters every column used
                counts = {found[(split, w, s)].get("classes") for w, s in shapes
                          if (split, w, s) in found}
                cells.append(f"{counts.pop():,}" if len(counts) == 1 and None not in counts
                             else "not evaluated")
            rows.setdefault(dataset, []).append(
                f"| {name} | {learner} | {split} | {' | '.join(cells)} |")
        whole += [f"| {name} | {e['split']} | {e['way']}-way, {e['shot']} per class | "
                  f"{adaptation(e)} | "
                  f"{e['mean']:.2f} +- {e['ci95']:.2f} | {e['val']:.2f} |"
                  for e in evals if e.get("protocol") == "all-classes"]
    for dataset, lines in rows.items():
        shapes, _ = SHAPES.get(dataset, SHAPES["omniglot"])
        header = " | ".join(f"{w}-way {s}-shot" for w, s in shapes)
        extra = int(dataset in MIN_IMAGES)
        if extra:
            header += f" | characters (>= {MIN_IMAGES[dataset]} crops)"
        print(f"\n{dataset}:\n\n| model file | learner | test split | {header} |\n"
              f"|---|---|---|{'---|' * (len(shapes) + extra)}")
        print("\n".join(lines))
    if whole:
        print("\nall classes at once (--all-classes):\n\n| model file | split | task | "
              "fine-tuning | test | validation |\n|---|---|---|---|---|---|")
        print("\n".join(whole))


if __name__ == "__main__":
    main()
