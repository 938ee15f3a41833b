"""The ONE training loop, for every learner.

It owns the optimizer, the LR schedule, periodic validation, the best-by-validation model,
atomic checkpoints (every ``checkpoint_every`` steps and when asked to stop) and exact
resume. Learners only compute losses. Progress goes out as event dicts through
``on_event``; cancellation comes in through ``should_stop`` (checked once per step).

Files in the run folder:
  config.json     the resolved TrainConfig and learner spec
  checkpoint.pt   last state, for --resume (also a loadable model file)
  best.pt         model file of the best validation score so far
  metrics.jsonl   one JSON object per logged step / validation
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from trainer import checkpoint as ckpt
from trainer.config import TrainConfig
from trainer.learners.base import Learner

Event = dict[str, Any]


class Sampler(Protocol):
    def sample(self) -> Any: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class RunError(RuntimeError):
    """The run folder does not fit the request (resume without checkpoint, overwrite...)."""


@dataclass(frozen=True)
class TrainResult:
    status: str  # "finished" | "stopped"
    step: int
    best_val: float | None
    best_step: int | None
    run_dir: Path

    @property
    def model_path(self) -> Path:
        return self.run_dir / "best.pt"


def _move(batch: Any, device: torch.device) -> Any:
    if hasattr(batch, "to"):
        return batch.to(device)
    return tuple(t.to(device) for t in batch)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    if cfg.schedule == "cosine":
        def factor(step: int) -> float:
            return 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    else:
        def factor(step: int) -> float:
            return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(
    cfg: TrainConfig,
    learner: Learner,
    sampler: Sampler,
    validate: Callable[[Learner], float],
    run_dir: Path,
    *,
    device: torch.device | str = "cpu",
    resume: bool = False,
    log_every: int = 10,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``learner`` for ``cfg.steps`` steps (from its checkpoint if ``resume``).

    ``validate(learner) -> score`` (higher is better, percent) picks the best model.
    """
    device = torch.device(device)
    run_dir = Path(run_dir)
    ckpt_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    metrics_path = run_dir / "metrics.jsonl"
    emit = on_event or (lambda event: None)

    learner.to(device).train()
    params = [p for p in learner.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = make_schedule(optimizer, cfg)
    step, best_val, best_step = 0, None, None

    if resume:
        if not ckpt_path.is_file():
            raise RunError(f"nothing to resume: {ckpt_path} does not exist")
        state = ckpt.read(ckpt_path)
        if state["learner"] != learner.config():
            raise RunError("the checkpoint was made by a differently configured learner: "
                           f"{state['learner']} vs {learner.config()}")
        learner.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        step, best_val, best_step = state["step"], state["best_val"], state["best_step"]
        _truncate_log(metrics_path, step)
    else:
        if ckpt_path.exists():
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it or "
                           "choose another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(
        {"train_config": cfg.to_dict(), "learner": learner.config()}, indent=2))

    def save_checkpoint() -> None:
        payload = ckpt.model_payload(learner, train_config=cfg.to_dict(),
                                     metrics={"val_acc": best_val, "val_step": best_step})
        payload.update(format=ckpt.CHECKPOINT_FORMAT, optimizer=optimizer.state_dict(),
                       schedule=schedule.state_dict(), sampler=sampler.state_dict(),
                       torch_rng=torch.get_rng_state(), step=step, best_val=best_val,
                       best_step=best_step)
        ckpt.save(payload, ckpt_path)

    def log(record: Event) -> None:
        with metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        emit(record)

    emit({"event": "start", "step": step, "steps": cfg.steps, "run_dir": str(run_dir)})
    status = "finished"
    window_loss, window_acc, window_n = 0.0, 0.0, 0
    t_window = t_start = time.perf_counter()
    start_step = step
    while step < cfg.steps:
        if should_stop is not None and should_stop():
            status = "stopped"
            break
        batch = _move(sampler.sample(), device)
        loss, acc = learner.loss(batch)
        if not torch.isfinite(loss):
            save_checkpoint()
            raise FloatingPointError(f"loss became {float(loss)} at step {step + 1}; the last "
                                     "checkpoint is kept. Lower --lr or the inner LR.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        window_loss += float(loss.detach())
        window_acc += float(acc)
        window_n += 1

        if step % log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            per_step = (now - t_window) / window_n
            elapsed = now - t_start
            rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
            log({"event": "step", "step": step, "steps": cfg.steps,
                 "loss": window_loss / window_n, "acc": 100.0 * window_acc / window_n,
                 "lr": schedule.get_last_lr()[0],
                 "tasks_per_s": cfg.batch / per_step if per_step > 0 else None,
                 "eta_s": (cfg.steps - step) / rate if rate > 0 else None})
            window_loss, window_acc, window_n, t_window = 0.0, 0.0, 0, now

        if step % cfg.val_every == 0 or step == cfg.steps:
            score = validate(learner)
            improved = best_val is None or score > best_val
            if improved:
                best_val, best_step = score, step
                ckpt.save(ckpt.model_payload(
                    learner, train_config=cfg.to_dict(),
                    metrics={"val_acc": score, "val_step": step}), best_path)
            log({"event": "val", "step": step, "val_acc": score, "best_val": best_val,
                 "improved": improved})
        if step % cfg.checkpoint_every == 0:
            save_checkpoint()

    save_checkpoint()
    emit({"event": "done", "status": status, "step": step, "best_val": best_val,
          "best_step": best_step, "model": str(best_path) if best_path.exists() else None})
    return TrainResult(status, step, best_val, best_step, run_dir)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines after the checkpoint's step, so a resumed run's log has no duplicates."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
