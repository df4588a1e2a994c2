"""Colours of the viewer, as on the war-room page where both show the same thing: buildings by
height, kind or jurisdiction, the selection highlight, live entities by kind, alerts by
severity, point clouds by ASPRS class. Colours are RGB bytes."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RGB = tuple[int, int, int]
ColourBy = Literal["height", "kind", "jurisdiction"]
COLOUR_BY: tuple[ColourBy, ...] = ("height", "kind", "jurisdiction")
PointColours = Literal["rgb", "class"]
POINT_COLOURS: tuple[PointColours, ...] = ("rgb", "class")


def hex_rgb(text: str) -> RGB:
    """``#rrggbb`` → (r, g, b) bytes."""
    value = int(text.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


HIGHLIGHT = hex_rgb("#ffd54a")
BACKGROUND = hex_rgb("#0b1220")
# Height above ground (m) → colour, from the top: slate → cyan → white (web/src/viewer.js).
HEIGHT_RAMP: tuple[tuple[float, RGB], ...] = (
    (200.0, hex_rgb("#e8f4ff")),
    (100.0, hex_rgb("#9fd3ff")),
    (50.0, hex_rgb("#5aa7e0")),
    (25.0, hex_rgb("#3f7fb5")),
    (10.0, hex_rgb("#34628a")),
    (-np.inf, hex_rgb("#2d4a66")),
)
# Twelve colours that stay apart on a dark background and from `HIGHLIGHT` (categories: kinds,
# jurisdictions).
PALETTE: tuple[RGB, ...] = tuple(
    hex_rgb(c)
    for c in ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#8cd17d",
              "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295")
)  # fmt: skip
ENTITY_KINDS: dict[str, RGB] = {
    "person": hex_rgb("#ffb020"),
    "vehicle": hex_rgb("#38d6ff"),
    "object": hex_rgb("#d77bff"),
    "environment": hex_rgb("#6be58f"),
}
SEVERITY: dict[str, RGB] = {
    "critical": hex_rgb("#ff4d4f"),
    "warning": hex_rgb("#ffa940"),
    "info": hex_rgb("#40a9ff"),
}
# ASPRS LAS classification codes → colour; others grey.
POINT_CLASSES: dict[int, RGB] = {
    1: (170, 170, 170), 2: (166, 124, 82), 3: (150, 200, 90), 4: (80, 170, 60),
    5: (30, 120, 40), 6: (230, 90, 60), 7: (255, 0, 255), 9: (60, 130, 230),
    10: (120, 120, 140), 11: (90, 90, 90), 17: (200, 200, 80),
}  # fmt: skip
UNKNOWN: RGB = (200, 200, 200)
EARTH = np.array([hex_rgb(c) for c in ("#4f5d3f", "#7a7a4e", "#a58d62", "#c2ad88")], float)
"""Terrain without an orthophoto, low to high ground."""


def category_colour(key: str | None) -> RGB:
    """A stable palette colour for a category (the same key always gets the same colour)."""
    if not key:
        return UNKNOWN
    return PALETTE[zlib.crc32(key.encode("utf-8")) % len(PALETTE)]


def height_colours(heights: NDArray[np.float64]) -> NDArray[np.uint8]:
    """(n, 3) colours of building heights (m) on `HEIGHT_RAMP`."""
    out = np.zeros((len(heights), 3), np.uint8)
    done = np.zeros(len(heights), bool)
    for floor, colour in HEIGHT_RAMP:
        hit = ~done & (np.nan_to_num(heights, nan=0.0) >= floor)
        out[hit] = colour
        done |= hit
    return out


def category_colours(keys: Sequence[str | None]) -> NDArray[np.uint8]:
    """(n, 3) colours of categories (`category_colour`)."""
    return np.array([category_colour(k) for k in keys], np.uint8).reshape(-1, 3)


def class_colours(classes: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(n, 3) colours of ASPRS classes."""
    table = np.array([POINT_CLASSES.get(c, UNKNOWN) for c in range(256)], np.uint8)
    return table[np.asarray(classes, np.uint8)]


def earth_colours(level: NDArray[np.float64]) -> NDArray[np.uint8]:
    """(n, 3) earth tones for relative ground levels (0 lowest, 1 highest; clipped)."""
    t = np.clip(np.nan_to_num(np.asarray(level, float)), 0.0, 1.0) * (len(EARTH) - 1)
    k = np.minimum(t.astype(int), len(EARTH) - 2)
    f = (t - k)[:, None]
    return np.rint(EARTH[k] * (1 - f) + EARTH[k + 1] * f).astype(np.uint8)
