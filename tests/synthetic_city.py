"""A generated district for the tiles tests: box buildings with varied properties around a
real origin, and a gently sloping terrain grid (ENU metres)."""

from __future__ import annotations

import numpy as np

from tiles.model import FeatureMesh, TerrainMesh
from twin.geo import LocalFrame

FRAME = LocalFrame(121.49, 31.24, 4.0)
BOX_TRIANGLES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # floor, facing down
        [4, 5, 6], [4, 6, 7],  # roof, facing up
        [0, 1, 5], [0, 5, 4],  # south wall
        [1, 2, 6], [1, 6, 5],  # east wall
        [2, 3, 7], [2, 7, 6],  # north wall
        [3, 0, 4], [3, 4, 7],  # west wall
    ]
)  # fmt: skip


def box_building(i: int, x: float, y: float, w: float, d: float, h: float) -> FeatureMesh:
    """A box `w`×`d`×`h` m with its south-west foot at ENU (x, y, ground), ground rising east."""
    ground = 0.002 * x
    corners = [(x, y), (x + w, y), (x + w, y + d), (x, y + d)]
    positions = np.array(
        [(cx, cy, ground) for cx, cy in corners] + [(cx, cy, ground + h) for cx, cy in corners]
    )
    props = {
        "name": f"Tower {i}" if i % 5 else None,
        "kind": "office",
        "height": h,
        "height_source": "attribute" if i % 3 else "default",
        "levels": i % 40 if i % 4 else None,
        "年代": f"{1980 + i % 40}",
        "listed": bool(i % 2),
        "roof": None,  # no value anywhere: an empty STRING column
    }
    return FeatureMesh(f"building:{1000 + i}", props, positions, BOX_TRIANGLES)


def synthetic_city(n: int, seed: int = 7, half_size: float = 1500.0) -> list[FeatureMesh]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-half_size, half_size, 2)
        w, d = rng.uniform(8, 40, 2)
        out.append(box_building(i, x, y, w, d, float(rng.uniform(4, 120))))
    return out


def grid_terrain(half_size: float = 1600.0, n: int = 40) -> TerrainMesh:
    axis = np.linspace(-half_size, half_size, n)
    xx, yy = np.meshgrid(axis, axis)
    zz = 0.002 * xx + 3 * np.sin(yy / 300)
    positions = np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()])
    a = (np.arange(n - 1)[None, :] + n * np.arange(n - 1)[:, None]).ravel()
    triangles = np.concatenate(
        [np.column_stack([a, a + 1, a + n + 1]), np.column_stack([a, a + n + 1, a + n])]
    )
    return TerrainMesh(positions, triangles)
