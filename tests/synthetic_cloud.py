"""A generated point cloud for the point-cloud tests: rolling ground and box roofs in ENU
metres, written as 3D Tiles in this process."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tiles import (
    Compression,
    PointChunk,
    PointCloud,
    PointCloudReport,
    TilesetOptions,
    Tiling,
    write_pointcloud,
)
from tiles.spec import Tile


def synthetic_chunks(count: int, seed: int, side: float) -> Iterator[PointChunk]:
    """`count` points over a `side` × `side` m square in ENU metres: rolling ground and a few
    box roofs up to 30 m, in chunks of 50 000."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, 50_000):
        n = min(50_000, count - start)
        xy = rng.uniform(0, side, (n, 2))
        z = 5 + 3 * np.sin(xy[:, 0] / 40) + np.where((xy // (side / 5)).sum(axis=1) % 2, 25, 0)
        yield PointChunk(
            np.column_stack([xy, z]),
            rng.integers(0, 256, (n, 3), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8),
            rng.integers(0, 4000, n).astype(np.uint16),
        )


def synthetic_cloud(
    out: Path,
    count: int,
    side: float = 200.0,
    tiling: Tiling = "implicit",
    compression: Compression = "none",
) -> tuple[Tile, PointCloudReport]:
    """A generated cloud written (by default as an implicit octree) into `out` (in this
    process)."""
    source = functools.partial(synthetic_chunks, count, 3, side)
    bounds = ([0.0, 0.0, 2.0], [side, side, 33.0])
    options = TilesetOptions(tiling=tiling, compression=compression)
    return write_pointcloud(out, PointCloud([source], bounds, count), options)
