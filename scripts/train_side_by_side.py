"""Train several runs side by side on one machine (one GPU, many cores) within a time budget.

    python scripts/train_side_by_side.py PLAN --data-root DATA --out DIR --budget 420 \
        [--calibrate 45] [--device cuda]

PLAN has one run per line: a name, a step cap, then ``nomgui-train`` arguments without
--out/--steps/--data-root/--device (``#`` starts a comment)::

    maml2-seed 60000 meta-train --algo maml --way 5 --shot 1 --batch 32 --rotations

A small Conv4 leaves a big GPU mostly idle in one process, so several runs share it. How
many steps each can take depends on all the others running at once, so the script first
runs them all together for --calibrate seconds (constant LR, throw-away folders), reads
each one's own steps/s from its log, then starts the real runs with
``--steps = rate x budget x SAFETY`` (capped), so that they end together inside the budget
with a complete cosine schedule. Runs still going at the deadline get SIGTERM (the trainer
checkpoints and stops) and the summary says so. ``DIR/summary.json`` and the printed table
give each run's exact command, so a run can be repeated with plain ``nomgui-train``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import appdirs  # noqa: E402

from trainer.cli import build_parser  # noqa: E402  (the script runs from a checkout)
from trainer.data import load_dataset  # noqa: E402

SAFETY = 0.8  # validation, checkpoints and the slower start are not in the calibration
FOREVER = 10**8


@dataclass
class Job:
    name: str
    cap: int
    args: list[str]
    batch: int = 0
    data: tuple[str, int] = ("omniglot", 28)
    rate: float | None = None  # steps/s measured in the calibration
    steps: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list)


def read_plan(path: Path) -> list[Job]:
    jobs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if len(words) < 3 or not words[1].isdigit():
            raise SystemExit(f"{path}:{n}: expected 'name step-cap nomgui-train arguments'")
        job = Job(words[0], int(words[1]), words[2:])
        # Parse with the trainer's own parser: a typo fails here, not after the calibration.
        parsed = build_parser().parse_args([*job.args, "--out", "x"])
        job.batch = parsed.batch
        job.data = (parsed.dataset, parsed.image_size)
        jobs.append(job)
    if len({j.name for j in jobs}) != len(jobs):
        raise SystemExit(f"{path}: run names must be unique")
    return jobs


def launch(job: Job, extra: list[str], out: Path, log: Path) -> None:
    job.command = [sys.executable, "-m", "trainer", *job.args, *extra, "--out", str(out)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        job.proc = subprocess.Popen(job.command, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def step_events(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if event.get("event") == "step":
            events.append(event)
    return events


def stop_all(jobs: list[Job], grace: float) -> None:
    """SIGTERM (the trainer checkpoints), then SIGKILL whatever is left after ``grace`` s."""
    for job in jobs:
        if job.proc and job.proc.poll() is None:
            job.proc.send_signal(signal.SIGTERM)
    end = time.monotonic() + grace
    for job in jobs:
        if job.proc:
            try:
                job.proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.proc.kill()
                job.proc.wait()


def calibrate(jobs: list[Job], common: list[str], out: Path, seconds: float) -> None:
    extra = [*common, "--steps", str(FOREVER), "--schedule", "constant",
             "--val-every", str(FOREVER), "--checkpoint-every", str(FOREVER)]
    for job in jobs:
        launch(job, extra, out / job.name, out / f"{job.name}.log")
    deadline = time.monotonic() + seconds
    # The clock starts when every run is stepping (CUDA start-up differs per process) but
    # gives up on a run that has logged too little by then.
    hard = deadline + 2 * seconds + 60
    while time.monotonic() < hard:
        time.sleep(1.0)
        live = [j for j in jobs if j.proc.poll() is None]  # a run that exited failed
        if not live:
            break
        if all(len(step_events(out / j.name)) >= 3 for j in live):
            if time.monotonic() >= deadline:
                break
        else:
            deadline = time.monotonic() + seconds
    stop_all(jobs, grace=60)
    for job in jobs:
        events = step_events(out / job.name)[1:]  # the first window holds the warm-up
        rates = [e["tasks_per_s"] / job.batch for e in events if e.get("tasks_per_s")]
        job.rate = statistics.median(rates) if rates else None


def plan_steps(job: Job, budget: float) -> list[str] | None:
    """The real run's step arguments; None for a run that did not train in the calibration
    (its log says why), so that one broken line does not cost the other runs."""
    if job.rate is None:
        print(f"{job.name}: skipped, no speed measured; see calibration/{job.name}.log",
              file=sys.stderr)
        return None
    job.steps = max(100, min(job.cap, int(job.rate * budget * SAFETY) // 100 * 100))
    val_every = max(100, job.steps // 10 // 100 * 100)
    return ["--steps", str(job.steps), "--val-every", str(val_every),
            "--checkpoint-every", str(min(500, val_every))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("plan", type=Path)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, required=True, help="seconds for the real runs")
    p.add_argument("--calibrate", type=float, default=45.0, help="seconds of calibration")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    p.add_argument("--cache-dir", type=Path, default=Path(appdirs.user_cache_dir("nomgui")))
    args = p.parse_args()
    jobs = read_plan(args.plan)
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--data-root", str(args.data_root), "--cache-dir", str(args.cache_dir),
              "--device", args.device,
              "--threads", str(args.threads)]
    # Decode each data set once, before the runs start and would all decode it at once.
    for name, size in sorted({j.data for j in jobs}):
        load_dataset(name, args.data_root, size=size, cache_dir=args.cache_dir)
    try:
        calibrate(jobs, common, args.out / "calibration", args.calibrate)
        plans = {job.name: plan_steps(job, args.budget) for job in jobs}
        for job in jobs:
            print(f"{job.name}: {job.rate or 0:.2f} steps/s side by side -> {job.steps} steps",
                  flush=True)
        start = time.monotonic()
        for job in jobs:
            job.proc = None
            if plans[job.name] is not None:
                launch(job, [*common, *plans[job.name]], args.out / job.name,
                       args.out / f"{job.name}.log")
        while time.monotonic() < start + args.budget and any(
                j.proc and j.proc.poll() is None for j in jobs):
            time.sleep(2.0)
    finally:
        stop_all(jobs, grace=60)
    summary = []
    for job in jobs:
        events = step_events(args.out / job.name)
        summary.append({"name": job.name, "steps_per_s_calibrated": job.rate,
                        "steps": job.steps, "steps_done": events[-1]["step"] if events else 0,
                        "returncode": job.proc.returncode if job.proc else None,
                        "command": shlex.join(["nomgui-train", *job.command[3:]])
                        if job.proc else None})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for s in summary:
        print(f"{s['name']:16s} {s['steps_per_s_calibrated'] or 0:7.2f} steps/s  "
              f"{s['steps_done']:6d}/{s['steps']:<6d} rc={s['returncode']}  {s['command']}")
    return 0 if all(s["returncode"] == 0 for s in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
