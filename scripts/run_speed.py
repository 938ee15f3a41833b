"""Median training speed of a run folder, from the trainer's own log.

    python scripts/run_speed.py RUN_DIR [--after STEP] [--until STEP]

Reads ``RUN_DIR/metrics.jsonl`` and prints the median of ``tasks_per_s`` (tasks, or images
for transfer pre-training, per second, one value per 10-step window) over the step windows
ending after --after and up to --until, leaving out the run's first window (start-up).
A resumed run's log holds both sittings, so --after/--until pick one.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--after", type=int, default=10)
    p.add_argument("--until", type=int)
    args = p.parse_args()
    rates = []
    for line in (args.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if (e.get("event") == "step" and e.get("tasks_per_s") and e["step"] > args.after
                and (args.until is None or e["step"] <= args.until)):
            rates.append(e["tasks_per_s"])
    if not rates:
        raise SystemExit("no step windows in that range")
    print(f"{statistics.median(rates):.1f} per second (median of {len(rates)} windows)")


if __name__ == "__main__":
    main()
