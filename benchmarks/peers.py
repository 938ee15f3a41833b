"""The trainer's step against public few-shot code and a plain per-task loop, on this machine.

    python benchmarks/peers.py --data-root DATA [--runs 5] [--threads 2] [--json]

For every learner (ProtoNet, MAML and Proto-MAML, first and second order, 1 inner step;
5-way 1-shot 15-query, 28x28, Conv4, 16 tasks per outer step, Adam 1e-3, data in memory)
it times full training steps (sample + forward + backward + Adam) of

* ``project``: the trainer's own step (``learner.loss`` as trainer.engine runs it, with the
  allocator tuning the trainer's CLI applies);
* ``loop``: the same step written here in plain PyTorch as most few-shot code writes it, one
  task at a time with a backward per task (``torch.autograd.grad`` inner loop for MAML, the
  same maths as the project's learner: support-statistics batch norm, MAML's shared output
  row, Proto-MAML's prototype head), so a ratio exists with no extra package;
* ``easyfsl`` (ProtoNet) and ``learn2learn`` (MAML first and second order) when installed:
  their own classes (``easyfsl.methods.PrototypicalNetworks``; ``l2l.algorithms.MAML`` on
  ``l2l.vision.models.CNN4(channels=1, max_pool=True)``, the same Conv4) in their documented
  per-task training loop, on a plain nn.Sequential Conv4 for easyfsl. A peer
  that is not installed is skipped with a line. learn2learn 0.2.0's sdist does not build on
  Python 3.11 (its pre-generated Cython C includes ``longintrepr.h``); regenerate the C files
  with Cython 3 and build the wheel by hand, then it imports with ``requests`` and ``gym``
  installed; or run without it. Neither peer is a dependency of the project.
* ``before`` with ``--before DIR``: the trainer of an older tree (``DIR/trainer``), to show
  what a change bought in the same interleaved run.
* ``project-bf16`` with ``--bf16``: the trainer's step with ``--precision bf16`` (the
  forward autocast to bfloat16, as trainer.engine does); its ratio is given separately,
  as it is other arithmetic (accuracy to be checked on a training run, README).

Every (learner, implementation) runs in a fresh process, --runs times, interleaved round by
round (the order rotates each round) so a noisy neighbour hits all alike. Each run reports
the median step time of --steps timed steps after --warmup; the table gives the median and
range over runs, in episodes (tasks) per second, and project / best other implementation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BATCH, WAY, SHOT, QUERY = 16, 5, 1, 15
LEARNERS = {  # label: (algo, hparams)
    "protonet": ("protonet", {}),
    "maml 1st order": ("maml", {"first_order": True}),
    "maml 2nd order": ("maml", {}),
    "protomaml 1st order": ("protomaml", {"first_order": True}),
    "protomaml 2nd order": ("protomaml", {}),
}
PEERS = {"protonet": ["easyfsl"], "maml 1st order": ["learn2learn"],
         "maml 2nd order": ["learn2learn"]}
IMPLS = ["project", "project-bf16", "loop", "easyfsl", "learn2learn", "before"]
OURS = ("project", "project-bf16", "before")


def installed(impl: str) -> bool:
    return impl in ("project", "loop", "before") or importlib.util.find_spec(impl) is not None


# -- the plain per-task loop -------------------------------------------------------------------
def plain_conv4(params: list[torch.Tensor], x: torch.Tensor,
                stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
    """Conv4 with support-statistics batch norm: per block conv weight, bias, BN weight, bias.
    Returns the embedding (M, 64) and the statistics used."""
    used = []
    for i in range(4):
        w, b, gamma, beta = params[4 * i: 4 * i + 4]
        x = F.conv2d(x, w, b, padding=1)
        if stats is None:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        else:
            mean, var = stats[i]
        used.append((mean, var))
        x = (x - mean[:, None, None]) * torch.rsqrt(var + 1e-5)[:, None, None]
        x = x * gamma[:, None, None] + beta[:, None, None]
        x = F.max_pool2d(F.relu(x), 2)
    return x.flatten(1), used


def plain_conv4_module(weights_from: nn.Module) -> nn.Sequential:
    """Conv4 as nn.Sequential (standard batch norm), with the project's initial weights."""
    layers: list[nn.Module] = []
    for conv, norm in zip(weights_from.convs, weights_from.norms, strict=True):
        c = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1)
        n = nn.BatchNorm2d(conv.out_channels)
        c.load_state_dict(conv.state_dict())
        n.load_state_dict(norm.state_dict())
        layers += [c, n, nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten())


