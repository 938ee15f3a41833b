"""Write the ``trained_on`` record (training and validation classes) into model files made
before model files carried it, derived from each file's stored training configuration.

    python scripts/record_trained_on.py --data-root DATA [--models resources/models]

DATA holds ``omniglot/`` (the zips) and ``nom/`` (the crop zip and ``nom_codepoints.tsv``).
Only ``trained_on`` is added: weights, configuration and recorded evaluations stay as they
are. A Nôm model started from the font-rendered model (``init_from``) gets, as its
pre-training classes, every code point the font set can hold (the TSV's characters with a
Vietnamese source or reading, minus the crop set's own characters, which the font set
leaves out): a superset of what it saw, so the guard errs on the strict side.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def font_set_superset(nom_root: Path) -> list[str]:
    from trainer.data.nom import find_source, read_class_table
    from trainer.data.nom_fonts import find_tsv

    crops, prefix = find_source(nom_root)
    exclude = set(read_class_table(crops, prefix))
    with find_tsv(nom_root).open(encoding="utf-8") as f:
        return sorted(r["codepoint"] for r in csv.DictReader(f, delimiter="\t")
                      if (r["kIRG_VSource"] or r["kVietnamese"])
                      and r["codepoint"] not in exclude)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--models", type=Path, default=REPO / "resources" / "models")
    p.add_argument("--cache-dir", type=Path)
    args = p.parse_args()
    from trainer import checkpoint as ckpt
    from trainer.data import load_dataset
    from trainer.evaluate import model_trained_on

    roots = {"omniglot": args.data_root / "omniglot", "nom": args.data_root / "nom"}
    loaded = {}
    for path in sorted(args.models.glob("*.pt")) + sorted(args.models.glob("*/*.pt")):
        payload = ckpt.read(path)
        if "trained_on" in payload:
            print(f"{path}: already records its classes")
            continue
        dataset = payload["train_config"]["dataset"]
        if dataset not in loaded:
            loaded[dataset] = load_dataset(dataset, roots[dataset], cache_dir=args.cache_dir)
        trained, _ = model_trained_on(payload, dataset, loaded[dataset])
        assert trained is not None
        trained["note"] = ("derived from the stored training configuration by "
                           "scripts/record_trained_on.py (the file predates class records)")
        if payload["train_config"].get("init_from"):
            if dataset != "nom":
                raise SystemExit(f"{path}: started from another model; add its classes")
            trained["pretrained_classes"] = font_set_superset(roots["nom"])
            trained["note"] += ("; pre-training classes: every code point the nom-fonts "
                                "set can hold (a superset)")
        payload["trained_on"] = trained
        ckpt.save(payload, path)
        print(f"{path}: {len(trained['train_classes'])} training, "
              f"{len(trained['val_classes'])} validation, "
              f"{len(trained['pretrained_classes'])} pre-training characters recorded")


if __name__ == "__main__":
    main()
