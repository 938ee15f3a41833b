"""trainer/ is a pure library: it never imports Qt or the GUI (import-linter's contract in
pyproject.toml says the same; this test needs no extra tool)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[2] / "trainer"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "nomgui")


def test_no_forbidden_imports_in_source():
    for path in TRAINER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path} imports {name}"


def test_importing_the_trainer_loads_no_qt():
    code = ("import sys, trainer.api, trainer.cli, trainer.engine; "
            f"print([m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