def loop_step_protonet(backbone: nn.Module, ep) -> torch.Tensor:
    """One task at a time: one forward of its 80 images, loss / B, backward."""
    total = 0.0
    for t in range(ep.batch):
        nk = ep.support_x.shape[1]
        emb = backbone(torch.cat([ep.support_x[t], ep.query_x[t]]))
        s, q = emb[:nk], emb[nk:]
        onehot = F.one_hot(ep.support_y[t], ep.way).float()
        protos = onehot.T @ s / onehot.sum(0)[:, None]
        logits = -torch.cdist(q, protos) ** 2
        loss = F.cross_entropy(logits, ep.query_y[t]) / ep.batch
        loss.backward()
        total += float(loss.detach())
    return torch.tensor(total)


def loop_step_maml(body: list[torch.Tensor], head: tuple[torch.Tensor, torch.Tensor] | None,
                   lr: float, first_order: bool, ep) -> torch.Tensor:
    """MAML (head = the shared output row) or Proto-MAML (head None: from prototypes),
    one inner step, one task at a time with a backward per task."""
    total = 0.0
    for t in range(ep.batch):
        sx, sy, qx, qy = ep.support_x[t], ep.support_y[t], ep.query_x[t], ep.query_y[t]
        if head is None:
            emb, _ = plain_conv4(body, sx)
            onehot = F.one_hot(sy, ep.way).to(emb.dtype)
            c = onehot.T @ emb / onehot.sum(0)[:, None]
            w, b = 2 * c, -(c * c).sum(-1)
        else:
            w, b = head[0].expand(ep.way, -1), head[1].expand(ep.way)
        params = [*body, w, b]
        emb, _ = plain_conv4(params[:-2], sx)
        inner = F.cross_entropy(emb @ params[-2].T + params[-1], sy)
        # Proto-MAML's head comes from the body: its graph must outlive the inner gradient.
        grads = torch.autograd.grad(inner, params, create_graph=not first_order,
                                    retain_graph=head is None or not first_order)
        fast = [p - lr * g for p, g in zip(params, grads, strict=True)]
        _, stats = plain_conv4(fast[:-2], sx)
        emb, _ = plain_conv4(fast[:-2], qx, stats)
        loss = F.cross_entropy(emb @ fast[-2].T + fast[-1], qy) / ep.batch
        loss.backward()
        total += float(loss.detach())
    return torch.tensor(total)


