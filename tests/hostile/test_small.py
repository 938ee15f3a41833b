"""Item 7: the smaller faults. Bomb images, dangling links and FIFOs in data sets, float
TIFFs, kill -9 during Delete class and during saves, blank images in a new class, two apps
on one data folder, and metrics.jsonl after a resume between log steps."""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nomgui.classset import ClassSet, ClassSetError, ClassSetStore
from nomgui.glyph import GlyphLoadError, load_glyph_file
from tests.hostile.conftest import blank, inked

REPO = Path(__file__).resolve().parents[2]


def _bomb_png(path: Path, side: int = 30_000) -> Path:
    """A valid PNG header declaring side x side grey pixels, with a tiny (wrong) body:
    it must be refused from the header, before any decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    return path


def _in_thread(fn, timeout: float = 10.0):
    """Run ``fn`` in a daemon thread; fail (not hang) if it blocks, e.g. on a FIFO."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test
            out["error"] = exc
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked"
    return out


def _data_set(root: Path, small_tree: Path) -> Path:
    import shutil

    shutil.copytree(small_tree, root)
    return root


def test_bomb_png(tmp_path, small_tree, capsys):
    from trainer.cli import main

    for side in (8_000, 30_000):  # above nomgui's bound; above PIL's own
        with pytest.raises(GlyphLoadError, match="megapixels"):
            load_glyph_file(_bomb_png(tmp_path / "bomb.png", side))
    tree = _data_set(tmp_path / "tree", small_tree)
    _bomb_png(next(tree.rglob("*.png")), 8_000)
    rc = main(["meta-train", "--algo", "protonet", "--dataset", "folder", "--data-root",
               str(tree), "--out", str(tmp_path / "run"), "--steps", "2", "--way", "2",
               "--split", "all", "--device", "cpu", "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "megapixels" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_dangling_link_and_fifo_in_a_folder_data_set(tmp_path, small_tree):
    from trainer.data.sources import load_folder

    tree = _data_set(tmp_path / "tree", small_tree)
    first = sorted(p for p in tree.iterdir() if p.is_dir())[0]
    sub = sorted(p for p in first.iterdir() if p.is_dir())[0]
    n = len(list(tree.rglob("*.png")))
    os.symlink(tmp_path / "gone.png", sub / "dangling.png")
    os.mkfifo(sub / "x.png")
    out = _in_thread(lambda: load_folder(tree, 28))
    assert "error" not in out, out.get("error")
    assert len(out["value"].labels) == n  # both skipped, every real image read


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_does_not_freeze_the_app(tmp_path):
    from nomgui.annotation import Session

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    out = _in_thread(lambda: load_glyph_file(fifo))
    assert isinstance(out.get("error"), GlyphLoadError)
    s = Session.create(tmp_path / "s", "s")
    out = _in_thread(lambda: s.add_images([fifo]))
    assert out["value"] and "regular" in out["value"][0]


def test_float_tiff_in_0_1_is_not_blank(tmp_path):
    from trainer.glyphs import normalize

    arr = np.ones((64, 64), np.float32)
    arr[20:44, 30:34] = 0.0  # a dark bar on white paper, values in 0..1
    path = tmp_path / "f.tif"
    Image.fromarray(arr, mode="F").save(path)
    g = load_glyph_file(path)
    assert g.has_ink() and g.image[32, 32] < 50 and g.image[5, 5] > 200
    with Image.open(path) as im:
        assert normalize(im, 28).max() > 200  # the trainer sees the stroke too
    arr16 = (np.ones((64, 64)) * 60000).astype(np.uint16)
    arr16[20:44, 30:34] = 0
    Image.fromarray(arr16).save(tmp_path / "g.png")
    assert load_glyph_file(tmp_path / "g.png").has_ink()


def test_blank_image_in_a_new_class_adds_nothing(tmp_path):
    cs = ClassSetStore(tmp_path / "sets").create("s")
    with pytest.raises(ClassSetError, match="empty"):
        cs.add_class("two", "", [inked(1), blank()])
    assert cs.classes == [] and ClassSet.open(cs.folder).classes == []
    assert [p.name for p in cs.folder.iterdir()] == ["manifest.json"]


def _killed_loop(script: str, kills: int, rng: random.Random) -> None:
    """Run ``script`` ``kills`` times, each killed with SIGKILL at a random moment."""
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"  # imports done: kill mid-work
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kill_during_delete_class_is_all_or_nothing(tmp_path):
    cs = ClassSetStore(tmp_path / "sets").create("s")
    for i in range(30):
        cs.add_class(f"k{i}", "", [inked(i * 7 + j) for j in range(5)])
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from nomgui.classset import ClassSet
        cs = ClassSet.open({str(cs.folder)!r})
        print("ready", flush=True)
        for c in list(cs.classes):
            cs.delete_class(c.id)
    """)
    _killed_loop(script, 8, random.Random(0))
    after = ClassSet.open(cs.folder)
    assert all(c.name.startswith("k") and len(c.examples) == 5 for c in after.classes)
    assert all(p.name == "manifest.json" or p.name.startswith("c")
               for p in cs.folder.iterdir())  # no trash left, no temp file


def test_kills_during_saves_leave_no_temp_files(tmp_path):
    cs = ClassSetStore(tmp_path / "sets").create("s")
    cs.add_class("a", "", [inked(1)])
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from nomgui.classset import ClassSet
        from tests.hostile.conftest import inked
        cs = ClassSet.open({str(cs.folder)!r})
        print("ready", flush=True)
        for i in range(1000):
            cs.add_example(cs.classes[0].id, inked(i))
            cs.rename_class(cs.classes[0].id, f"a{{i}}")
    """)
    _killed_loop(script, 10, random.Random(1))
    after = ClassSet.open(cs.folder)
    assert json.loads((cs.folder / "manifest.json").read_text())["classes"]
    assert not list(cs.folder.rglob(".*.tmp"))
    pngs = {p.name for p in (cs.folder / after.classes[0].id).glob("*.png")}
    assert set(after.classes[0].examples) == pngs  # every written example is listed


def test_second_app_on_one_data_folder_is_refused(tmp_path):
    from nomgui.datalock import DataFolderError, DataFolderLock

    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from nomgui.datalock import DataFolderLock
        lock = DataFolderLock({str(tmp_path / 'data')!r})  # held while referenced
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        with pytest.raises(DataFolderError, match="another nomgui"):
            DataFolderLock(tmp_path / "data").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = DataFolderLock(tmp_path / "data")
    lock.acquire()  # a killed app leaves no stale lock
    lock.release()


def test_metrics_after_a_resume_between_log_steps(tmp_path, small_tree):
    """--checkpoint-every 15 with the log every 10 steps: stopped at 25 (checkpoint),
    resumed to 30: metrics.jsonl has the same losses as an unbroken run."""
    import torch

    from trainer import runs
    from trainer.config import TrainConfig

    cfg = TrainConfig(algo="protonet", dataset="folder", split="all", way=2, shot=1,
                      query=2, batch=2, steps=30, val_every=100, checkpoint_every=15,
                      schedule="constant", hparams={})
    data = runs.DataOptions(small_tree, tmp_path / "cache")

    def losses(out: Path) -> list:
        return [(e["step"], e["loss"], e["acc"]) for e in map(json.loads, (
            out / "metrics.jsonl").read_text().splitlines()) if e.get("event") == "step"]

    torch.manual_seed(0)
    runs.run(cfg, data, tmp_path / "a", device=torch.device("cpu"))
    calls = iter(range(1000))
    torch.manual_seed(0)
    runs.run(cfg, data, tmp_path / "b", device=torch.device("cpu"),
             should_stop=lambda: next(calls) >= 25)
    runs.run(cfg, data, tmp_path / "b", device=torch.device("cpu"), resume=True)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


def test_temp_files_a_kill_left_are_removed_by_the_next_write(tmp_path):
    """Run records, sessions, models and checkpoints: every atomic write removes its
    target's temp files older than any write takes, and leaves a younger one alone."""
    import torch

    from nomgui.classset import atomic_write
    from trainer.data.sources import atomic_torch_save

    for target, write in ((tmp_path / "run.json", lambda p: atomic_write(p, b"{}")),
                          (tmp_path / "checkpoint.pt",
                           lambda p: atomic_torch_save({"x": torch.zeros(2)}, p))):
        old = tmp_path / f".{target.name}.abc123.tmp"
        young = tmp_path / f".{target.name}.def456.tmp"
        old.write_bytes(b"half")
        young.write_bytes(b"in progress")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        write(target)
        assert not old.exists() and young.exists() and target.exists()
