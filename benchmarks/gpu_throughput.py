"""Single-run training throughput of every learner on one device (issue 17's GPU table).

    python benchmarks/gpu_throughput.py --data-root DATA/omniglot [--device cuda]
        [--before DIR] [--precisions fp32 tf32 bf16] [--steps 200] [--json]

Each cell is one fresh process running ``trainer.engine.train`` itself (the whole loop:
sampling, forward, backward, Adam, logging) for ``--steps`` steps on the papers' Omniglot
settings, one run alone on the device. Tasks/s is the median of the loop's own 10-step
log windows after the first ``--warmup`` windows (allocator warm-up, cuDNN autotuning).
Learners and their batches (Finn et al. for MAML: 32 tasks of 5-way 1-shot 15-query):

* protonet: 5-way 1-shot 15-query, 32 tasks; transfer: pre-training, 256 images a step
  (reported as images/s);
* maml first order, maml second order, protomaml first and second order: 1 inner step,
  5-way 1-shot 15-query, 32 tasks.

Columns: ``before`` (``--before DIR``: the trainer of an older tree, fp32, the figure a
change is measured against) and this tree at each of ``--precisions``. The ratio is this
tree's best precision over ``before``. A paper-length MAML run (60,000 steps of 32 tasks)
takes 60,000 x 32 / tasks_per_s seconds at that rate; the table prints it.

Runs on a CPU too (``--device cpu --steps 20``), which is how the tests keep it working;
its figures there are not the GPU table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

LEARNERS = {  # label: (algo, hparams, batch)
    "protonet": ("protonet", {}, 32),
    "maml 1st order": ("maml", {"first_order": True}, 32),
    "maml 2nd order": ("maml", {}, 32),
    "protomaml 1st order": ("protomaml", {"first_order": True}, 32),
    "protomaml 2nd order": ("protomaml", {}, 32),
    "transfer": ("transfer", {}, 256),
}
LOG_EVERY = 10
PAPER_TASKS = 60_000 * 32  # Finn et al.: 60,000 meta-steps of 32 tasks


def child(args: argparse.Namespace) -> None:
    """One (learner, precision) run in this process; prints one JSON line."""
    import dataclasses

    import torch

    from trainer import engine
    from trainer.config import TrainConfig
    from trainer.runs import DataOptions, build, load_splits

    label, precision = args.child
    algo, hp, batch = LEARNERS[label]
    batch = args.batch or batch
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = {"precision": precision} if "precision" in fields else {}
    if precision != "fp32" and not extra:
        raise SystemExit(f"this tree's trainer has no --precision {precision}")
    episodic = {} if algo == "transfer" else {"way": 5, "shot": 1, "query": 15}
    cfg = TrainConfig(algo=algo, dataset=args.dataset, split="seed", batch=batch,
                      steps=args.steps, val_every=10**9, checkpoint_every=10**9,
                      hparams=hp, **episodic, **extra)
    device = torch.device(args.device)
    splits = load_splits(cfg, DataOptions(args.data_root, args.cache_dir))
    learner, sampler, _ = build(cfg, splits, device)
    rates: list[float] = []

    def on_event(event: dict) -> None:
        if event.get("event") == "step" and event.get("tasks_per_s"):
            rates.append(float(event["tasks_per_s"]))

    with tempfile.TemporaryDirectory() as run_dir:
        engine.train(cfg, learner, sampler, lambda m: 0.0, Path(run_dir) / "run",
                     device=device, log_every=LOG_EVERY, on_event=on_event)
    timed = rates[args.warmup:] or rates
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine())
    print(json.dumps({"tasks_per_s": statistics.median(timed), "windows": len(timed),
                      "device": name, "torch": torch.__version__}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="the Omniglot folder")
    p.add_argument("--dataset", default="omniglot", help=argparse.SUPPRESS)  # tests: folder
    p.add_argument("--batch", type=int, default=0, help="tasks per step for every learner "
                   "(default: the papers' batches above)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "nomgui-gpu")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=2, help="10-step windows not timed")
    p.add_argument("--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS))
    p.add_argument("--precisions", nargs="+", choices=["fp32", "tf32", "bf16"],
                   default=["fp32", "tf32", "bf16"])
    p.add_argument("--before", type=Path, metavar="DIR", help="an older tree to compare with")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    repo = Path(__file__).resolve().parent.parent
    cells = [(label, prec, repo) for label in args.learners for prec in args.precisions]
    if args.before:
        cells = [(label, "fp32", args.before.resolve()) for label in args.learners] + cells
    results: dict[str, dict[str, dict]] = {label: {} for label in args.learners}
    for label, prec, tree in cells:
        column = "before" if tree != repo else prec
        cmd = [sys.executable, str(Path(__file__).resolve()), "--data-root",
               str(args.data_root), "--dataset", args.dataset, "--cache-dir",
               str(args.cache_dir), "--batch", str(args.batch), "--device",
               args.device, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--child", label, prec]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                 timeout=args.timeout, cwd=tree)
        except subprocess.TimeoutExpired:
            results[label][column] = {"error": f"over {args.timeout:.0f} s"}
            print(f"{label} / {column}: over {args.timeout:.0f} s", file=sys.stderr)
            continue
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["failed"])[-1]
            results[label][column] = {"error": last}
            print(f"{label} / {column}: {last}", file=sys.stderr)
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[label][column] = res
        print(f"{label:20s} {column:7s} {res['tasks_per_s']:9.1f} tasks/s "
              f"({res['device']})", file=sys.stderr)

    meta = {"command": " ".join(["python", "benchmarks/gpu_throughput.py", *sys.argv[1:]]),
            "steps": args.steps, "log_every": LOG_EVERY, "warmup_windows": args.warmup,
            "python": platform.python_version()}
    if args.json:
        print(json.dumps({**meta, "results": results}, indent=2))
        return
    columns = (["before"] if args.before else []) + args.precisions
    print(f"single run, {args.steps} steps, median of 10-step windows after "
          f"{args.warmup}; tasks/s (transfer: images/s)")
    print("| learner | " + " | ".join(columns) + " | best / before | paper-length MAML run |")
    print("|---|" + "---|" * (len(columns) + 2))
    for label, row in results.items():
        cells = [f"{row[c]['tasks_per_s']:.0f}" if "tasks_per_s" in row.get(c, {})
                 else row.get(c, {}).get("error", "-") for c in columns]
        ours = [row[c]["tasks_per_s"] for c in args.precisions if "tasks_per_s" in row.get(c, {})]
        before = row.get("before", {}).get("tasks_per_s")
        ratio = f"{max(ours) / before:.1f}x" if ours and before else "-"
        paper = (f"{PAPER_TASKS / max(ours) / 60:.0f} min" if ours and label != "transfer"
                 else "-")
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {paper} |")


if __name__ == "__main__":
    main()
