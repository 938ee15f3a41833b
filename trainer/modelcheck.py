"""The one validation layer for model files and checkpoints, after ``torch.load``.

``torch.load(weights_only=True)`` already refuses anything but plain types and tensors, so
no code rides in a file. What it lets through can still be wrong: a field of the wrong
type, an evaluation record missing a key, a backbone asking for a billion channels, NaN
weights (which load, and then break the first recognition). :func:`check_payload` checks
every field a reader of the file uses, so a file is either usable everywhere (the Model
menu, fitting, ``evaluate``, ``--init-from``, ``--resume``) or refused at load with one
plain reason. Every loader goes through :func:`trainer.checkpoint.read`, which calls it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

# Bounds of a Conv4 backbone a file may ask for: beyond them it is not a glyph model, and
# building it could take all memory before load_state_dict says the shapes are wrong.
_BACKBONE_INTS = {"in_channels": (1, 4), "hidden": (1, 2048), "depth": (1, 12),
                  "image_size": (8, 256)}


class PayloadError(ValueError):
    """A loaded payload is not a usable model file; the message says which field."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise PayloadError(message)


def _check_evaluation(i: int, record: object) -> None:
    _need(isinstance(record, dict), f"evaluation record {i} is not a mapping")
    assert isinstance(record, dict)
    for key in ("dataset", "split", "part"):
        _need(isinstance(record.get(key), str), f"evaluation record {i} has no text {key!r}")
    for key in ("way", "shot"):
        value = record.get(key)
        _need(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
              f"evaluation record {i} has no whole-number {key!r}")
    for key in ("mean", "ci95"):
        value = record.get(key)
        _need(_is_number(value) and math.isfinite(value),
              f"evaluation record {i} has no finite number {key!r}")
    _need(isinstance(record.get("protocol", "episodes"), str),
          f"evaluation record {i}: 'protocol' is not a text")


def check_payload(payload: Any, algorithms: dict[str, Any]) -> None:
    """Raise :class:`PayloadError` unless ``payload`` (format and version already checked)
    is a model file every reader can use: learner spec, finite tensor weights, metrics."""
    learner = payload.get("learner")
    _need(isinstance(learner, dict), "'learner' is not a mapping")
    algo = learner.get("algo")
    _need(isinstance(algo, str) and algo in algorithms,
          f"algorithm {algo!r:.40} is not one this nomgui has ({', '.join(algorithms)})")
    backbone = learner.get("backbone", {})
    _need(isinstance(backbone, dict), "'learner.backbone' is not a mapping")
    for key, (lo, hi) in _BACKBONE_INTS.items():
        if key in backbone:
            value = backbone[key]
            _need(isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi,
                  f"backbone {key} {value!r:.40} is outside {lo}..{hi}")
    hparams = learner.get("hparams", {})
    _need(isinstance(hparams, dict) and all(isinstance(k, str) for k in hparams),
          "'learner.hparams' is not a mapping of names")
    for key, value in hparams.items():
        _need(value is None or isinstance(value, (bool, int, float, str)),
              f"hyperparameter {key} is a {type(value).__name__}, not a plain value")
        _need(not isinstance(value, float) or math.isfinite(value),
              f"hyperparameter {key} is {value}")

    state = payload.get("state_dict")
    _need(isinstance(state, dict) and state, "'state_dict' is missing or empty")
    for name, tensor in state.items():
        _need(isinstance(name, str) and isinstance(tensor, torch.Tensor),
              f"weight {name!r:.40} is not a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PayloadError(f"weight {name} holds NaN or infinite values (a diverged "
                               "or damaged model)")

    for key in ("train_config", "metrics"):
        _need(isinstance(payload.get(key, {}), dict), f"'{key}' is not a mapping")
    config = payload.get("train_config", {})
    _need(isinstance(config.get("dataset", ""), str), "'train_config.dataset' is not a text")
    metrics = payload.get("metrics", {})
    val = metrics.get("val_acc")
    _need(val is None or _is_number(val), "'metrics.val_acc' is not a number")
    evaluations = metrics.get("evaluations", [])
    _need(isinstance(evaluations, list), "'metrics.evaluations' is not a list")
    for i, record in enumerate(evaluations):
        _check_evaluation(i, record)
