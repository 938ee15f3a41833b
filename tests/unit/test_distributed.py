"""Data-parallel training with 2 processes on the CPU (gloo), as torchrun would run it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from trainer import checkpoint as ckpt
from trainer import engine
from trainer.config import TrainConfig
from trainer.data.splits import make_splits
from trainer.distributed import Dist, join, shutdown
from trainer.runs import build

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digest(module: torch.nn.Module) -> str:
    """Of the parameters. (BN running statistics are each rank's own between steps, as in
    any DDP job: DDP copies rank 0's at the start of each forward.)"""
    h = hashlib.sha256()
    for t in module.parameters():
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Recording:
    """Wraps a sampler; before each step records a digest of the parameters it starts from."""

    def __init__(self, sampler, learner) -> None:
        self.sampler, self.learner, self.digests = sampler, learner, []

    def sample(self):
        self.digests.append(_digest(self.learner))
        return self.sampler.sample()

    def state_dict(self):
        return self.sampler.state_dict()

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state)


def _cfg(algo: str, **kw) -> TrainConfig:
    base = {"algo": algo, "dataset": "folder", "way": 5, "shot": 1, "query": 3, "batch": 4,
            "steps": 24, "val_every": 12, "val_episodes": 10, "checkpoint_every": 100,
            "lr": 3e-3}
    return TrainConfig(**{**base, **kw})


def _worker(rank: int, port: int, cfg: TrainConfig, glyphs, run_dir: str, out: str,
            stop_rank1_at: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ctx = join("gloo", rank, 2)
    try:
        learner, sampler, validate = build(cfg, make_splits(glyphs, "seed"),
                                           torch.device("cpu"), ctx)
        rec = _Recording(sampler, learner)
        calls = {"n": 0}

        def should_stop() -> bool:  # only rank 1 is asked to stop
            calls["n"] += 1
            return rank == 1 and stop_rank1_at is not None and calls["n"] > stop_rank1_at

        result = engine.train(cfg, learner, rec, validate, Path(run_dir), log_every=1,
                              should_stop=should_stop, dist=ctx)
        rec.digests.append(_digest(learner))
        report = {"digests": rec.digests, "status": result.status, "step": result.step,
                  "batch": sampler.batch}
    finally:
        shutdown(ctx)
    report["gloo_threads_left"] = _gloo_threads()
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))


def _gloo_threads() -> int | None:
    """gloo's native threads alive in this process (None where /proc cannot tell).

    After ``shutdown`` there must be none: a thread left running can free a collective's
    tensors while the interpreter finalises, which aborts the process at exit."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()]
    return sum("gloo" in n for n in names)


def _spawn(cfg, glyphs, run_dir: Path, out: Path, stop_rank1_at: int | None = None):
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(_free_port(), cfg, glyphs, str(run_dir), str(out), stop_rank1_at),
             nprocs=2, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def _losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").open())
            if r["event"] == "step"]


# protonet goes through DistributedDataParallel, maml through the explicit all-reduce.
@pytest.mark.parametrize("algo", ["protonet", "maml"])
def test_two_ranks_stay_identical_and_learn(algo, glyph_set, tmp_path):
    cfg = _cfg(algo)
    ranks = _spawn(cfg, glyph_set, tmp_path / "run", tmp_path / "out")
    assert [r["batch"] for r in ranks] == [2, 2]  # the meta-batch of 4 is shared out
    assert ranks[0]["status"] == ranks[1]["status"] == "finished"
    assert [r["gloo_threads_left"] for r in ranks] in ([0, 0], [None, None])  # group ended
    assert len(ranks[0]["digests"]) == cfg.steps + 1
    assert ranks[0]["digests"] == ranks[1]["digests"]  # identical after every step
    assert len(set(ranks[0]["digests"])) == cfg.steps + 1  # and they did change
    losses = _losses(tmp_path / "run")
    assert len(losses) == cfg.steps  # rank 0 alone logs
    assert sum(losses[-6:]) / 6 < 0.8 * sum(losses[:6]) / 6
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["world_size"] == 2


def test_a_stop_on_one_rank_stops_both_and_resumes_in_one_process(glyph_set, tmp_path):
    cfg = _cfg("maml", steps=10)
    ranks = _spawn(cfg, glyph_set, tmp_path / "run", tmp_path / "out", stop_rank1_at=4)
    assert [(r["status"], r["step"]) for r in ranks] == [("stopped", 4), ("stopped", 4)]
    state = ckpt.read(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 4 and state["world_size"] == 2 and len(state["sampler_ranks"]) == 2
    assert not torch.equal(state["sampler_ranks"][0]["generator"],
                           state["sampler_ranks"][1]["generator"])  # own streams

    learner, sampler, validate = build(cfg, make_splits(glyph_set, "seed"), torch.device("cpu"))
    result = engine.train(cfg, learner, sampler, validate, tmp_path / "run", resume=True,
                          log_every=1)
    assert result.status == "finished" and result.step == 10
    assert sampler.batch == 4  # one process takes the whole meta-batch
    steps = [r["step"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open())
             if r["event"] == "step"]
    assert steps == list(range(1, 11))


def test_work_sharing_rules():
    two = Dist(rank=1, world_size=2)
    assert two.per_rank(16) == 8 and Dist().per_rank(5) == 5
    with pytest.raises(ValueError, match="does not divide over 2 processes"):
        two.per_rank(5)
    assert Dist(rank=0, world_size=2).seed(7) == 7 and two.seed(7) != 7
    assert not Dist().any(False) and Dist().any(True) and Dist().mean([1.0, 2.0]) == [1.0, 2.0]


@pytest.mark.slow
def test_torchrun_cli_two_processes_then_resume_in_one(glyph_tree, tmp_path):
    """The real launcher: torchrun with 2 CPU processes, then a 1-process --resume."""
    common = ["meta-train", "--algo", "protonet", "--dataset", "folder", "--data-root",
              str(glyph_tree), "--cache-dir", str(tmp_path / "cache"), "--way", "5",
              "--shot", "1", "--query", "3", "--batch", "4", "--val-every", "6",
              "--val-episodes", "10", "--out", str(tmp_path / "run"), "--json-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", "-m", "trainer", *common, "--steps", "6"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "start" and events[0]["world_size"] == 2
    assert events[0]["batch_per_process"] == 2
    assert sum(e["event"] == "done" for e in events) == 1  # rank 0 alone reports

    proc = subprocess.run([sys.executable, "-m", "trainer", *common, "--steps", "9",
                           "--resume"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["step"] == 9 and done["status"] == "finished"
