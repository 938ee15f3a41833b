"""Temperature scaling and the 'none of these' threshold (trainer.calibrate)."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.calibrate import calibrate, fit_temperature, for_classes
from trainer.learners import create_learner


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4000, 5, generator=g, dtype=torch.float64) * 3
    labels = torch.multinomial(torch.softmax(base / 2.5, -1), 1, generator=g).squeeze(1)
    # logits that are 2.5x too confident: the fitted T must undo exactly that
    assert fit_temperature(base, labels) == pytest.approx(2.5, rel=0.1)


def test_threshold_is_interpolated_in_log_way_and_missing_calibration_is_plain():
    cal = {"by_way": [{"way": 5, "temperature": 1.0, "logit_threshold": 0.9},
                      {"way": 20, "temperature": 4.0, "logit_threshold": 0.5}]}
    assert for_classes(None, 10) == (1.0, None)
    assert for_classes(cal, 3) == (1.0, 0.9) and for_classes(cal, 500) == (4.0, 0.5)
    t, thr = for_classes(cal, 10)  # halfway between 5 and 20 in log(way)
    assert t == pytest.approx(2.0) and thr == pytest.approx(0.7)
    assert math.isclose(for_classes(cal, 20)[1], 0.5)


def test_calibrate_keeps_99_percent_of_right_answers_on_validation(glyph_set):
    torch.manual_seed(0)
    learner = create_learner("protonet", {"image_size": 28}).eval()
    result = calibrate(learner, glyph_set, ways=(5, 50), episodes=20)
    rows = result["by_way"]
    assert [r["way"] for r in rows] == [5]  # 2 x 50 classes do not fit 60: skipped
    row = rows[0]
    assert row["right_kept"] >= 98.0 and row["logit_threshold"] < 0  # minus a distance
    assert set(row["keep_levels"]) == {"0.90", "0.95", "0.99"}
    assert row["temperature"] > 0 and 0.0 <= row["unknown_caught"] <= 100.0
