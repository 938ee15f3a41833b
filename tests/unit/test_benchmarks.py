"""The benchmark scripts the README quotes still run (on generated data, a CPU, a few
steps): a figure in the README must come from a command that works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_gpu_throughput_runs_every_precision_on_a_cpu(glyph_tree, tmp_path):
    out = subprocess.run(
        [sys.executable, str(BENCH / "gpu_throughput.py"), "--data-root", str(glyph_tree),
         "--dataset", "folder", "--cache-dir", str(tmp_path), "--device", "cpu",
         "--steps", "20", "--warmup", "0", "--batch", "2", "--learners", "protonet",
         "--precisions", "fp32", "bf16", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout)["results"]["protonet"]
    assert set(row) == {"fp32", "bf16"}
    assert all(cell["tasks_per_s"] > 0 and cell["windows"] == 2 for cell in row.values())
