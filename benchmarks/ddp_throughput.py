"""Meta-training throughput with 1 and N processes (torchrun, gloo on CPU / NCCL on GPU).

Each configuration is a real ``torchrun -m trainer meta-train`` run; the figure is the median
of the ``tasks_per_s`` the trainer itself reports (every 10 steps, the first window dropped
as warm-up). On a CPU the cores are shared out: N processes get cores/N threads each, so
the comparison is between two ways of using the same machine. Runs are interleaved
(1, N, 1, N, ...) so drift on a shared machine hits both alike.

    python benchmarks/ddp_throughput.py --data-root ../shared/data/omniglot \
        [--algos protonet maml] [--procs 1 2] [--steps 80] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run_once(algo: str, procs: int, args: argparse.Namespace, out: Path) -> list[float]:
    threads = max(1, (os.cpu_count() or 1) // procs) if args.device == "cpu" else 1
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={procs}", "-m", "trainer", "meta-train", "--algo", algo,
           "--dataset", "omniglot", "--data-root", str(args.data_root),
           "--way", "5", "--shot", "1", "--query", "15", "--batch", str(args.batch),
           "--steps", str(args.steps), "--val-every", str(args.steps * 10),
           "--checkpoint-every", str(args.steps * 10), "--threads", str(threads),
           "--device", args.device, "--out", str(out), "--json-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nfailed:\n{proc.stderr[-2000:]}")
    rates = [e["tasks_per_s"] for e in map(json.loads, filter(
        lambda s: s.startswith("{"), proc.stdout.splitlines())) if e["event"] == "step"]
    return rates[1:]  # the first window holds start-up (allocator warm-up, DDP buckets)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--algos", nargs="+", default=["protonet", "maml"])
    p.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--batch", type=int, default=16, help="meta-batch of the whole job")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            for r in range(args.repeats):
                for n in args.procs:
                    out = Path(tmp, f"{algo}-{n}-{r}")
                    rates.setdefault((algo, n), []).extend(run_once(algo, n, args, out))
    print("| learner | processes | threads each | episodes/s (median) | vs 1 process |")
    print("|---|---|---|---|---|")
    for algo in args.algos:
        base = statistics.median(rates[(algo, args.procs[0])])
        for n in args.procs:
            med = statistics.median(rates[(algo, n)])
            threads = max(1, (os.cpu_count() or 1) // n) if args.device == "cpu" else 1
            print(f"| {algo} | {n} | {threads} | {med:.1f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
