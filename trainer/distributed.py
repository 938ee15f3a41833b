"""Data-parallel training over several processes, on PyTorch's own distributed engine.

Started by ``torchrun --nproc_per_node=N [--nnodes ...] -m trainer meta-train ...``: torchrun
describes the job to each process in RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT (its documented protocol, read by ``init_process_group``'s ``env://``), and one
process without torchrun is a world of one.

How a step is shared (see ``engine.train``):
  * ``--batch`` is the meta-batch of the whole job; each rank samples ``batch / world``
    tasks from its own seeded generator, so a run means the same thing on 1 or N processes.
  * Gradients are averaged over ranks: by ``DistributedDataParallel`` for learners that are
    plain modules (ProtoNet, transfer), and by one explicit all-reduce of the flattened
    meta-gradient for the functional MAML family, whose ``torch.func`` inner loop does not
    go through DDP's forward hooks.
  * Every rank then takes the same Adam step from the same state, so parameters stay
    identical (tested). Rank 0 alone logs, validates and writes files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from trainer.runtime import resolve_device

T = TypeVar("T")

# Rank 0 validates while the others wait at a barrier; a long validation must not trip the
# collective timeout (the default 10-30 min would, on a large Nôm validation set on CPU).
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the job. ``Dist()`` is the single-process world."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- work sharing ----------------------------------------------------------------------
    def per_rank(self, batch: int, what: str = "--batch") -> int:
        """This rank's share of a global batch; the batch must divide evenly."""
        if batch % self.world_size:
            raise ValueError(f"{what} {batch} does not divide over {self.world_size} "
                             f"processes; use a multiple of {self.world_size}")
        return batch // self.world_size

    def seed(self, seed: int) -> int:
        """The sampling seed of this rank: rank 0 keeps ``seed`` (a 1-process job is the
        plain run), the others get distinct, reproducible streams."""
        return seed if self.rank == 0 else (seed * 1_000_003 + self.rank) % (1 << 62)

    # -- collectives (no-ops in a world of one) ------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (stop requests, bad losses)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, values: Sequence[float]) -> list[float]:
        """Element-wise mean over ranks of a few floats (logged loss and accuracy)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """All-reduce the mean of ``p.grad`` over ranks, as one flat buffer (one call, not
        one per tensor). Missing grads count as zeros so every rank sends the same shape."""
        if not self.enabled or not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p, g in zip(params, grads, strict=True):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(g).clone()
            offset += n

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if not self.enabled:
            return
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t.data, src=0)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled; for small states and messages)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]

    def gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0, then on the others (e.g. load data: rank 0 fills the cache
        the others then read). An error on rank 0 is raised on every rank instead of
        leaving the others waiting."""
        if not self.enabled:
            return fn()
        error: BaseException | None = None
        result: Any = None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:  # sent to the other ranks, then re-raised
                error = exc
        error = self.broadcast_object(error)
        if error is not None:
            raise error
        return result if self.is_main else fn()

    def wrap(self, learner: nn.Module
             ) -> tuple[Callable[[Any], tuple[torch.Tensor, torch.Tensor]], bool]:
        """The function a training step calls for (loss, accuracy), and whether the engine
        must call :meth:`average_gradients` after backward.

        DDP for learners that allow it (``ddp_compatible``); it averages gradients during
        backward, overlapping communication with computation. Otherwise the plain learner
        with an explicit all-reduce (in a world of one, neither).
        """
        if not self.enabled:
            return learner.loss, False
        if getattr(learner, "ddp_compatible", False):
            device = next(learner.parameters()).device
            return nn.parallel.DistributedDataParallel(
                learner, device_ids=[device] if device.type == "cuda" else None), False
        return learner.loss, True

    def _device(self) -> torch.device:
        # NCCL collectives need CUDA tensors; gloo takes CPU ones.
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE = Dist()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_name: str = "auto") -> tuple[Dist, torch.device]:
    """Join the job torchrun started (if any) and choose this rank's device.

    ``--device`` wins; ``auto`` gives each rank the GPU of its LOCAL_RANK when there are
    GPUs, else the CPU. The backend follows the device: NCCL on CUDA, gloo on the CPU.
    """
    if not launched_by_torchrun():
        return SINGLE, resolve_device(device_name)
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return join("nccl" if device.type == "cuda" else "gloo", rank, world, local), device


def join(backend: str, rank: int, world_size: int, local_rank: int = 0) -> Dist:
    """Create this process's default process group (MASTER_ADDR/MASTER_PORT rendezvous).

    torch.distributed.nn.functional binds the default group into ten default arguments
    (``group=group.WORLD``) when it is imported; torch._dynamo imports it, and the first
    optimizer imports torch._dynamo. Imported after the group exists, those defaults keep
    it alive past :func:`shutdown`'s destroy_process_group, gloo's worker threads outlive
    the interpreter, and one that frees a finished collective's tensors while Python
    finalises aborts the process at exit (SIGABRT, "terminate called without an active
    exception"; rare: 2 of about 110 runs of the two-rank test). Imported first, they
    bind None.
    """
    import torch._dynamo  # noqa: F401  (see above: before init_process_group)

    dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=TIMEOUT)
    return Dist(rank, world_size, local_rank, backend)


def shutdown(ctx: Dist) -> None:
    """Leave the job. All ranks meet first: a rank that tears down its gloo pairs while
    rank 0 is still finishing (writing the last checkpoint) can abort the peer. The group
    (with gloo's threads) ends here when nothing else holds it (see :func:`join`)."""
    if not (ctx.enabled and dist.is_initialized()):
        return
    with contextlib.suppress(RuntimeError):  # a peer already gone (failed): leave anyway
        dist.barrier()
    dist.destroy_process_group()
