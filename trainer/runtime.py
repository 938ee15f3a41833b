"""Process-level settings, applied once at an entry point (never at import time)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch


def tune_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS.

    Conv activations of a task batch are hundreds of MB; glibc serves blocks that big with
    mmap and hands them back with munmap, so every step faults in fresh pages (measured with
    benchmarks/train_throughput.py: ProtoNet 11.1 -> 20.4 episodes/s on 2 cores). Same as
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>. Returns False where not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        # The largest threshold mallopt takes (an int): one MAML step frees 2-4 GB, so a
        # 1 GiB threshold still trimmed the heap and re-faulted it every step.
        return (bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
                and bool(libc.mallopt(m_mmap_max, 0)))
    except (OSError, AttributeError):
        return False


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MiB; None where unknown (Windows).
    Logged with every training step, so a run that grows shows it in its metrics."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but this torch sees no CUDA GPU")
    return device


def configure_device(device: torch.device) -> None:
    """Per-device settings for a training or evaluation process.

    On CUDA, cuDNN's autotuner picks the fastest convolution for each shape; a run sees few
    shapes (one per episode size, batched tasks included), so the one-off search pays.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
