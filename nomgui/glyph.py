"""A committed glyph: Qt-free data the canvas hands over when a drawing is done.

While drawing, the canvas holds Qt points; what leaves it is this plain dataclass, so the
class set, the recogniser and the tests never touch Qt objects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nomgui.safepath import is_regular_file

MAX_SIDE = 1024  # loaded images larger than this are scaled down
# Refused before decoding: a few-KB PNG can declare 20,000 x 20,000 pixels (0.4 GB decoded).
MAX_PIXELS = 40_000_000
HIGH_DEPTH_MODES = ("F", "I", "I;16", "I;16B", "I;16L", "I;16N")


class GlyphLoadError(ValueError):
    """A file or clipboard content is not a usable image; the message names it."""


@dataclass(frozen=True)
class Stroke:
    """One pen stroke: points (P, 3) of x, y (canvas pixels) and pressure (0..1)."""

    points: np.ndarray
    width: float


@dataclass(frozen=True)
class Glyph:
    """What the user drew or loaded.

    Attributes:
        image: uint8 (H, W) grayscale, dark ink on white (the stored and exported form).
        strokes: the strokes drawn, if it came from the canvas.
        source: file name or "canvas" / "clipboard", for messages.
    """

    image: np.ndarray
    strokes: tuple[Stroke, ...] = field(default=())
    source: str = "canvas"

    def has_ink(self) -> bool:
        return bool(self.image.size) and int(self.image.min()) < 200

    def to_png(self) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(self.image, mode="L").save(buf, format="PNG")
        return buf.getvalue()


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Float / 16-bit grey -> 8-bit by its value range (PIL's convert("L") clips, so a
    float TIFF in 0..1 came out blank). Same rule as trainer.glyphs.high_depth_gray."""
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max()) if arr.size else 1.0
    scale = next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)
    return Image.fromarray(np.round(np.clip(arr / scale, 0, 1) * 255).astype(np.uint8), "L")


def _from_pil(img: Image.Image, source: str) -> Glyph:
    if img.width * img.height > MAX_PIXELS:
        raise GlyphLoadError(f"{source} is {img.width} x {img.height} pixels; nomgui reads "
                             f"images of at most {MAX_PIXELS // 1_000_000} megapixels")
    img.load()
    if img.mode in HIGH_DEPTH_MODES:
        img = _high_depth_to_l(img)
    if max(img.size) > MAX_SIDE:
        img = img.copy()
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    if gray.size == 0:
        raise GlyphLoadError(f"{source}: the image is empty")
    # Stored form is dark ink on light: invert light-on-dark images (e.g. a dataset's).
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) < 128:
        gray = 255 - gray
    return Glyph(np.ascontiguousarray(gray), (), source)


def _open_glyph(source: str | Path | io.BytesIO, name: str) -> Glyph:
    """Decode an image (a path or bytes) into a Glyph; every failure is one GlyphLoadError
    naming ``name``."""
    try:
        with Image.open(source) as img:
            return _from_pil(img, name)
    except FileNotFoundError as exc:
        raise GlyphLoadError(f"{name}: file not found") from exc
    except GlyphLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise GlyphLoadError(f"{name} has too many pixels (more than "
                             f"{MAX_PIXELS // 1_000_000} megapixels)") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise GlyphLoadError(f"{name} is not an image nomgui can read") from exc


def load_glyph_file(path: str | Path) -> Glyph:
    """Read an image file as a Glyph; anything else raises GlyphLoadError naming the file."""
    path = Path(path)
    if path.exists() and not is_regular_file(path):
        # A FIFO named x.png would block the opening thread until someone writes to it.
        raise GlyphLoadError(f"{path.name} is not a regular file")
    return _open_glyph(path, path.name)


def glyph_from_bytes(data: bytes, source: str) -> Glyph:
    return _open_glyph(io.BytesIO(data), source)


def glyph_from_array(gray: np.ndarray, source: str) -> Glyph:
    return _from_pil(Image.fromarray(np.asarray(gray, dtype=np.uint8)), source)
