"""How fast one meta-training step is against a plain per-task loop, and against the hardware.

    python benchmarks/step_efficiency.py --data-root ../shared/data/omniglot [--threads 2]

For ProtoNet and for MAML first and second order with 1 and 5 inner steps (5-way 1-shot
15-query, 16 tasks a step, forward + backward + Adam):

* episodes/s of the trainer's step (one conv pass / ``vmap`` over all tasks) and, in the
  same run and interleaved step by step, of a straightforward reference that loops over the
  tasks in Python (``torch.autograd.grad`` inner loop, as most MAML code does). The two
  compute the same loss; the script checks it on one batch before timing.
* FLOP per step counted by ``torch.utils.flop_counter`` on the reference (convolutions and
  matmuls, forward and backward, second-order terms included), the achieved FLOP/s, and
  that as a fraction of this machine's measured float32 matmul FLOP/s (2048 x 2048, median
  of 20).
* peak memory of a step (Linux): the rise of the resident size above its level before the
  steps, each configuration in a fresh subprocess with the peak reset after data loading.

ProtoNet's reference is not bit-for-bit the same loss: in training, batch norm takes its
statistics over the images of one task instead of all 16 (the "loss diff" column).

Medians over --repeats timed steps after --warmup.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from trainer.config import TrainConfig
from trainer.data.episodes import Episode
from trainer.data.omniglot import load_omniglot
from trainer.data.splits import make_splits
from trainer.learners import Learner
from trainer.runs import build
from trainer.runtime import tune_allocator

CONFIGS = {
    "protonet": ("protonet", {}),
    "maml 2nd order, 1 step": ("maml", {"inner_steps": 1}),
    "maml 1st order, 1 step": ("maml", {"inner_steps": 1, "first_order": True}),
    "maml 2nd order, 5 steps": ("maml", {"inner_steps": 5, "inner_lr": 0.1}),
    "maml 1st order, 5 steps": ("maml", {"inner_steps": 5, "inner_lr": 0.1,
                                         "first_order": True}),
}
BATCH = 16


def reference_loss(learner: Learner, ep: Episode) -> torch.Tensor:
    """The same loss as ``learner.loss``, one task at a time in a Python loop."""
    losses = []
    if learner.name == "protonet":
        from trainer.models.conv4 import prototypes, sq_distances

        for t in range(ep.batch):
            protos = prototypes(learner.backbone(ep.support_x[t]), ep.support_y[t], ep.way)
            logits = -sq_distances(learner.backbone(ep.query_x[t]), protos)
            losses.append(F.cross_entropy(logits, ep.query_y[t]))
        return torch.stack(losses).mean()
    hp = learner.hparams
    body = dict(learner.backbone.named_parameters())
    lrs = dict(zip(learner._lr_names, learner.log_inner_lr.exp(), strict=True))
    for t in range(ep.batch):
        sx, sy = ep.support_x[t], ep.support_y[t]
        params = learner._init_task_params(body, sx, sy, ep.way)
        for _ in range(hp["inner_steps"]):
            logits, _ = learner._forward(params, sx, None)
            grads = torch.autograd.grad(F.cross_entropy(logits, sy), list(params.values()),
                                        create_graph=not hp["first_order"])
            params = {k: p - lrs[k] * g for (k, p), g in zip(params.items(), grads,
                                                             strict=True)}
        _, stats = learner._forward(params, sx, None)
        logits, _ = learner._forward(params, ep.query_x[t], stats)
        losses.append(F.cross_entropy(logits, ep.query_y[t]))
    return torch.stack(losses).mean()


def matmul_flops(n: int = 2048, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


def setup(label: str, splits):
    algo, hp = CONFIGS[label]
    cfg = TrainConfig(algo=algo, way=5, shot=1, query=15, batch=BATCH, hparams=hp)
    learner, sampler, _ = build(cfg, splits, torch.device("cpu"))
    opt = torch.optim.Adam(learner.parameters(), 1e-3)
    return learner.train(), sampler, opt


def timed_step(learner, sampler, opt, reference: bool) -> float:
    ep = sampler.sample()
    t = time.perf_counter()
    loss = reference_loss(learner, ep) if reference else learner.loss(ep)[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_child(args: argparse.Namespace, label: str) -> None:
    """In a fresh process: how far the resident size rises above its level before the
    steps (MiB), over --warmup + 3 steps of ``label``. Linux: the peak (VmHWM) is reset
    after loading the data, so the data loading's own peak does not count."""
    splits = make_splits(load_omniglot(args.data_root, 28, cache_dir=args.cache_dir), "seed")
    learner, sampler, opt = setup(label, splits)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_kib("VmRSS")
    for _ in range(args.warmup + 3):
        timed_step(learner, sampler, opt, reference=False)
    print(json.dumps({"peak_rise_mib": (_status_kib("VmHWM") - base) / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "nomgui-bench")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args, args.memory_child)
        return

    splits = make_splits(load_omniglot(args.data_root, 28, cache_dir=args.cache_dir), "seed")
    peak = matmul_flops()
    rows = []
    for label in CONFIGS:
        learner, sampler, opt = setup(label, splits)
        ep = sampler.sample()
        # the reference computes the same loss (with graph: its inner loop needs autograd)
        diff = abs(float(learner.loss(ep)[0].detach())
                   - float(reference_loss(learner, ep).detach()))
        # FLOPs are counted on the per-task reference: the same arithmetic, while the counter
        # over-counts convolutions under vmap (they become grouped convolutions).
        with FlopCounterMode(display=False) as counter:
            reference_loss(learner, ep).backward()
        flops = counter.get_total_flops()
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.warmup + args.repeats):
            for reference in (False, True):  # interleaved
                dt = timed_step(learner, sampler, opt, reference)
                if r >= args.warmup:
                    times[reference].append(dt)
        ours, ref = statistics.median(times[False]), statistics.median(times[True])
        child = subprocess.run(
            [sys.executable, __file__, "--data-root", str(args.data_root), "--cache-dir",
             str(args.cache_dir), "--threads", str(torch.get_num_threads()),
             "--warmup", str(args.warmup), "--memory-child", label],
            capture_output=True, text=True, check=True)
        mem = json.loads(child.stdout.strip().splitlines()[-1])["peak_rise_mib"]
        rows.append((label, BATCH / ours, BATCH / ref, ref / ours, flops / 1e9,
                     flops / ours / 1e9, flops / ours / peak, mem, diff))
        print(f"done: {label}", file=sys.stderr)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul "
          f"2048x2048: {peak / 1e9:.1f} GFLOP/s (median of 20)")
    print("| step (16 tasks, 5-way 1-shot 15-query) | episodes/s | per-task loop | speed-up "
          "| GFLOP/step | GFLOP/s | of matmul peak | peak memory MiB | loss diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.2f}x | {r[4]:.1f} | {r[5]:.1f} "
              f"| {100 * r[6]:.0f}% | {r[7]:.0f} | {r[8]:.1e} |")


if __name__ == "__main__":
    main()
