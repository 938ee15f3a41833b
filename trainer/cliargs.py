"""The CLI's one argument validation: every flag's range, checked once after parsing.

argparse checks types; this checks meaning (``--val-every 0`` would divide by zero at
the first step, ``--threads -3`` raises inside torch, ``--lr inf`` trains NaNs, ``--way 0``
samples empty episodes), so every bad invocation ends in one line and exit status 2
instead of a traceback minutes later, and no meaningless value is taken silently.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import NoReturn

from trainer.lookup import ZOOM_RANGE

# flag (argparse dest) -> (smallest, largest) allowed; None: no bound on that side.
INT_RANGES: dict[str, tuple[int | None, int | None]] = {
    "steps": (1, 10**9), "val_every": (1, 10**9), "checkpoint_every": (1, 10**9),
    "batch": (1, 10**6), "way": (2, 100_000), "shot": (1, 10_000), "query": (1, 10_000),
    "val_episodes": (1, 10**7), "inner_steps": (1, 10_000), "eval_inner_steps": (1, 10_000),
    "finetune_steps": (0, 10**7), "episodes": (1, 10**8), "train_per_class": (1, 10**6),
    "val_per_class": (0, 10**6), "threads": (0, 4096), "image_size": (8, 256),
    "seed": (0, 2**63 - 1), "holdout_per_class": (0, 10**6), "hidden": (1, 4096),
}
# flag -> (smallest, largest, whether the smallest itself is allowed); always finite.
FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, 10.0, False), "inner_lr": (0.0, 100.0, False),
    "finetune_lr": (0.0, 100.0, False), "affine": (0.0, 10.0, True),
}
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,2})?")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError naming the first flag whose value is meaningless."""
    for name, (lo, hi) in INT_RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be "
                             f"{_range_text(lo, hi)}")
    for name, (lo, hi, lo_ok) in FLOAT_RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        low_fails = value < lo if lo_ok else value <= lo
        if not math.isfinite(value) or low_fails or value > hi:
            bound = f"{'at least' if lo_ok else 'above'} {lo:g} and at most {hi:g}"
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be a finite number "
                             f"{bound}")
    zooms = [("zooms", z) for z in getattr(args, "zooms", None) or []]
    zooms += [("candidates", z) for item in getattr(args, "candidates", None) or []
              for z in item]  # each item a list: "1,1.1" -> [1.0, 1.1] (zoom_list)
    for flag, z in zooms:
        if not (math.isfinite(z) and ZOOM_RANGE[0] <= z <= ZOOM_RANGE[1]):
            raise ValueError(f"--{flag} {z:g}: each must be a magnification from "
                             f"{ZOOM_RANGE[0]:g} to {ZOOM_RANGE[1]:g}")
    device = getattr(args, "device", None)
    if device is not None and not DEVICE.fullmatch(device):
        raise ValueError(f"--device {device!r}: choose auto, cpu, cuda, cuda:N or mps")
    for name in ("out", "cache_dir"):
        path = getattr(args, name, None)
        if isinstance(path, Path) and path.exists() and not path.is_dir():
            raise ValueError(f"--{name.replace('_', '-')} {path} is a file, not a folder")
    for name in ("model", "init_from"):
        path = getattr(args, name, None)
        if isinstance(path, Path) and path.exists() and not path.is_file():
            raise ValueError(f"--{name.replace('_', '-')} {path} is not a regular file")


def zoom_list(text: str) -> list[float]:
    """argparse type of one ``--candidates`` item: comma-separated magnifications."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "magnifications, e.g. 1,1.1") from None
    return values


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"a whole number from {lo} to {hi:,}"
    return f"at least {lo}" if lo is not None else f"at most {hi}"


def os_error_line(exc: OSError) -> str:
    """One line for a failed read or write (full disk, read-only or missing folder)."""
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"cannot read or write{where}: {exc.strerror or exc.__class__.__name__}"

