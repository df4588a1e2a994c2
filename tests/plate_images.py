"""Rendered licence-plate images for the plate-reading tests (no photographs of real plates).

Plates are drawn with the Noto Sans CJK font (Debian ``fonts-noto-cjk``): ordinary plates white
on blue, new-energy plates black on a white-to-green gradient, with the usual middle dot after
the issuing-authority letter. They are pasted onto a real vehicle photo (the bus of
ultralytics' ``assets/bus.jpg``, cropped) or onto a plain grey background, slightly scaled,
rotated and blurred so OCR does not see perfect glyphs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import ultralytics
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from twin.plates import PROVINCES

FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
FONT_INDEX = 2  # the SC (simplified Chinese) face of the collection
BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
BUS_BOX = (20, 220, 810, 760)  # x1, y1, x2, y2 px: the bus in bus.jpg
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"


def random_plate(rng: np.random.Generator, new_energy: bool) -> str:
    """A plate number that validates: province, letter, 5 serial characters (6 for
    new-energy: D or F, a letter or digit, four digits)."""
    head = str(rng.choice(list(PROVINCES))) + str(rng.choice(list(LETTERS)))
    if new_energy:
        tail = str(rng.choice(["D", "F"])) + str(rng.choice(list(LETTERS + DIGITS)))
        return head + tail + "".join(rng.choice(list(DIGITS), 4))
    return head + "".join(rng.choice(list(LETTERS + DIGITS * 2), 5))


def render_plate(plate: str, new_energy: bool, height_px: int = 70) -> NDArray[np.uint8]:
    """The plate as a BGR image about `height_px` tall (width ≈ 3.1 × height for ordinary
    plates, 3.4 × for new-energy ones, as real plates are)."""
    scale = 4
    h = height_px * scale
    w = int(h * (3.4 if new_energy else 3.14))
    if new_energy:
        f = np.linspace(0.0, 1.0, h)[:, None]
        top, bottom = np.array([245, 250, 245]), np.array([90, 200, 120])
        rows = (top * (1 - f) + bottom * f).astype(np.uint8)
        img = Image.fromarray(np.repeat(rows[:, None, :], w, axis=1), "RGB")
        ink = (10, 10, 10)
    else:
        img = Image.new("RGB", (w, h), (20, 70, 190))
        ink = (250, 250, 250)
    draw = ImageDraw.Draw(img)
    draw.rectangle((6, 6, w - 7, h - 7), outline=ink, width=5)
    text = f"{plate[:2]}·{plate[2:]}"
    size = int(h * 0.62)
    font = ImageFont.truetype(str(FONT), size, index=FONT_INDEX)
    width = draw.textlength(text, font=font)
    if width > 0.88 * w:  # shrink to fit the plate with a margin
        font = ImageFont.truetype(str(FONT), int(size * 0.88 * w / width), index=FONT_INDEX)
    draw.text((w / 2, h / 2), text, font=font, fill=ink, anchor="mm")
    small = img.resize((w // scale, h // scale), Image.Resampling.LANCZOS)
    return np.asarray(small)[:, :, ::-1].copy()


def bus_background() -> NDArray[np.uint8]:
    """The bus of bus.jpg (BGR), cropped as a detector's vehicle box would be."""
    image = cv2.imread(str(BUS_JPG))
    assert image is not None, BUS_JPG
    x1, y1, x2, y2 = BUS_BOX
    size = ((x2 - x1) // 2, (y2 - y1) // 2)
    return np.asarray(cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_AREA))


def on_background(
    plate_img: NDArray[np.uint8],
    background: NDArray[np.uint8],
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """`plate_img` pasted on `background` near the bottom middle (where a plate sits on a
    vehicle), rotated by up to ±5°, blurred (Gaussian σ 0.3–1.3 px) and with sensor noise."""
    out = background.copy()
    ph, pw = plate_img.shape[:2]
    angle = float(rng.uniform(-5, 5))
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
    rotated = cv2.warpAffine(plate_img, m, (pw, ph), borderMode=cv2.BORDER_REPLICATE)
    bh, bw = out.shape[:2]
    x = int((bw - pw) / 2 + rng.uniform(-0.2, 0.2) * (bw - pw))
    y = int(bh * 0.75 - ph / 2)
    out[y : y + ph, x : x + pw] = rotated
    blurred = cv2.GaussianBlur(out, (5, 5), float(rng.uniform(0.3, 1.3))).astype(float)
    return np.clip(blurred + rng.normal(0, 4, out.shape), 0, 255).astype(np.uint8)


def plate_set(n: int, seed: int = 7) -> list[tuple[str, NDArray[np.uint8]]]:
    """`n` (plate, BGR vehicle crop) pairs: every third plate new-energy; alternately on the bus
    photo and on a plain grey background."""
    rng = np.random.default_rng(seed)
    bus = bus_background()
    grey = np.full((240, 400, 3), 110, np.uint8)
    pairs = []
    for i in range(n):
        new_energy = i % 3 == 2
        plate = random_plate(rng, new_energy)
        img = render_plate(plate, new_energy, height_px=int(rng.integers(16, 44)))
        pairs.append((plate, on_background(img, bus if i % 2 == 0 else grey, rng)))
    return pairs
