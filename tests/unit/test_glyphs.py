from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from trainer.glyphs import EmptyGlyphError, normalize


def _dark_on_light(size=(120, 80), box=(20, 10, 50, 40)) -> Image.Image:
    img = Image.new("L", size, 230)  # gray paper
    ImageDraw.Draw(img).rectangle(box, fill=20)
    return img


def test_dark_ink_becomes_high_and_is_centred():
    out = normalize(_dark_on_light(), 28)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0, 0] == 0  # ink high, background 0
    ys, xs = np.nonzero(out > 127)
    # cropped to the ink and centred: the square glyph fills the middle, margins equal
    assert abs((ys.min() + ys.max()) / 2 - 13.5) <= 1 and abs((xs.min() + xs.max()) / 2 - 13.5) <= 1
    assert ys.min() >= 1 and ys.max() <= 26


def test_position_and_scale_do_not_matter():
    a = normalize(_dark_on_light(box=(10, 10, 40, 40)), 28)
    b = normalize(_dark_on_light(size=(300, 300), box=(200, 150, 290, 240)), 28)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 8


def test_light_ink_and_polarity_auto():
    img = Image.new("L", (50, 50), 0)
    ImageDraw.Draw(img).line([(10, 10), (40, 40)], fill=255, width=5)
    auto, light = normalize(img, 28), normalize(img, 28, ink="light")
    np.testing.assert_array_equal(auto, light)
    assert auto.max() == 255


def test_rgba_canvas_is_composited_on_white():
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent, black but invisible
    ImageDraw.Draw(img).ellipse((20, 20, 40, 40), fill=(0, 0, 255, 255))
    out = normalize(img, 28)
    assert out.max() > 200 and out[0, 0] == 0


@pytest.mark.parametrize("blank", [Image.new("L", (40, 40), 255), np.zeros((40, 40)),
                                   Image.new("RGB", (10, 10), (128, 128, 128))])
def test_empty_image_is_an_error(blank):
    with pytest.raises(EmptyGlyphError):
        normalize(blank, 28)


def test_float_array_input_matches_uint8():
    img = np.asarray(_dark_on_light())
    np.testing.assert_array_equal(normalize(img, 28), normalize(img / 255.0, 28))
