"""Soak: a long session of real pen strokes drawn into the real canvas (scripts/soak.py).

With PySide6 6.12.0 on Python 3.11 this test aborts the interpreter (``none_dealloc``):
each void Qt call of the canvas loses a reference to None. Here it checks the session
stays up, the counts of None / True / False never fall, memory stays bounded, and the
replayed drawings are recognised as well as the same drawings' official PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import OMNIGLOT

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import soak  # a script, importable for its functions

pytestmark = [pytest.mark.gui, pytest.mark.slow]
STROKES = 2000


def test_two_thousand_real_strokes_recognised_like_their_images(make_window, qtbot):
    have = (OMNIGLOT / "strokes_background_small1.zip").is_file() and (
        OMNIGLOT / "images_background.zip").is_file()
    drawings = soak.load_drawings(OMNIGLOT) if have else soak.generated_drawings(classes=80)
    w = make_window()
    result = soak.soak(w, drawings, STROKES)
    assert w.isVisible() and result["alive"]
    assert result["strokes"] >= STROKES and result["drawings"] >= 500
    # The dangerous direction: a count that falls reaches zero and aborts the process.
    # (PySide6 6.11 adds a reference to None in a few calls, e.g. sendEvent: harmless.)
    for name, drift in result["refcount_drift"].items():
        assert drift > -200, f"references to {name} fell by {-drift}: see bindingcheck.py"
    assert result["rss_end_mb"] - result["rss_after_warmup_mb"] < 150
    # Replaying the strokes is as good as loading the scanned drawing.
    assert abs(result["accuracy_replayed"] - result["accuracy_png"]) <= 1.0, result
    assert result["accuracy_replayed"] > (70 if have else 40), result
