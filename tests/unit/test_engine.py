from __future__ import annotations

import itertools
import json
import math
import sys

import pytest
import torch

from trainer import engine
from trainer.config import TrainConfig
from trainer.data.splits import make_splits
from trainer.runs import build


def _cfg(**kw) -> TrainConfig:
    base = {"algo": "protonet", "dataset": "folder", "way": 5, "shot": 1, "query": 3,
            "batch": 2, "steps": 6, "val_every": 3, "val_episodes": 20, "checkpoint_every": 3,
            "schedule": "cosine"}
    return TrainConfig(**{**base, **kw})


def _run(cfg, glyph_set, run_dir, **kw):
    learner, sampler, validate = build(cfg, make_splits(glyph_set, "seed"), torch.device("cpu"))
    return learner, engine.train(cfg, learner, sampler, validate, run_dir, log_every=1, **kw)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown config keys: colour"):
        TrainConfig.from_dict({"algo": "protonet", "colour": "red"})


@pytest.mark.parametrize("algo", ["protonet", "maml", "transfer"])
def test_resume_gives_the_same_run(algo, glyph_set, tmp_path):
    cfg = _cfg(algo=algo)
    straight, result = _run(cfg, glyph_set, tmp_path / "a")
    assert result.status == "finished" and result.step == 6

    stop_at = {"n": 0}

    def stop_after_four() -> bool:
        stop_at["n"] += 1
        return stop_at["n"] > 4

    _, part = _run(cfg, glyph_set, tmp_path / "b", should_stop=stop_after_four)
    assert part.status == "stopped" and part.step == 4
    resumed, result = _run(cfg, glyph_set, tmp_path / "b", resume=True)
    assert result.step == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        torch.testing.assert_close(a, b, msg=f"{name} differs after resume")
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").open()
             if json.loads(x)["event"] == "step"]
    assert steps == [1, 2, 3, 4, 5, 6]  # no duplicate lines from the resumed part


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB: Linux")
def test_step_log_carries_the_process_peak_memory(glyph_set, tmp_path):
    """Each step line records the process's peak resident memory so far, so a run whose
    memory grows shows it in its metrics."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _run(_cfg(steps=5, val_every=100), glyph_set, tmp_path / "m")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peaks = [r["peak_rss_mb"] for r in map(json.loads, (tmp_path / "m" / "metrics.jsonl").open())
             if r["event"] == "step"]
    assert len(peaks) == 5 and peaks == sorted(peaks)
    assert 50 < before <= peaks[0] and peaks[-1] <= after


def test_run_folder_is_not_overwritten_and_resume_needs_a_checkpoint(glyph_set, tmp_path):
    cfg = _cfg(steps=1)
    _run(cfg, glyph_set, tmp_path / "r")
    assert {p.name for p in (tmp_path / "r").iterdir()} >= {"best.pt", "checkpoint.pt",
                                                            "config.json", "metrics.jsonl"}
    with pytest.raises(engine.RunError, match="--resume"):
        _run(cfg, glyph_set, tmp_path / "r")
    with pytest.raises(engine.RunError, match="nothing to resume"):
        _run(cfg, glyph_set, tmp_path / "empty", resume=True)


def test_events_report_progress_and_best_model(glyph_set, tmp_path):
    events = []
    _run(_cfg(), glyph_set, tmp_path / "e", on_event=events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("val") == 2
    done = events[-1]
    assert done["status"] == "finished" and done["model"].endswith("best.pt")
    assert all(0 <= e["val_acc"] <= 100 for e in events if e["event"] == "val")


def test_init_from_copies_the_backbone_across_learners(glyph_set, tmp_path):
    from trainer.runs import init_weights

    proto, _ = _run(_cfg(steps=2), glyph_set, tmp_path / "p")
    cfg = _cfg(algo="maml", split="all", steps=1)
    maml, _, _ = build(cfg, make_splits(glyph_set, "all"), torch.device("cpu"))
    copied = init_weights(maml, tmp_path / "p" / "best.pt")
    assert copied >= len(list(maml.backbone.parameters()))
    for (name, a), b in zip(maml.backbone.named_parameters(), proto.backbone.parameters(),
                            strict=True):
        torch.testing.assert_close(a, b, msg=name)
    from trainer import checkpoint as ckpt

    payload = ckpt.read(tmp_path / "p" / "best.pt")
    name = next(k for k in payload["state_dict"] if k.endswith("weight"))
    payload["state_dict"][name] = torch.zeros(3, 3)  # another backbone
    ckpt.save(payload, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="backbone does not fit"):
        init_weights(maml, tmp_path / "other.pt")


def test_split_all_keeps_every_class_in_every_part(glyph_set):
    s = make_splits(glyph_set, "all")
    assert s.train.num_classes == s.val.num_classes == s.test.num_classes == glyph_set.num_classes


def test_extend_continues_the_cosine_from_where_it_stood():
    saved = _cfg(steps=10)
    cfg, note = engine.continue_to(saved, 4, 30, extend=True)
    assert cfg.steps == 30 and "goes on from" in note
    f = [engine.schedule_factor(cfg, s) for s in range(4, 31)]
    assert f[0] == pytest.approx(engine.schedule_factor(saved, 4))  # no jump
    assert f[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(f))  # only goes down
    again, _ = engine.continue_to(cfg, 12, 40, extend=True)  # extended twice
    assert engine.schedule_factor(again, 12) == pytest.approx(engine.schedule_factor(cfg, 12))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_extend_to_fewer_steps_finishes_the_decay_early():
    saved = _cfg(steps=3000)
    cfg, note = engine.continue_to(saved, 1200, 2000, extend=True)
    assert cfg.steps == 2000 and "ending before the planned 3000" in note
    assert engine.schedule_factor(cfg, 1200) == pytest.approx(engine.schedule_factor(saved, 1200))
    assert engine.schedule_factor(cfg, 2000) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(engine.RunError, match="above the step"):
        engine.continue_to(saved, 1200, 1200, extend=True)


def test_a_larger_steps_without_extend_restarts_the_schedule_and_says_so():
    saved = _cfg(steps=1800)
    cfg, note = engine.continue_to(saved, 1800, 4200, extend=False)
    # the bundled MAML's continuation: from 0 to 61% of the peak LR at step 1,800
    assert engine.schedule_factor(cfg, 1800) == pytest.approx(0.611, abs=1e-3)
    assert "restarts" in note and "from 0% to 61%" in note
    with pytest.raises(engine.RunError, match="had ended"):
        engine.continue_to(saved, 1800, 4200, extend=True)
    assert engine.continue_to(saved, 900, 1000, extend=False) == (saved, None)  # 1800 kept


def test_resume_with_extend_keeps_the_lr_continuous(glyph_set, tmp_path):
    cfg = _cfg(steps=8)
    calls = {"n": 0}

    def stop_after_four() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    _run(cfg, glyph_set, tmp_path / "x", should_stop=stop_after_four)
    extended, _ = engine.continue_to(cfg, 4, 16, extend=True)
    _, result = _run(extended, glyph_set, tmp_path / "x", resume=True)
    assert result.step == 16
    lrs = {r["step"]: r["lr"] for r in map(json.loads, (tmp_path / "x" / "metrics.jsonl").open())
           if r["event"] == "step"}
    for step in range(1, 17):  # what the optimizer used agrees with the schedule, every step
        want = extended if step > 4 else cfg
        assert lrs[step] == pytest.approx(cfg.lr * engine.schedule_factor(want, step))
    assert lrs[5] < lrs[4] and lrs[5] > 0.9 * lrs[4]  # no jump at the resume


def test_cli_resume_names_ignored_flags_and_the_schedule(glyph_tree, tmp_path, capsys):
    from trainer.cli import main

    common = ["--dataset", "folder", "--data-root", str(glyph_tree), "--cache-dir",
              str(tmp_path / "cache"), "--device", "cpu", "--out", str(tmp_path / "r")]
    base = ["meta-train", "--algo", "protonet", "--batch", "2", "--val-every", "2",
            "--val-episodes", "5", *common]
    assert main([*base, "--steps", "2"]) == 0
    capsys.readouterr()
    assert main([*base, "--steps", "4", "--resume", "--extend"]) == 2
    assert "had ended" in capsys.readouterr().err
    assert main([*base, "--steps", "4", "--resume", "--lr", "0.5", "--way", "3"]) == 0
    err = capsys.readouterr().err
    assert "ignored --lr 0.5 (the run's: 0.001), --way 3 (the run's: 5)" in err
    assert "restarts the cosine schedule" in err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["train_config"]
    assert (saved["steps"], saved["lr"], saved["way"]) == (4, 0.001, 5)


def _poison_at(learner, step: int) -> None:
    """Make the learner's loss NaN from training step ``step`` on (1-based)."""
    calls = {"n": 0}
    loss = learner.loss

    def poisoned(batch):
        calls["n"] += 1
        value, acc = loss(batch)
        return (value * float("nan") if calls["n"] >= step else value), acc

    learner.loss = poisoned


