"""Item 6: every bad invocation of the trainer CLI ends in one line and a non-zero status,
never a traceback; meaningless values are refused, not taken silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.hostile.conftest import one_line
from tests.hostile.test_zips import _zip, corrupt_stream

REPO = Path(__file__).resolve().parents[2]


def cli(argv: list[str], capsys) -> tuple[int, str]:
    from trainer.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    return rc, capsys.readouterr().err


def _train(tree: Path, out: Path, *extra) -> list:
    return ["meta-train", "--algo", "protonet", "--dataset", "folder", "--data-root", tree,
            "--out", out, "--steps", "4", "--way", "2", "--query", "2", "--batch", "2",
            "--split", "all", "--val-every", "2", "--val-episodes", "2", "--device", "cpu",
            "--cache-dir", out.parent / "cache", *extra]


def _eval(tree: Path, model: Path, *extra) -> list:
    return ["evaluate", "--model", model, "--dataset", "folder", "--data-root", tree,
            "--split", "all", "--allow-seen", "--way", "2", "--episodes", "2", "--device",
            "cpu", "--cache-dir", model.parent / "cache", *extra]


TRAIN_FLAGS = [
    ["--val-every", "0"], ["--checkpoint-every", "0"], ["--threads", "-3"],
    ["--device", "tpu"], ["--lr", "inf"], ["--lr", "nan"], ["--lr", "0"], ["--lr", "-1"],
    ["--steps", "0"], ["--steps", "-5"], ["--batch", "0"], ["--way", "1"], ["--way", "0"],
    ["--shot", "0"], ["--query", "0"], ["--val-episodes", "0"], ["--affine", "-1"],
    ["--affine", "nan"], ["--inner-steps", "0"], ["--inner-lr", "0"], ["--inner-lr", "inf"],
    ["--image-size", "1"], ["--image-size", "100000"], ["--seed", "-1"],
    ["--eval-inner-steps", "0"], ["--steps", "abc"], ["--lr", "fast"], ["--no-such-flag"],
    ["--algo", "nope"], ["--split", "nope"], ["--schedule", "nope"],
]
EVAL_FLAGS = [
    ["--way", "0"], ["--way", "1"], ["--shot", "-1"], ["--shot", "0"], ["--episodes", "0"],
    ["--query", "0"], ["--train-per-class", "0"], ["--val-per-class", "-1"],
    ["--finetune-steps", "-1"], ["--eval-inner-steps", "0"], ["--threads", "-1"],
    ["--device", "gpu0"], ["--part", "nope"],
]


@pytest.mark.parametrize("flags", TRAIN_FLAGS, ids=" ".join)
def test_bad_training_flags(tmp_path, small_tree, capsys, flags):
    rc, err = cli(_train(small_tree, tmp_path / "run", *flags), capsys)
    assert rc == 2 and one_line(err), err
    assert not (tmp_path / "run").exists()  # refused before anything was made


@pytest.mark.parametrize("flags", EVAL_FLAGS, ids=" ".join)
def test_bad_evaluate_flags(tmp_path, small_tree, model_file, capsys, flags):
    rc, err = cli(_eval(small_tree, model_file, *flags), capsys)
    assert rc == 2 and one_line(err), err


def test_pretrain_flags(tmp_path, small_tree, capsys):
    base = ["pretrain", "--dataset", "folder", "--data-root", small_tree, "--out",
            tmp_path / "run", "--device", "cpu"]
    for flags in (["--batch", "0"], ["--finetune-lr", "inf"], ["--finetune-steps", "-2"]):
        rc, err = cli([*base, *flags], capsys)
        assert rc == 2 and one_line(err), (flags, err)


def _model_cases(folder: Path, model_file: Path) -> dict[str, Path]:
    (folder / "empty.pt").write_bytes(b"")
    data = model_file.read_bytes()
    (folder / "truncated.pt").write_bytes(data[:100])
    (folder / "dir.pt").mkdir()
    return {"empty": folder / "empty.pt", "truncated": folder / "truncated.pt",
            "missing": folder / "missing.pt", "folder": folder / "dir.pt"}


@pytest.mark.parametrize("case", ["empty", "truncated", "missing", "folder"])
def test_bad_model_files(tmp_path, small_tree, model_file, capsys, case):
    """Before: a 0-byte .pt raised IndexError formatting the empty EOFError message."""
    path = _model_cases(tmp_path, model_file)[case]
    rc, err = cli(_eval(small_tree, path), capsys)
    assert rc == 2 and one_line(err), err
    rc, err = cli(_train(small_tree, tmp_path / "run", "--init-from", path), capsys)
    assert rc == 2 and one_line(err), err


@pytest.mark.parametrize("case", ["garbage", "truncated", "encrypted", "not_nom", "bomb",
                                  "corrupt"])
def test_bad_data(tmp_path, small_tree, capsys, case):
    path = tmp_path / f"{case}.zip"
    members = {str(p.relative_to(small_tree)): p.read_bytes()
               for p in sorted(small_tree.rglob("*.png"))}
    dataset = "folder"
    if case == "garbage":
        path.write_bytes(os.urandom(4096))
    elif case == "truncated":
        _zip(path, members)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "encrypted":
        _zip(path, members, encrypt=True)
    elif case == "not_nom":  # an Omniglot-like zip given as the Nôm crops
        _zip(path, members)
        dataset = "nom"
    elif case == "corrupt":  # damaged deflate streams behind intact headers
        corrupt_stream(_zip(path, members))
    elif case == "bomb":  # one member declaring 100 MB (100 KB compressed)
        _zip(path, {**members, "alpha00/character01/huge.png": bytes(100 * 2**20)})
    argv = _train(path, tmp_path / "run")
    argv[argv.index("folder")] = dataset
    rc, err = cli(argv, capsys)
    assert rc == 2 and one_line(err), err
    assert not (tmp_path / "run" / "best.pt").exists()


def test_out_is_a_file(tmp_path, small_tree, capsys):
    out = tmp_path / "run"
    out.write_text("not a folder")
    rc, err = cli(_train(small_tree, out), capsys)
    assert rc == 2 and one_line(err), err
    assert out.read_text() == "not a folder"
    argv = _train(small_tree, tmp_path / "run2")
    argv[argv.index("--cache-dir") + 1] = out  # the cache folder is a file too
    rc, err = cli(argv, capsys)
    assert rc == 2 and one_line(err) and "--cache-dir" in err, err


def test_resume_on_a_copied_model_file(tmp_path, small_tree, model_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(model_file, out / "checkpoint.pt")
    rc, err = cli(_train(small_tree, out, "--resume"), capsys)
    assert rc == 2 and one_line(err) and "not a training checkpoint" in err, err


def test_full_disk_during_a_checkpoint(tmp_path, small_tree, capsys):
    """A write beyond the file-size limit fails as on a full disk: one line, status 1, and
    the previous checkpoint stays intact (and resumable), with no temp file left."""
    out = tmp_path / "run"
    rc, err = cli(_train(small_tree, out, "--checkpoint-every", "2", "--schedule",
                         "constant"), capsys)
    assert rc == 0, err
    from trainer import checkpoint as ckpt

    before = (out / "checkpoint.pt").read_bytes()
    argv = [str(a) for a in _train(small_tree, out, "--resume", "--schedule", "constant")]
    argv[argv.index("--steps") + 1] = "8"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from trainer.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        sys.exit(main({argv!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1 and one_line(proc.stderr), proc.stderr
    assert "File too large" in proc.stderr and str(out) in proc.stderr
    assert (out / "checkpoint.pt").read_bytes() == before
    assert ckpt.read(out / "checkpoint.pt")["step"] == 4
    assert not list(out.glob(".*.tmp"))


def test_zip_data_set_is_checked_before_reading(tmp_path):
    """The trainer's zip reader refuses a declared-huge member before reading it."""
    from trainer.data.sources import DataError, scan_tree

    path = _zip(tmp_path / "z.zip", {"a/x.png": bytes(100 * 2**20)})
    with pytest.raises(DataError, match="MB"):
        scan_tree(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("a/x.png").compress_size < 2**20


def test_diverged_loss_is_one_line(tmp_path, small_tree, capsys, monkeypatch):
    from trainer import runs

    def diverge(*a, **k):
        raise FloatingPointError("loss became nan at step 3; the last checkpoint is kept. "
                                 "Lower --lr or the inner LR.")
    monkeypatch.setattr(runs, "run", diverge)
    rc, err = cli(_train(small_tree, tmp_path / "run"), capsys)
    assert rc == 1 and one_line(err) and "loss became nan" in err, err
