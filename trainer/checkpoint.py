"""Model files and training checkpoints.

A *model file* is what the GUI and ``evaluate`` load: one ``torch.save`` dict of plain
types and tensors, so ``torch.load(weights_only=True)`` reads it and no code can ride in it::

    {"format": "nomgui-model", "version": 1, "learner": {algo, backbone, hparams},
     "state_dict": {...}, "train_config": {...}, "metrics": {...},
     "preprocess_version": int, "trained_on": {...}}

``trained_on`` (see :func:`trained_on`) names the classes the model was trained and
validated on, so ``evaluate`` can refuse to report a "test" score on classes it has seen.

A *checkpoint* adds the optimizer, schedule, sampler and RNG states and the step, for an
exact resume; it is also a valid model file.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from trainer.data.sources import atomic_torch_save
from trainer.glyphs import PREPROCESS_VERSION
from trainer.learners import LEARNERS, Learner, create_learner
from trainer.modelcheck import PayloadError, check_payload

MODEL_FORMAT = "nomgui-model"
CHECKPOINT_FORMAT = "nomgui-checkpoint"
FORMAT_VERSION = 1


class ModelFileError(RuntimeError):
    """A model file cannot be used; the message says why in plain words."""


def model_payload(learner: Learner, *, train_config: dict[str, Any] | None = None,
                  metrics: dict[str, Any] | None = None,
                  trained: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "learner": learner.config(),
        "state_dict": {k: v.detach().cpu() for k, v in learner.state_dict().items()},
        "train_config": train_config or {},
        "metrics": metrics or {},
        "preprocess_version": PREPROCESS_VERSION,
    }
    if trained is not None:
        payload["trained_on"] = trained
    return payload


# A Vinyals-split class is one rotation of a character ("Alphabet/character01/rot090"); a
# model that saw any rotation of a character has seen that character.
_ROTATION = re.compile(r"/rot\d{3}$")


def character_of(class_name: str) -> str:
    """The character a class stands for: its name without a rotation suffix."""
    return _ROTATION.sub("", class_name)


def names_hash(names: list[str]) -> str:
    """sha256 of class names in order, one per line: identifies a split's part exactly."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def trained_on(*, dataset: str, split: str, split_seed: int, rotations: bool,
               train: list[str], val: list[str], pretrained: list[str] | None = None,
               note: str | None = None) -> dict[str, Any]:
    """The ``trained_on`` record of a model file.

    ``train_classes`` and ``val_classes`` are the sorted characters (rotation suffixes
    dropped) of the training and validation parts; ``train_sha256`` / ``val_sha256`` hash
    the parts' exact class lists (with rotations, in split order). ``pretrained_classes``
    are the classes of the model it started from (``--init-from``), seen too.
    """
    record: dict[str, Any] = {
        "dataset": dataset, "split": split, "split_seed": split_seed, "rotations": rotations,
        "train_classes": sorted({character_of(n) for n in train}),
        "val_classes": sorted({character_of(n) for n in val}),
        "train_sha256": names_hash(train), "val_sha256": names_hash(val),
        "pretrained_classes": sorted(set(pretrained or [])),
    }
    if note:
        record["note"] = note
    return record


def seen_classes(trained: dict[str, Any]) -> set[str]:
    """Every character a model was trained, validated or pre-trained on."""
    return (set(trained.get("train_classes", [])) | set(trained.get("val_classes", []))
            | set(trained.get("pretrained_classes", [])))


