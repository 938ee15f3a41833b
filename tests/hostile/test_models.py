"""Item 3: each model file is listed or refused on its own, with its reason; no crafted
file runs code; weights are checked finite at load."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest
import torch

from trainer import api
from trainer import checkpoint as ckpt

RAN = Path(os.environ.get("TMPDIR", "/tmp")) / "nomgui-hostile-pickle-ran"


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {RAN}",))


def _payload(model_file: Path) -> dict:
    return torch.load(model_file, weights_only=True)


def _bad_files(model_file: Path, folder: Path) -> dict[str, Path]:
    """name -> a crafted or damaged model file."""
    good = _payload(model_file)
    out: dict[str, Path] = {}

    def save(name: str, payload) -> None:
        torch.save(payload, folder / f"{name}.pt")
        out[name] = folder / f"{name}.pt"

    (folder / "empty.pt").write_bytes(b"")
    out["empty"] = folder / "empty.pt"
    data = model_file.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    out["truncated"] = folder / "truncated.pt"
    (folder / "garbage.pt").write_bytes(os.urandom(2048))
    out["garbage"] = folder / "garbage.pt"
    save("pickle_code", {"format": ckpt.MODEL_FORMAT, "x": _Evil()})
    p = copy.deepcopy(good)
    p["metrics"]["evaluations"] = [{"dataset": "omniglot", "split": "seed", "part": "test",
                                    "way": 5, "shot": 1, "ci95": 0.1}]  # no "mean"
    save("eval_missing_key", p)
    p = copy.deepcopy(good)
    p["metrics"] = ["not", "a", "dict"]
    save("metrics_list", p)
    p = copy.deepcopy(good)
    p["learner"] = "protonet"
    save("learner_str", p)
    p = copy.deepcopy(good)
    p["learner"]["backbone"]["hidden"] = 10**9
    save("huge_backbone", p)
    p = copy.deepcopy(good)
    p["learner"]["hparams"] = {"x": [1, 2]}
    save("hparam_list", p)
    p = copy.deepcopy(good)
    name = next(k for k, v in p["state_dict"].items() if v.is_floating_point())
    p["state_dict"][name] = p["state_dict"][name].clone().fill_(math.nan)
    save("nan_weights", p)
    p = copy.deepcopy(good)
    p["state_dict"] = {}
    save("no_weights", p)
    p = copy.deepcopy(good)
    p["metrics"]["val_acc"] = "97%"
    save("val_acc_text", p)
    return out


def test_every_bad_file_is_refused_with_one_line(tmp_path, model_file):
    RAN.unlink(missing_ok=True)
    for name, path in _bad_files(model_file, tmp_path).items():
        with pytest.raises(api.ModelFileError) as exc:
            api.load_model(path)
        text = str(exc.value)
        assert path.name in text and "\n" not in text, name
        with pytest.raises(api.ModelFileError):
            api.model_info(path)
    assert not RAN.exists(), "a crafted pickle ran code"


def test_model_list_keeps_good_models_and_names_each_bad_one(qtbot, tmp_path, model_file):
    """Before, one bad file (a 0-byte copy, an evaluation missing a key) raised out of the
    listing slot and left the app with no model at all, bundled ones included."""
    from nomgui.recognizer import RecognizerWorker

    bad = _bad_files(model_file, tmp_path)
    worker = RecognizerWorker()
    got: list = []
    worker.modelsListed.connect(got.append)
    bundled = sorted((Path(__file__).resolve().parents[2] / "resources" / "models").glob("*.pt"))
    worker.list_models(bundled, [model_file, *bad.values()])
    found, errors = got[0]
    assert len(found) == len(bundled) + 1
    assert len(errors) == len(bad)
    assert all("\n" not in e for e in errors)
    for name in bad:
        assert any(f"{name}.pt" in e for e in errors), name


def test_nan_weights_never_reach_recognition(tmp_path, model_file):
    path = _bad_files(model_file, tmp_path)["nan_weights"]
    with pytest.raises(api.ModelFileError, match="NaN"):
        api.load_model(path)