@pytest.mark.parametrize(("sync_every", "saved_step", "message"),
                         [(1, 4, "at step 5"), (10, 3, "between steps 4 and 5")])
def test_a_non_finite_loss_stops_the_run_and_never_saves_damaged_weights(
        sync_every, saved_step, message, glyph_set, tmp_path):
    """Checked every step (a CPU), the weights before the bad update are saved; checked
    late (an accelerator: every log interval), the run stops without saving the weights
    it updated from a NaN loss and keeps the checkpoint written before."""
    from trainer import checkpoint as ckpt

    cfg = _cfg(steps=8, val_every=3, checkpoint_every=3)
    learner, sampler, validate = build(cfg, make_splits(glyph_set, "seed"),
                                       torch.device("cpu"))
    _poison_at(learner, 5)
    with pytest.raises(FloatingPointError, match=message):
        engine.train(cfg, learner, sampler, validate, tmp_path / "r", log_every=6,
                     sync_every=sync_every)
    state = ckpt.read(tmp_path / "r" / "checkpoint.pt")
    assert state["step"] == saved_step
    assert all(bool(torch.isfinite(v).all()) for v in state["state_dict"].values()
               if v.is_floating_point())
    steps = [json.loads(x)["step"] for x in (tmp_path / "r" / "metrics.jsonl").open()
             if json.loads(x)["event"] == "step"]
    assert steps == []  # log_every=6: no step line with a NaN mean was written


@pytest.mark.parametrize("algo", ["protonet", "maml", "protomaml", "transfer"])
def test_a_bf16_run_trains_and_keeps_float32_weights(algo, glyph_set, tmp_path):
    """--precision bf16 autocasts the step's forward; weights, checkpoints and the
    validation figure stay float32."""
    from trainer import checkpoint as ckpt

    _, result = _run(_cfg(algo=algo, precision="bf16", steps=3), glyph_set,
                     tmp_path / "r")
    assert result.status == "finished" and result.best_val is not None
    state = ckpt.read(tmp_path / "r" / "checkpoint.pt")["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}
    losses = [json.loads(x)["loss"] for x in (tmp_path / "r" / "metrics.jsonl").open()
              if json.loads(x)["event"] == "step"]
    assert len(losses) == 3 and all(map(math.isfinite, losses))


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision must be one of fp32, tf32, bf16"):
        _cfg(precision="fp16")
