"""Meta-training throughput per learner and data-set load time, on this machine.

    python benchmarks/train_throughput.py --data-root ../shared/data/omniglot

Episodes/s of full training steps (sample + forward + backward + Adam step), 5-way 1-shot
15-query, 16 tasks per step (transfer: 128 images per step, reported as images/s), median
over --repeats timed steps after --warmup untimed ones. Learners are interleaved round by
round so a noisy neighbour on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainer.config import TrainConfig
from trainer.data.omniglot import load_omniglot
from trainer.data.splits import make_splits
from trainer.runs import build
from trainer.runtime import tune_allocator

CONFIGS = {
    "protonet": ("protonet", {}),
    "maml (2nd order, 1 step)": ("maml", {}),
    "maml (1st order, 1 step)": ("maml", {"first_order": True}),
    "protomaml (2nd order, 1 step)": ("protomaml", {}),
    "protomaml (1st order, 1 step)": ("protomaml", {"first_order": True}),
    "transfer (pre-training)": ("transfer", {}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-allocator-tuning", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not args.no_allocator_tuning:
        tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        glyphs = load_omniglot(args.data_root, 28, cache_dir=Path(cache))
        cold = time.perf_counter() - t0
        warm_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            load_omniglot(args.data_root, 28, cache_dir=Path(cache))
            warm_times.append(time.perf_counter() - t0)
    splits = make_splits(glyphs, "seed")

    runners = {}
    for label, (algo, hp) in CONFIGS.items():
        batch = 128 if algo == "transfer" else 16
        cfg = TrainConfig(algo=algo, way=5, shot=1, query=15, batch=batch, hparams=hp)
        learner, sampler, _ = build(cfg, splits, torch.device("cpu"))
        opt = torch.optim.Adam([q for q in learner.parameters() if q.requires_grad], 1e-3)
        runners[label] = (learner.train(), sampler, opt, batch)

    def step(label: str) -> float:
        learner, sampler, opt, _ = runners[label]
        t = time.perf_counter()
        loss, _ = learner.loss(sampler.sample())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    times: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.warmup + args.repeats):
        for label in runners:
            dt = step(label)
            if r >= args.warmup:
                times[label].append(dt)

    result = {
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "omniglot_load_s": {"decode_and_cache": round(cold, 2),
                            "from_cache_median": round(statistics.median(warm_times), 3)},
        "throughput": {},
    }
    for label, ts in times.items():
        med = statistics.median(ts)
        unit = "images/s" if label.startswith("transfer") else "episodes/s"
        result["throughput"][label] = {unit: round(runners[label][3] / med, 1),
                                       "step_ms_median": round(1000 * med, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(result["machine"])
    print(f"Omniglot load: decode+cache {cold:.1f} s, from cache "
          f"{result['omniglot_load_s']['from_cache_median']:.3f} s (median of 5)")
    for label, r in result["throughput"].items():
        (unit, value), = [(k, v) for k, v in r.items() if k.endswith("/s")]
        print(f"  {label:32s} {value:8.1f} {unit}   ({r['step_ms_median']:.0f} ms/step)")


if __name__ == "__main__":
    main()
