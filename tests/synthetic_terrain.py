"""A generated elevation grid for the terrain tests: 230 × 300 cells of 5 m with a no-data
hole, its cell centres in ENU metres, and a colour-ramp texture."""

from __future__ import annotations

import cv2
import numpy as np

CELL = 5.0  # metres
ROWS, COLS = 230, 300
FINEST = 0.5
LEAF = 64


def hills() -> np.ndarray:
    """A rough surface (metres) with a no-data hole."""
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(float)
    z = 20 + 8 * np.sin(c / 17) * np.cos(r / 23) + 0.03 * c + 2 * np.sin(r * c / 900)
    z[40:60, 200:240] = np.nan
    return z


def to_enu(cols: np.ndarray, rows: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Cell centres on a 5 m grid, row 0 north, centred on the frame's origin."""
    x = (cols + 0.5 - COLS / 2) * CELL
    y = (ROWS / 2 - rows - 0.5) * CELL
    return np.column_stack([x, y, heights])


def texture(positions: np.ndarray, max_side: int) -> tuple[np.ndarray, bytes, str]:
    """One pixel per 0.5 m up to `max_side`, a colour ramp; uvs over the vertices' extent."""
    lo, hi = positions[:, :2].min(axis=0), positions[:, :2].max(axis=0)
    side = int(min(4096, 2 ** np.ceil(np.log2(max(hi - lo) / 0.5))))
    side = min(side, max_side)
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)),
                       np.full((side, side), 90, np.uint8)])  # fmt: skip
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    uvs = np.column_stack([(positions[:, 0] - lo[0]) / (hi[0] - lo[0]),
                           (hi[1] - positions[:, 1]) / (hi[1] - lo[1])])  # fmt: skip
    return uvs, data.tobytes(), "image/jpeg"
