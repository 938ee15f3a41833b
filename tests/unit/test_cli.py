"""Smoke runs of every subcommand, in-process and through ``python -m trainer``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trainer.api import load_model, model_info
from trainer.cli import main


def _common(glyph_tree, tmp_path):
    return ["--dataset", "folder", "--data-root", str(glyph_tree),
            "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("protonet", "maml", "protomaml", "transfer", "omniglot"):
        assert name in out


@pytest.mark.parametrize("algo,extra", [("protonet", []), ("maml", ["--first-order"]),
                                        ("maml", []), ("protomaml", ["--inner-steps", "2"])])
def test_meta_train_then_evaluate(algo, extra, glyph_tree, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["meta-train", "--algo", algo, *extra, "--steps", "4", "--batch", "2",
            "--val-every", "2", "--val-episodes", "10", "--out", str(out)]
    assert main(args + _common(glyph_tree, tmp_path)) == 0
    assert main(["evaluate", "--model", str(out / "best.pt"), "--episodes", "20", "--json",
                 "--record", *_common(glyph_tree, tmp_path)]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["algo"] == algo and record["episodes"] == 20 and 0 <= record["mean"] <= 100
    assert model_info(out / "best.pt").metrics["evaluations"][0]["mean"] == record["mean"]
    if "--first-order" in extra:
        assert load_model(out / "best.pt").learner.hparams["first_order"] is True


def test_pretrain_and_resume(glyph_tree, tmp_path):
    out = tmp_path / "pre"
    args = ["pretrain", "--steps", "3", "--batch", "16", "--val-every", "3", "--out", str(out),
            "--finetune-steps", "5", *_common(glyph_tree, tmp_path)]
    assert main(args) == 0
    assert main([*args[:2], "6", *args[3:], "--resume"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 6


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["meta-train", "--algo", "protonet", "--out", str(tmp_path / "x"),
                 "--data-root", str(tmp_path / "missing")]) == 2
    assert "Omniglot not found" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_text("junk")
    assert main(["evaluate", "--model", str(tmp_path / "junk.pt")]) == 2
    assert "not a readable model file" in capsys.readouterr().err


def test_python_m_trainer_json_progress(glyph_tree, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "meta-train", "--algo", "protonet", "--steps", "10",
         "--batch", "2", "--val-every", "10", "--val-episodes", "5", "--json-progress",
         "--out", str(tmp_path / "j"), *_common(glyph_tree, tmp_path)],
        capture_output=True, text=True, timeout=120, check=True)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events[:2]] == ["preparing", "start"]
    assert events[-1]["event"] == "done"
    assert any(e["event"] == "step" and e["step"] == 10 for e in events)


def test_nom_train_and_evaluate_on_nom_only(tmp_path, capsys):
    from tests.unit.test_nom import make_nom_tree

    make_nom_tree(tmp_path / "data" / "nom_woodblock_crops", n_classes=80, per_class=6)
    common = ["--dataset", "nom", "--data-root", str(tmp_path / "data"),
              "--cache-dir", str(tmp_path / "cache")]
    out = tmp_path / "run"
    assert main(["meta-train", "--algo", "protonet", "--steps", "2", "--batch", "2",
                 "--query", "3", "--val-every", "2", "--val-episodes", "4", "--out", str(out),
                 *common]) == 0
    assert main(["evaluate", "--model", str(out / "best.pt"), "--split", "nom-only",
                 "--episodes", "10", "--query", "3", "--json", *common]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["split"] == "nom-only" and record["episodes"] == 10
    assert model_info(out / "best.pt").clean_print  # the app will clean loaded scans too


def test_all_classes_protocol(glyph_tree, tmp_path, capsys):
    """The seminar's transfer protocol: one task over every test class, 10/4/6 images."""
    out = tmp_path / "pre"
    assert main(["pretrain", "--steps", "2", "--batch", "16", "--val-every", "2",
                 "--out", str(out), *_common(glyph_tree, tmp_path)]) == 0
    evaluate = ["evaluate", "--model", str(out / "best.pt"), "--all-classes", "--json",
                "--record", "--finetune-steps", "20", *_common(glyph_tree, tmp_path)]
    assert main(evaluate) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    test_classes = 9  # 15% of the 60 generated classes (the seed split of other data)
    assert record["protocol"] == "all-classes" and record["way"] == test_classes
    assert record["test_images"] == test_classes * 6 and record["finetune_steps"] == 20
    assert 0 <= record["val"] <= 100 and record["shot"] == 10
    assert model_info(out / "best.pt").metrics["evaluations"][-1]["way"] == test_classes
    assert main([*evaluate, "--train-per-class", "16"]) == 2  # 16 + 4 leaves no test image
    assert "at least 21 images" in capsys.readouterr().err
    assert main([*evaluate, "--eval-inner-steps", "2"]) == 2  # not a MAML model
    assert "does not apply to a transfer model" in capsys.readouterr().err


def test_calibrate_records_temperature_and_threshold(glyph_tree, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["meta-train", "--algo", "protonet", "--steps", "2", "--batch", "2",
                 "--val-every", "2", "--val-episodes", "5", "--out", str(out),
                 *_common(glyph_tree, tmp_path)]) == 0
    capsys.readouterr()
    # the generated set's validation part has 9 classes: 2-way and 4-way open-set
    # episodes fit (2N classes each), 20-way does not and is skipped
    assert main(["calibrate", "--model", str(out / "best.pt"), "--ways", "2", "4", "20",
                 "--episodes", "10", *_common(glyph_tree, tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["way"] for r in result["by_way"]] == [2, 4]
    assert result["part"] == "validation" and result["split"] == "seed"
    recorded = model_info(out / "best.pt").metrics["calibration"]
    assert recorded["by_way"] == result["by_way"]
    assert main(["calibrate", "--model", str(out / "best.pt"), "--ways", "20",
                 *_common(glyph_tree, tmp_path)]) == 2  # nothing could be measured