# -- one (learner, implementation) in this process ---------------------------------------------
def child(args: argparse.Namespace) -> None:
    from trainer.config import TrainConfig
    from trainer.data.omniglot import load_omniglot
    from trainer.data.splits import make_splits
    from trainer.runs import build
    from trainer.runtime import tune_allocator

    label, impl = args.child
    algo, hp = LEARNERS[label]
    if impl in OURS or args.tune_peers:
        tune_allocator()  # what the trainer's CLI does at its start
    torch.set_num_threads(args.threads)
    splits = make_splits(load_omniglot(args.data_root, 28, cache_dir=args.cache_dir), "seed")
    cfg = TrainConfig(algo=algo, way=WAY, shot=SHOT, query=QUERY, batch=BATCH, hparams=hp)
    learner, sampler, _ = build(cfg, splits, torch.device("cpu"))
    learner.train()
    lr = learner.hparams.get("inner_lr", 0.0)
    fo = bool(learner.hparams.get("first_order", False))

    if impl in OURS:  # "before": the same code, imported from --before's older tree
        params = [p for p in learner.parameters() if p.requires_grad]

        bf16 = impl == "project-bf16"  # trainer.engine.precision_context("bf16"), inlined
        # so that an older tree (--before) without it runs the same code

        def step(ep):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, _ = learner.loss(ep)
            loss.backward()
            return loss.detach()
    elif impl == "loop" and algo == "protonet":
        net = plain_conv4_module(learner.backbone).train()
        params = list(net.parameters())

        def step(ep):
            return loop_step_protonet(net, ep)
    elif impl == "loop":
        bb = learner.backbone  # per block: conv weight, conv bias, BN weight, BN bias
        body = [p.detach().clone().requires_grad_() for c, n in zip(bb.convs, bb.norms,
                                                                     strict=True)
                for p in (c.weight, c.bias, n.weight, n.bias)]
        head = ((learner.head_weight.detach().clone().requires_grad_(),
                 learner.head_bias.detach().clone().requires_grad_())
                if algo == "maml" else None)
        params = body + (list(head) if head else [])

        def step(ep):
            return loop_step_maml(body, head, lr, fo, ep)
    elif impl == "easyfsl":
        from easyfsl.methods import PrototypicalNetworks

        model = PrototypicalNetworks(plain_conv4_module(learner.backbone)).train()
        params = list(model.parameters())

        def step(ep):  # easyfsl's episodic training loop, one task at a time
            total = 0.0
            for t in range(ep.batch):
                model.process_support_set(ep.support_x[t], ep.support_y[t])
                loss = F.cross_entropy(model(ep.query_x[t]), ep.query_y[t]) / ep.batch
                loss.backward()
                total += float(loss.detach())
            return torch.tensor(total)
    elif impl == "learn2learn":
        import learn2learn as l2l

        torch.manual_seed(0)
        # CNN4 with max-pooling: the project's Conv4 (OmniglotCNN is Finn et al.'s variant
        # with strided convolutions instead of pooling, about a quarter of the work)
        model = l2l.vision.models.CNN4(output_size=WAY, hidden_size=64, layers=4, channels=1,
                                       max_pool=True, embedding_size=64)
        maml = l2l.algorithms.MAML(model, lr=lr, first_order=fo)
        params = list(maml.parameters())

        def step(ep):  # learn2learn's maml_omniglot example: clone, adapt, backward per task
            total = 0.0
            for t in range(ep.batch):
                task = maml.clone()
                task.adapt(F.cross_entropy(task(ep.support_x[t]), ep.support_y[t]))
                loss = F.cross_entropy(task(ep.query_x[t]), ep.query_y[t]) / ep.batch
                loss.backward()
                total += float(loss.detach())
            return torch.tensor(total)
    else:
        raise SystemExit(f"unknown implementation {impl}")

    opt = torch.optim.Adam(params, 1e-3)
    times, cpu, first_loss = [], [], None
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        ep = sampler.sample()
        opt.zero_grad(set_to_none=True)
        loss = step(ep)
        opt.step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if first_loss is None:
            first_loss = float(loss)
        if i >= args.warmup:
            times.append(dt)
            cpu.append(dc)
    # CPU time (all threads) says how much work a step is, even on a busy machine
    print(json.dumps({"episodes_per_s": BATCH / statistics.median(times),
                      "episodes_per_cpu_s": BATCH / statistics.median(cpu),
                      "first_loss": first_loss}))


