"""A seeded GUI monkey (scripts/monkey.py): 1,000 random user actions across the windows.

Any exception in a slot fails the test (pytest-qt); at the end the class set reopened from
disk must equal what the window shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import monkey  # a script, importable for its functions

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("seed", [0])
def test_a_thousand_random_actions_and_the_disk_agrees(make_window, qtbot, monkeypatch,
                                                      tmp_path, seed):
    w = make_window()
    m = monkey.Monkey(w, seed, tmp_path / "scratch")
    monkey.install_answers(m, monkeypatch.setattr)
    result = m.run(1000)
    assert set(result["by_kind"]) == {name for _, name, _ in m.actions()}  # all were done
    qtbot.waitUntil(lambda: w.model is not None and not w.refit_timer.isActive(),
                    timeout=60_000)
    assert monkey.window_matches_disk(w) == []
