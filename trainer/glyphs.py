"""The ONE preprocessing path for every glyph: dataset images, canvas drawings, loaded files.

``normalize`` turns any grayscale or colour image into the model's input: a square uint8
array in which ink is high (255) and background is 0. Steps, in order:

1. To grayscale float in [0, 1] (alpha, if any, is composited onto white).
2. Polarity: ink must be high. ``ink="dark"`` inverts (Omniglot, print, a black-on-white
   canvas); ``"light"`` keeps; ``"auto"`` inverts when the image border is mostly bright.
3. Background removal: subtract the border's median level and stretch so the strongest
   ink is 1. This copes with gray paper; a stronger binarisation for uneven woodblock paper
   is a later, shared step (see the Nôm issue).
4. Crop to the bounding box of pixels above ``threshold``; an image with no ink raises
   :class:`EmptyGlyphError` (an empty canvas is a user error with a clear message).
5. Pad to a square centred on the box, with ``margin`` of the side added on each side.
6. Resize to ``size`` x ``size`` with area averaging (PIL ``BOX``): thin strokes stay gray
   instead of vanishing, as they would with nearest-neighbour.

Cropping makes a small glyph drawn in a corner of the canvas look like a centred dataset
glyph; the ink width seen by the model is then relative to the glyph's size, so the canvas
pen should be about 6% of the drawing's size (Omniglot's measured ink width, see README).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

# Bump when the output of ``normalize`` changes for the same input: dataset caches and
# model files record it, so a stale cache is rebuilt and a mismatch is reported.
PREPROCESS_VERSION = 1

InkPolarity = Literal["auto", "dark", "light"]


class EmptyGlyphError(ValueError):
    """The image holds no ink at all (an empty canvas, a blank file)."""


def to_gray(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any PIL image or array -> float32 (H, W) in [0, 1], alpha composited on white."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 3:
            image = Image.fromarray(arr.astype(np.uint8))
        else:
            arr = arr.astype(np.float32)
            if arr.size and arr.max() > 1.0:
                arr = arr / 255.0
            return np.clip(arr, 0.0, 1.0)
    if image.mode in HIGH_DEPTH_MODES:
        return high_depth_gray(np.asarray(image, dtype=np.float64))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


# 32-bit float and 16/32-bit integer images: PIL's convert("L") clips them to 0..255, so a
# float TIFF in 0..1 became all black (blank after normalising) and a 16-bit scan all white.
HIGH_DEPTH_MODES = ("F", "I", "I;16", "I;16B", "I;16L", "I;16N")


def high_depth_gray(arr: np.ndarray) -> np.ndarray:
    """A float or 16/32-bit grey image -> float32 (H, W) in [0, 1], by its value range:
    0..1 as is, else 0..255, 0..65535, or its own maximum (non-finite values are paper)."""
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max()) if arr.size else 1.0
    scale = next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)
    return np.clip(arr / scale, 0.0, 1.0).astype(np.float32)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def normalize(
    image: Image.Image | np.ndarray,
    size: int = 28,
    *,
    ink: InkPolarity = "auto",
    margin: float = 0.1,
    threshold: float = 0.2,
    clean: bool = False,
) -> np.ndarray:
    """Normalise one glyph image to the model's input.

    Args:
        image: PIL image (any mode) or array (H, W) / (H, W, C), uint8 0..255 or float 0..1.
        size: output side in pixels.
        ink: polarity of the ink in ``image`` (see module docstring).
        margin: empty border added on each side, as a fraction of the glyph's longer side.
        threshold: ink level (0..1, after background removal) that counts for the crop box.
        clean: for scans and prints: :func:`clean_print` (uneven paper, bits of neighbours).

    Returns:
        uint8 array (size, size), ink high.

    Raises:
        EmptyGlyphError: no pixel reaches ``threshold``.
    """
    gray = to_gray(image)
    if gray.size == 0:
        raise EmptyGlyphError("the image is empty (0 pixels)")
    if ink == "dark" or (ink == "auto" and np.median(_border(gray)) > 0.5):
        gray = 1.0 - gray
    background = float(np.median(_border(gray)))
    gray = np.clip(gray - background, 0.0, None)
    peak = float(gray.max())
    if peak < 0.05:
        raise EmptyGlyphError("the image holds no ink")
    gray = gray / peak
    if clean:
        gray = clean_print(gray)

    rows = np.flatnonzero((gray >= threshold).any(axis=1))
    cols = np.flatnonzero((gray >= threshold).any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = gray[y0:y1, x0:x1]

    h, w = crop.shape
    side = max(h, w)
    pad = round(side * margin)
    canvas_side = side + 2 * pad
    square = np.zeros((canvas_side, canvas_side), dtype=np.float32)
    top = pad + (side - h) // 2
    left = pad + (side - w) // 2
    square[top : top + h, left : left + w] = crop

    out = Image.fromarray(np.round(square * 255.0).astype(np.uint8), mode="L")
    out = out.resize((size, size), resample=Image.Resampling.BOX)
    return np.asarray(out, dtype=np.uint8)


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of values in [0, 1]: maximises the between-class variance."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centers)
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0.0
    return float(centers[int(np.argmax(between))])


def clean_print(gray: np.ndarray) -> np.ndarray:
    """Clean a scanned or printed glyph (ink high, float (H, W) in [0, 1]).

    1. Uneven paper: the background is estimated by a grey-level opening wider than any
       stroke (it erases the strokes) and subtracted.
    2. Otsu's threshold separates ink from paper.
    3. Connected ink pieces (8-neighbourhood) that touch the border and are small next to
       the largest piece are bits of neighbouring characters or ruling lines: dropped, as
       are specks under 2% of the largest piece.
    Returns the ink inside the kept pieces, gray levels preserved, rescaled to peak 1.
    """
    from scipy import ndimage

    h, w = gray.shape
    k = max(5, min(h, w) // 3)
    background = ndimage.grey_opening(gray, size=(k, k))
    ink = np.clip(gray - background, 0.0, None)
    if ink.max() <= 0.05:
        return gray  # nothing stands out from the paper: leave the image alone
    ink = ink / ink.max()
    mask = ink > max(otsu_threshold(ink), 0.15)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n > 1:
        areas = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        largest = areas.max()
        border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0],
                                               labels[:, -1]]))) - {0}
        keep = np.zeros(n + 1, dtype=bool)
        for i, area in enumerate(areas, start=1):
            small_edge_piece = i in border and area < 0.25 * largest
            keep[i] = area >= 0.02 * largest and not small_edge_piece
        mask = keep[labels]
    out = np.where(mask, ink, 0.0)
    return out / out.max() if out.max() > 0 else gray


def to_tensor_batch(glyphs: list[np.ndarray] | np.ndarray):
    """uint8 glyphs (B, H, W) -> float tensor (B, 1, H, W) in [0, 1], the models' input."""
    import torch

    arr = np.stack(glyphs) if isinstance(glyphs, list) else glyphs
    return torch.from_numpy(np.ascontiguousarray(arr)).unsqueeze(1).float().div_(255.0)