def save(payload: dict[str, Any], path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(payload, Path(path))


def evaluation_key(record: dict[str, Any]) -> tuple:
    """What makes two recorded evaluations the same measurement (the newer one replaces):
    protocol, data, task shape, and the adaptation settings evaluate can override."""
    return (record.get("protocol", "episodes"), record["dataset"], record["split"],
            record["part"], record["way"], record["shot"], record.get("eval_inner_steps"),
            record.get("finetune_steps"), bool(record.get("finetune_backbone")),
            record.get("min_images"), record.get("support"),
            tuple(record.get("zooms", [1.0])))  # a lookup's test-time zooms (none: 1)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one file between processes on this machine.

    The lock file lives in the temp folder (keyed by the file's path), not beside the
    model, which is replaced atomically and so cannot carry the lock itself. Where there
    is no ``fcntl`` (Windows) the re-read just before writing still keeps the window short.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    key = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"nomgui-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_metrics(path: Path, change: Callable[[dict[str, Any]], None], what: str) -> None:
    """Apply ``change`` to a model file's ``metrics`` and save it.

    The file is read again under a lock just before it is written, so results of one model
    measured side by side (evaluations, calibration; they take minutes) all land instead of
    the last one winning. ``what`` names the result for the error on a checkpoint.
    """
    with _exclusive(path):
        payload = read(path)
        if payload["format"] != MODEL_FORMAT:
            raise ModelFileError(f"{what} are recorded in model files (best.pt), not in "
                                 "training checkpoints")
        change(payload["metrics"])
        save(payload, path)


def record_evaluation(path: Path, record: dict[str, Any]) -> None:
    """Store ``record`` in the model file's ``metrics["evaluations"]``, replacing an earlier
    record of the same measurement (:func:`evaluation_key`)."""
    key = evaluation_key(record)

    def change(metrics: dict[str, Any]) -> None:
        kept = [e for e in metrics.get("evaluations", []) if evaluation_key(e) != key]
        metrics["evaluations"] = [*kept, record]

    update_metrics(path, change, "evaluations")


def read(path: Path) -> dict[str, Any]:
    """Load and check a model file or checkpoint; every failure is a :class:`ModelFileError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist" if not path.exists() else
                             f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path.name} is empty (0 bytes: an interrupted copy?)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{path.name} holds objects other than plain weights (code could run on "
            f"loading), so it was not opened: {_first_line(exc)}") from exc
    except Exception as exc:
        raise ModelFileError(f"{path.name} is not a readable model file (truncated or "
                             f"corrupt?): {_first_line(exc)}") from exc
    if not isinstance(payload, dict) or payload.get("format") not in (MODEL_FORMAT,
                                                                       CHECKPOINT_FORMAT):
        raise ModelFileError(f"{path.name} is not a nomgui model file")
    version = payload.get("version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path.name} has model format version {version}; this nomgui "
                             f"reads version {FORMAT_VERSION}. Re-train or re-export it.")
    if payload.get("preprocess_version") != PREPROCESS_VERSION:
        raise ModelFileError(
            f"{path.name} was trained with glyph preprocessing version "
            f"{payload.get('preprocess_version')}, this nomgui uses {PREPROCESS_VERSION}; "
            "its answers would be wrong, so it is not loaded. Re-train it.")
    try:  # the one validation layer: types, evaluation records, finite weights
        check_payload(payload, LEARNERS)
    except PayloadError as exc:
        raise ModelFileError(f"{path.name} cannot be used: {exc}") from exc
    return payload


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type (an EOFError has none)."""
    lines = str(exc).splitlines()
    return lines[0] if lines and lines[0].strip() else exc.__class__.__name__


def build_learner(payload: dict[str, Any]) -> Learner:
    """The learner described by a payload from :func:`read`, with its weights loaded."""
    spec = payload["learner"]
    try:
        learner = create_learner(spec["algo"], spec.get("backbone"), **spec.get("hparams", {}))
        learner.load_state_dict(payload["state_dict"])
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ModelFileError(f"the weights do not fit a {spec.get('algo')} model: "
                             f"{_first_line(exc)}") from exc
    return learner


def load_learner(path: Path, device: torch.device | str = "cpu"
                 ) -> tuple[Learner, dict[str, Any]]:
    payload = read(path)
    learner = build_learner(payload).to(device).eval()
    return learner, payload
