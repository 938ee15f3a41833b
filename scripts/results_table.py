"""Print the README's results table for the bundled models, from their recorded evaluations.

    python scripts/results_table.py [--rerun --data-root DATA] [--models resources/models]

Each number comes from ``nomgui-train evaluate --record`` on the shipped model file (the
evaluation is stored in the file). ``--rerun`` evaluates every model again first, with
the same command, on the data set and split it was trained on (Omniglot: 5/20-way,
1/5-shot, 15 queries; Nôm: 5-way 1/5-shot and 20-way 1-shot, 5 queries, on `seed` and
`nom-only`), 1,000 seeded episodes each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROTOCOLS = {  # data set -> (splits, [(way, shot)], query)
    "omniglot": (["seed"], [(5, 1), (5, 5), (20, 1), (20, 5)], 15),
    "nom": (["seed", "nom-only"], [(5, 1), (5, 5), (20, 1)], 5),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=Path, default=REPO / "resources" / "models")
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--data-root", type=Path, help="with --rerun: the data set's folder")
    args = p.parse_args()
    from trainer.api import model_info

    for path in sorted(args.models.glob("*.pt")):
        info = model_info(path)
        dataset = info.train_config.get("dataset", "omniglot")
        splits, shapes, query = PROTOCOLS.get(dataset, PROTOCOLS["omniglot"])
        if args.rerun:
            if args.data_root is None:
                p.error("--rerun needs --data-root")
            for split in splits:
                for way, shot in shapes:
                    subprocess.run([sys.executable, "-m", "trainer", "evaluate", "--model",
                                    str(path), "--dataset", dataset, "--split", split,
                                    "--way", str(way), "--shot", str(shot), "--query",
                                    str(query), "--episodes", "1000", "--record",
                                    "--data-root", str(args.data_root)], check=True)
            info = model_info(path)
        found = {(e["split"], e["way"], e["shot"]): e
                 for e in info.metrics.get("evaluations", []) if e["part"] == "test"}
        header = " | ".join(f"{w}-way {s}-shot" for w, s in shapes)
        print(f"\n{path.name} ({info.algo}, trained on {dataset})\n")
        print(f"| split | {header} |\n|---|{'---|' * len(shapes)}")
        for split in splits:
            cells = [f"{found[(split, w, s)]['mean']:.2f} +- {found[(split, w, s)]['ci95']:.2f}"
                     if (split, w, s) in found else "not evaluated" for w, s in shapes]
            print(f"| {split} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
