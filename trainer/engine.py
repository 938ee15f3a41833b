"""The ONE training loop, for every learner.

It owns the optimizer, the LR schedule, periodic validation, the best-by-validation model,
atomic checkpoints (every ``checkpoint_every`` steps and when asked to stop) and exact
resume. Learners only compute losses. Progress goes out as event dicts through
``on_event``; cancellation comes in through ``should_stop`` (checked once per step).
Under torchrun the same loop runs on every rank (see :mod:`trainer.distributed`).

Files in the run folder:
  config.json     the resolved TrainConfig and learner spec
  checkpoint.pt   last state, for --resume (also a loadable model file)
  best.pt         model file of the best validation score so far
  metrics.jsonl   one JSON object per logged step / validation
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from trainer import checkpoint as ckpt
from trainer.config import TrainConfig
from trainer.distributed import SINGLE, Dist
from trainer.learners.base import Learner
from trainer.runtime import peak_rss_mb

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


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device
                      ) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """The arithmetic of a training step, around its forward and its backward.

    ``bf16``: the forward autocast to bfloat16 (convolutions and matmuls; reductions,
    losses and the weights stay float32; the backward follows the forward's types, so it
    runs outside autocast, as PyTorch advises). ``tf32``: float32 tensors, CUDA matmuls and
    convolutions in TensorFloat-32, forward and backward (the process-wide switch is put
    back after, so validation stays float32). ``fp32``: nothing changes.

    Use: ``with precision_context(p, d) as forward:`` then ``with forward(): loss = ...``.
    """
    tf32 = precision == "tf32" and device.type == "cuda"
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    def forward() -> contextlib.AbstractContextManager:
        if precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    try:
        yield forward
    finally:
        if tf32:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def schedule_factor(cfg: TrainConfig, step: int) -> float:
    """The LR at ``step`` as a fraction of ``cfg.lr``.

    Cosine: from 1 at step 0 to 0 at ``cfg.steps``. After ``resume --extend`` (``extend_from
    = (s0, f0)``) the steps from s0 on follow a cosine from f0 down to 0 at ``cfg.steps``,
    so the LR goes on from where it stood instead of jumping.
    """
    if cfg.schedule != "cosine":
        return 1.0
    if cfg.extend_from is not None and step >= cfg.extend_from[0]:
        start, f0 = cfg.extend_from
        span = max(cfg.steps - start, 1)
        return f0 * 0.5 * (1 + math.cos(math.pi * min(step - start, span) / span))
    return 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(cfg, step))


def continue_to(saved: TrainConfig, step: int, steps: int, *, extend: bool
                ) -> tuple[TrainConfig, str | None]:
    """The configuration a resumed run at ``step`` goes on with when asked for ``steps``,
    and a line saying what happens to its LR schedule (None: nothing changes).

    ``extend``: the cosine goes on from its value at ``step`` down to zero at ``steps``,
    which may also be fewer than the run planned (finishing a run early with a complete
    decay, e.g. when its time runs out). Otherwise a larger ``steps`` re-stretches the
    whole cosine over ``steps``, which restarts it part-way (a warm restart: the LR jumps up
    at ``step``), and a smaller one is ignored.
    """
    if steps == saved.steps or (steps < saved.steps and not extend):
        return saved, None
    if extend and steps <= step:
        raise RunError(f"--extend needs --steps above the step the run stands at ({step})")
    if saved.schedule != "cosine":
        return saved.replace(steps=steps), None
    now = schedule_factor(saved, step)
    if extend:
        if now < 1e-3:
            raise RunError(
                f"the run's cosine schedule had ended at step {step} (LR "
                f"{100 * now:.1f}% of --lr): --extend would continue at zero. Resume "
                f"without --extend to restart the schedule over {steps} steps")
        return saved.replace(steps=steps, extend_from=(step, now)), (
            f"the cosine schedule goes on from {100 * now:.0f}% of --lr at step {step} "
            f"down to 0 at step {steps} (--extend"
            f"{', ending before the planned ' + str(saved.steps) if steps < saved.steps else ''})")
    restarted = saved.replace(steps=steps, extend_from=None)
    return restarted, (
        f"--steps {steps} restarts the cosine schedule: it is re-stretched over {steps} "
        f"steps, so at step {step} the LR jumps from {100 * now:.0f}% to "
        f"{100 * schedule_factor(restarted, step):.0f}% of --lr (--extend instead goes on "
        "from where it stood)")


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
    dist: Dist = SINGLE,
    trained: dict[str, Any] | None = None,
    sync_every: int | None = None,
) -> TrainResult:
    """Train ``learner`` for ``cfg.steps`` steps (from its checkpoint if ``resume``).

    ``validate(learner) -> score`` (higher is better, percent) picks the best model.
    ``trained`` (:func:`trainer.checkpoint.trained_on`: the classes it trains and validates
    on) goes into every model file and checkpoint, for ``evaluate``'s seen-class guard.
    Under torchrun every rank calls this with its own ``sampler`` (its share of the batch)
    and ``dist``; rank 0 alone validates, logs, emits events and writes files.

    ``sync_every``: steps between the host's looks at the loss (whether it is finite). Loss
    and accuracy are summed on the device and read at log steps; on an accelerator every
    read waits for the queued work, so by default (None) the loss is checked at every
    step on a CPU, where that costs nothing, and elsewhere every ``log_every`` steps and
    before every validation and checkpoint. A non-finite loss found late means the
    weights may already be damaged: the run stops without saving them.
    """
    device = torch.device(device)
    if sync_every is None:
        sync_every = 1 if device.type == "cpu" else log_every
    run_dir = Path(run_dir)
    ckpt_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    metrics_path = run_dir / "metrics.jsonl"
    emit = (on_event or (lambda event: None)) if dist.is_main else (lambda event: None)

    learner.to(device).train()
    params = [p for p in learner.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = make_schedule(optimizer, cfg)
    step, best_val, best_step = 0, None, None

    # Rank 0 checks the run folder and reads the checkpoint; the others get the verdict and
    # the state from it, so a run folder need not be on storage every node sees.
    state = dist.broadcast_object(_open_run(run_dir, learner, resume) if dist.is_main else None)
    if isinstance(state, Exception):
        raise state
    if state is not None:
        learner.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        samplers = state.get("sampler_ranks") or [state["sampler"]]
        if dist.rank < len(samplers):  # a rank the checkpoint did not have starts afresh
            sampler.load_state_dict(samplers[dist.rank])
        if dist.is_main:
            torch.set_rng_state(state["torch_rng"])
        step, best_val, best_step = state["step"], state["best_val"], state["best_step"]
    dist.broadcast_module(learner)  # every rank starts from rank 0's weights
    step_loss, manual_allreduce = dist.wrap(learner)
    if dist.is_main:
        (run_dir / "config.json").write_text(json.dumps(
            {"train_config": cfg.to_dict(), "learner": learner.config(),
             "world_size": dist.world_size}, indent=2))

    def save_checkpoint() -> None:  # collective: every rank's sampler state is kept
        sampler_states = dist.gather_object(sampler.state_dict())
        if not dist.is_main:
            return
        payload = ckpt.model_payload(learner, train_config=cfg.to_dict(),
                                     metrics={"val_acc": best_val, "val_step": best_step},
                                     trained=trained)
        payload.update(format=ckpt.CHECKPOINT_FORMAT, optimizer=optimizer.state_dict(),
                       schedule=schedule.state_dict(), sampler=sampler_states[0],
                       sampler_ranks=sampler_states, world_size=dist.world_size,
                       torch_rng=torch.get_rng_state(), step=step, best_val=best_val,
                       best_step=best_step)
        # The step-log window so far (sums and count since the last logged step): a resume
        # from a checkpoint between two log steps logs the same means as an unbroken run.
        read_loss, read_acc = sums.tolist()
        payload["log_window"] = [window_loss + read_loss, window_acc + read_acc, window_n]
        ckpt.save(payload, ckpt_path)

    def log(record: Event) -> None:
        with metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        emit(record)

    emit({"event": "start", "step": step, "steps": cfg.steps, "run_dir": str(run_dir),
          "world_size": dist.world_size, "batch": cfg.batch,
          "batch_per_process": cfg.batch // dist.world_size})
    status = "finished"
    window_loss, window_acc, window_n = 0.0, 0.0, 0
    if state is not None and state.get("log_window"):
        window_loss, window_acc, window_n = state["log_window"]
    # Device-side sums since the last log step (one host read per log step, not per step);
    # the float window above holds what came from a checkpoint.
    sums = torch.zeros(2, device=device, dtype=torch.float64)
    last_check = step  # the loss was finite up to here
    t_window = t_start = time.perf_counter()
    start_step = step
    while step < cfg.steps:
        # All ranks must leave the loop at the same step, or the others would wait forever
        # in the next all-reduce.
        if dist.any(should_stop is not None and should_stop()):
            status = "stopped"
            break
        batch = _move(sampler.sample(), device)
        with precision_context(cfg.precision, device) as forward:
            with forward():
                loss, acc = step_loss(batch)
            due = (step + 1 - last_check >= sync_every or (step + 1) % log_every == 0
                   or step + 1 == cfg.steps or (step + 1) % cfg.val_every == 0
                   or (step + 1) % cfg.checkpoint_every == 0)
            if due:
                # One read: were the steps since the last check finite, and is this one?
                before, now_ok = torch.stack([sums[0].isfinite(), loss.detach().isfinite()]
                                             ).tolist()
                if dist.any(not (before and now_ok)):
                    _stop_non_finite(float(loss.detach()), step, last_check,
                                     not dist.any(not before), save_checkpoint)
                last_check = step + 1
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if manual_allreduce:
            dist.average_gradients(params)
        optimizer.step()
        schedule.step()
        step += 1
        sums += torch.stack([loss.detach(), acc.detach()]).to(sums.dtype)
        window_n += 1

        if step % log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            per_step = (now - t_window) / window_n
            elapsed = now - t_start
            rate = (step - start_step) / elapsed if elapsed > 0 else 0.0
            read_loss, read_acc = sums.tolist()
            sums.zero_()
            window_loss, window_acc = window_loss + read_loss, window_acc + read_acc
            mean_loss, mean_acc = dist.mean([window_loss / window_n, window_acc / window_n])
            if dist.is_main:
                log({"event": "step", "step": step, "steps": cfg.steps,
                     "loss": mean_loss, "acc": 100.0 * mean_acc,
                     "lr": schedule.get_last_lr()[0],
                     "tasks_per_s": cfg.batch / per_step if per_step > 0 else None,
                     "eta_s": (cfg.steps - step) / rate if rate > 0 else None,
                     "peak_rss_mb": peak_rss_mb()})
            window_loss, window_acc, window_n, t_window = 0.0, 0.0, 0, now

        if step % cfg.val_every == 0 or step == cfg.steps:
            if dist.is_main:
                score = validate(learner)
                improved = best_val is None or score > best_val
                if improved:
                    best_val, best_step = score, step
                    ckpt.save(ckpt.model_payload(
                        learner, train_config=cfg.to_dict(),
                        metrics={"val_acc": score, "val_step": step}, trained=trained),
                        best_path)
                log({"event": "val", "step": step, "val_acc": score, "best_val": best_val,
                     "improved": improved})
            dist.barrier()
        if step % cfg.checkpoint_every == 0:
            save_checkpoint()

    save_checkpoint()
    emit({"event": "done", "status": status, "step": step, "best_val": best_val,
          "best_step": best_step, "model": str(best_path) if best_path.exists() else None})
    return TrainResult(status, step, best_val, best_step, run_dir)


def _stop_non_finite(loss: float, step: int, last_check: int, weights_ok: bool,
                     save_checkpoint: Callable[[], None]) -> None:
    """Raise for a non-finite loss at a check before step ``step + 1``'s update.

    ``weights_ok``: every step since the previous check (at ``last_check``) had a finite
    loss, so the weights are those of finite updates and are saved as the checkpoint.
    Otherwise an update between ``last_check`` and ``step`` came from a non-finite loss,
    and the checkpoint on disk (written before) is the one kept."""
    if weights_ok:
        save_checkpoint()
        raise FloatingPointError(f"loss became {loss} at step {step + 1}; the last "
                                 "checkpoint is kept. Lower --lr or the inner LR.")
    raise FloatingPointError(
        f"the loss became non-finite between steps {last_check + 1} and {step}; the "
        "weights since then were not saved, the last checkpoint on disk is kept. Lower "
        "--lr or the inner LR.")


def _open_run(run_dir: Path, learner: Learner, resume: bool) -> dict | Exception | None:
    """The checkpoint state to resume from (None for a new run), or the error to raise.

    A new run creates the folder; a resume trims the metrics log back to the checkpoint.
    """
    ckpt_path = run_dir / "checkpoint.pt"
    if not resume:
        if ckpt_path.exists():
            return RunError(f"{run_dir} already holds a run; pass --resume to continue it or "
                            "choose another --out")
        run_dir.mkdir(parents=True, exist_ok=True)
        return None
    if not ckpt_path.is_file():
        return RunError(f"nothing to resume: {ckpt_path} does not exist")
    try:
        state = ckpt.read(ckpt_path)
    except ckpt.ModelFileError as exc:
        return exc
    if state["format"] != ckpt.CHECKPOINT_FORMAT:
        return RunError(f"{ckpt_path} is a model file (a copied best.pt?), not a training "
                        "checkpoint: it has no optimizer state or step to resume from")
    if state["learner"] != learner.config():
        return RunError("the checkpoint was made by a differently configured learner: "
                        f"{state['learner']} vs {learner.config()}")
    _truncate_log(run_dir / "metrics.jsonl", state["step"])
    return state


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
