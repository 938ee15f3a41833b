"""Quitting never aborts: during a fit that would never end, and during a training run.

Each case runs the real ``nomgui`` entry point in its own process (tests/gui/quit_driver.py)
and triggers File > Quit at the chosen moment; the process must exit with status 0 within
a few seconds, and a training run must be stopped with its checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nomgui.training import OUT, RunStore

pytestmark = [pytest.mark.gui, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def _run_driver(tmp_path: Path, *args: str, timeout: float = 240) -> tuple[int, float, str]:
    """(exit status, seconds from Quit to exit, output)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "tests.gui.quit_driver", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    ended = time.monotonic()
    out = proc.stdout + proc.stderr
    quit_lines = [line for line in proc.stdout.splitlines() if line.startswith("quit at ")]
    assert quit_lines, f"the driver never quit:\n{out[-3000:]}"
    return proc.returncode, ended - float(quit_lines[0].split()[-1]), out


def test_quit_during_a_fit_that_never_ends_exits_cleanly(tmp_path):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    payload = torch.load(REPO / "resources" / "models" / "transfer-omniglot.pt",
                         weights_only=True)
    payload["learner"]["hparams"]["finetune_steps"] = 10**8  # a fit that never ends
    slow = data / "models" / "endless-transfer.pt"
    torch.save(payload, slow)
    (data / "settings.ini").write_text(f"[model]\npath={slow}\n")  # the app's settings
    code, seconds, out = _run_driver(tmp_path, str(data), "fit")
    assert code == 0, out[-3000:]
    assert seconds < 10, f"quitting took {seconds:.1f} s"
    assert "Destroyed while thread" not in out and "Traceback" not in out, out[-3000:]


def test_quit_during_training_stops_the_run_and_exits_cleanly(tmp_path, glyph_tree):
    data = tmp_path / "data"
    code, _, out = _run_driver(tmp_path, str(data), "training", str(glyph_tree))
    assert code == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    runs, _ = RunStore(data / "runs", data / "cache").list()
    assert len(runs) == 1
    run = runs[0]
    assert not run.running() and run.status() == "stopped"
    assert (run.folder / OUT / "checkpoint.pt").exists() and run.can_resume()
