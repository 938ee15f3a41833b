"""Render the bundled starter class set: digits 0-9, three fonts each (DejaVu, Debian's
fonts-dejavu-core; Bitstream Vera licence). Writes resources/starter/digits/<d>/<font>.png.

    python scripts/make_starter_digits.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = {
    "sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "mono": "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
}
OUT = Path(__file__).resolve().parent.parent / "resources" / "starter" / "digits"


def render(char: str, font_path: str, size: int = 96) -> Image.Image:
    font = ImageFont.truetype(font_path, int(size * 0.75))
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    box = d.textbbox((0, 0), char, font=font)
    x = (size - (box[2] - box[0])) / 2 - box[0]
    y = (size - (box[3] - box[1])) / 2 - box[1]
    d.text((x, y), char, fill=0, font=font)
    return img


def main() -> None:
    for digit in "0123456789":
        folder = OUT / digit
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in FONTS.items():
            render(digit, path).save(folder / f"{name}.png", optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