# -- the interleaved driver --------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--cache-dir", type=Path,
                   default=Path(tempfile.gettempdir()) / "nomgui-bench")
    p.add_argument("--runs", type=int, default=5, help="fresh processes per implementation")
    p.add_argument("--steps", type=int, default=10, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--learners", nargs="+", choices=list(LEARNERS), default=list(LEARNERS))
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=IMPLS)
    p.add_argument("--tune-peers", action="store_true",
                   help="give the other implementations the project's allocator tuning too")
    p.add_argument("--before", type=Path, metavar="DIR",
                   help="also time the trainer of an older tree as 'before' (DIR holds its "
                        "trainer/, e.g. git archive COMMIT trainer | tar -x -C DIR)")
    p.add_argument("--bf16", action="store_true",
                   help="also time the trainer's step with --precision bf16")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    from trainer.data.omniglot import load_omniglot

    load_omniglot(args.data_root, 28, cache_dir=args.cache_dir)  # decode once, before timing
    jobs = []
    for label in args.learners:
        for impl in args.impls:
            if (impl in ("project", "loop") or impl in PEERS.get(label, [])) and installed(impl):
                jobs.append((label, impl))
        if args.before:
            jobs.append((label, "before"))
        if args.bf16:
            jobs.append((label, "project-bf16"))
    for impl in ("easyfsl", "learn2learn"):
        if impl in args.impls and not installed(impl):
            print(f"{impl} is not installed: skipped", file=sys.stderr)

    results: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
    per_cpu_s: dict[tuple[str, str], list[float]] = {j: [] for j in jobs}
    first_loss: dict[tuple[str, str], float] = {}
    for r in range(args.runs):
        order = jobs[r % len(jobs):] + jobs[: r % len(jobs)]
        for label, impl in order:
            cmd = [sys.executable, __file__, "--data-root", str(args.data_root),
                   "--cache-dir", str(args.cache_dir), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--child", label, impl] + (["--tune-peers"] if args.tune_peers else [])
            env = ({**os.environ, "PYTHONPATH": str(args.before.resolve())}
                   if impl == "before" else None)
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                raise SystemExit(f"{label} / {impl} failed:\n{out.stderr[-3000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[(label, impl)].append(res["episodes_per_s"])
            per_cpu_s[(label, impl)].append(res["episodes_per_cpu_s"])
            first_loss[(label, impl)] = res["first_loss"]
            print(f"run {r + 1}/{args.runs} {label:20s} {impl:12s} "
                  f"{res['episodes_per_s']:6.1f} episodes/s "
                  f"({res['episodes_per_cpu_s']:.1f} per CPU-second)", file=sys.stderr)

    table = {}
    for label in args.learners:
        row = {}
        for impl in IMPLS:
            v = results.get((label, impl))
            if v:
                row[impl] = {"median": round(statistics.median(v), 2), "min": round(min(v), 2),
                             "max": round(max(v), 2), "runs": [round(x, 2) for x in v],
                             "first_loss": round(first_loss[(label, impl)], 4),
                             "episodes_per_cpu_s_median":
                                 round(statistics.median(per_cpu_s[(label, impl)]), 2)}
        others = {k: v["median"] for k, v in row.items() if k not in OURS}
        entry: dict = {"episodes_per_s": row}
        if "project" in row and others:
            best = max(others, key=others.get)
            entry["best_other"] = best
            entry["project_over_best"] = round(row["project"]["median"] / others[best], 2)
        if "project-bf16" in row and others:
            best = max(others, key=others.get)
            entry["project_bf16_over_best"] = round(row["project-bf16"]["median"]
                                                    / others[best], 2)
        if "project" in row and "before" in row:
            entry["project_over_before"] = round(row["project"]["median"]
                                                 / row["before"]["median"], 2)
        table[label] = entry
    meta = {"machine": f"{platform.machine()}, {_cpu_name()}, {args.threads} threads, "
                       f"torch {torch.__version__}, Python {platform.python_version()}",
            "command": " ".join(["python", "benchmarks/peers.py", *sys.argv[1:]]),
            "runs": args.runs, "steps": args.steps, "warmup": args.warmup,
            "load_average_at_end": list(_loadavg())}
    if args.json:
        print(json.dumps({**meta, "results": table}, indent=2))
        return
    print(f"{meta['machine']}; {args.runs} fresh processes per cell, each the median of "
          f"{args.steps} steps after {args.warmup}; episodes/s: median [min-max]")
    shown = [i for i in IMPLS if any(i in e["episodes_per_s"] for e in table.values())]
    names = {"loop": "plain loop", "before": "project before", "project-bf16": "project bf16"}
    print("| learner | " + " | ".join(names.get(i, i) for i in shown)
          + " | project / best other |")
    print("|---|" + "---|" * (len(shown) + 1))
    for label, entry in table.items():
        cells = []
        for impl in shown:
            c = entry["episodes_per_s"].get(impl)
            cells.append(f"{c['median']:.1f} [{c['min']:.1f}-{c['max']:.1f}]" if c else "-")
        ratio = (f"{entry['project_over_best']:.2f}x ({entry['best_other']})"
                 if "best_other" in entry else "-")
        if "project_over_before" in entry:
            ratio += f"; {entry['project_over_before']:.2f}x before"
        if "project_bf16_over_best" in entry:
            ratio += f"; bf16 {entry['project_bf16_over_best']:.2f}x"
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _loadavg() -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ()


if __name__ == "__main__":
    main()
