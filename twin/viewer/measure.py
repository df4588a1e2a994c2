"""Measurements between picked points of the workspace ENU frame (metres): a distance in 3D
and along the ground (horizontal), and a height from the ground below a point up to it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.viewer.ground import Ground

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Distance:
    """From `a` to `b` (ENU m): straight-line, horizontal and vertical (b above a) metres."""

    a: F64
    b: F64

    @property
    def straight(self) -> float:
        return float(np.linalg.norm(self.b - self.a))

    @property
    def horizontal(self) -> float:
        return float(np.linalg.norm(self.b[:2] - self.a[:2]))

    @property
    def vertical(self) -> float:
        return float(self.b[2] - self.a[2])

    def text(self) -> str:
        return (f"3D {self.straight:.2f} m · horizontal {self.horizontal:.2f} m · "
                f"Δh {self.vertical:+.2f} m")  # fmt: skip


@dataclass(frozen=True)
class Height:
    """A point (ENU m) and the ground straight below it: the height between them (m)."""

    top: F64
    ground: F64

    @property
    def metres(self) -> float:
        return float(self.top[2] - self.ground[2])

    def text(self) -> str:
        return f"height {self.metres:.2f} m above ground"


def distance(a: ArrayLike, b: ArrayLike) -> Distance:
    """The distance from point `a` to point `b` (ENU m)."""
    return Distance(np.asarray(a, float).reshape(3), np.asarray(b, float).reshape(3))


def height(point: ArrayLike, ground: Ground) -> Height:
    """How high `point` (ENU m, e.g. a roof) stands above the terrain straight below it."""
    top = np.asarray(point, float).reshape(3)
    return Height(top, ground.drape(top[:2])[0])
