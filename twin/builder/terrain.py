"""The ground: a DTM GeoTIFF read in its own CRS, bilinear ground heights at lon/lat, and a TIN
(pydelatin) of it in the local ENU frame.

Heights are taken as WGS84 ellipsoidal metres (`twin.geo.VERTICAL_DATUM`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydelatin import Delatin
from pyproj import CRS, Transformer
from rasterio import Affine

from tiles import TerrainGrid, Texturer
from twin.builder.rasters import LonLatBounds, read_height_grid
from twin.errors import InputError
from twin.geo import WGS84, LocalFrame

# Largest raster side kept in memory; bigger DTMs are read resampled (bilinear) to this size.
MAX_SIDE = 2048
# Largest vertical distance (m) between the TIN and the DTM grid it approximates.
TIN_MAX_ERROR_M = 0.5

F64 = NDArray[np.float64]


@dataclass
class Dtm:
    """A DTM grid: ``heights`` (rows, cols) metres with NaN for no data, ``transform`` from
    (col, row) pixel corners to coordinates of ``crs``."""

    path: Path
    heights: F64
    transform: Affine
    crs: CRS

    def __post_init__(self) -> None:
        self._from_lonlat = Transformer.from_crs(WGS84, self.crs, always_xy=True)
        self._to_lonlat = Transformer.from_crs(self.crs, WGS84, always_xy=True)

    def sample(self, lon: ArrayLike, lat: ArrayLike) -> F64:
        """Bilinear ground height (m) at lon/lat (deg); NaN outside the grid or over no data.

        Where a bilinear neighbour is no data, the nearest cell's height is used instead.
        """
        x, y = self._from_lonlat.transform(np.asarray(lon, float), np.asarray(lat, float))
        col, row = ~self.transform @ (np.asarray(x, float), np.asarray(y, float))
        col, row = np.atleast_1d(np.asarray(col, float)), np.atleast_1d(np.asarray(row, float))
        n_rows, n_cols = self.heights.shape
        inside = (col >= 0) & (col <= n_cols) & (row >= 0) & (row <= n_rows)
        # Cell centres sit at integer + 0.5; clamp so edge half-cells take the edge value.
        u = np.clip(col - 0.5, 0, n_cols - 1)
        v = np.clip(row - 0.5, 0, n_rows - 1)
        c0 = np.minimum(np.floor(u).astype(int), max(n_cols - 2, 0))
        r0 = np.minimum(np.floor(v).astype(int), max(n_rows - 2, 0))
        c1, r1 = np.minimum(c0 + 1, n_cols - 1), np.minimum(r0 + 1, n_rows - 1)
        fu, fv = u - c0, v - r0
        h = self.heights
        value = (
            h[r0, c0] * (1 - fu) * (1 - fv)
            + h[r0, c1] * fu * (1 - fv)
            + h[r1, c0] * (1 - fu) * fv
            + h[r1, c1] * fu * fv
        )
        nearest = h[np.rint(v).astype(int), np.rint(u).astype(int)]
        value = np.where(np.isnan(value), nearest, value)
        return np.where(inside, value, np.nan)

    def height_at(self, lon: float, lat: float, default: float = 0.0) -> float:
        """Ground height (m) at one lon/lat (deg), or `default` where the DTM has none."""
        value = float(self.sample(lon, lat)[0])
        return value if np.isfinite(value) else default

    def cell_lonlat(self, cols: ArrayLike, rows: ArrayLike) -> tuple[F64, F64]:
        """Lon/lat (deg) of the centres of cells (col, row)."""
        x, y = self.transform @ (np.asarray(cols, float) + 0.5, np.asarray(rows, float) + 0.5)
        lon, lat = self._to_lonlat.transform(x, y)
        return np.asarray(lon, float), np.asarray(lat, float)


def read_dtm(
    path: Path,
    *,
    max_side: int = MAX_SIDE,
    default_crs: str | None = None,
    area: LonLatBounds | None = None,
) -> Dtm:
    """Read band 1 of a DTM GeoTIFF in its own CRS, heights in metres, no data as NaN.

    A file without a CRS takes `default_crs` (twin.yaml's ``crs:``); with `area` (west, south,
    east, north degrees) only the window covering the survey area is read. Rasters with a side
    over `max_side` cells are read resampled (bilinear) to fit. Raises `InputError` for a
    missing, unreadable or CRS-less file, one that misses `area`, or one with no valid cell
    (see `twin.builder.rasters`).
    """
    grid = read_height_grid(path, "dtm", default_crs=default_crs, area=area, max_side=max_side)
    return Dtm(path, grid.values.astype(np.float64), grid.transform, grid.crs)


def _fill_nodata(heights: F64) -> F64:
    """Copy of `heights` with no data set far (100 m) below the lowest valid cell.

    The TIN needs a full grid; the cliff makes pydelatin place vertices along the edge of the
    no-data area, and triangles with a corner in it are dropped afterwards.
    """
    return np.nan_to_num(heights, nan=float(np.nanmin(heights)) - 100.0)


def terrain_tin(
    dtm: Dtm, frame: LocalFrame, *, max_error: float = TIN_MAX_ERROR_M
) -> tuple[F64, NDArray[np.int64]]:
    """TIN of the DTM within `max_error` metres of the grid, in `frame` (ENU metres).

    Returns positions (n, 3) and triangles (m, 3), counter-clockwise seen from above; triangles
    touching a no-data cell are left out.
    """
    n_rows = dtm.heights.shape[0]
    tin = Delatin(_fill_nodata(dtm.heights).astype(np.float32), max_error=max_error)
    cols = np.rint(tin.vertices[:, 0]).astype(np.int64)
    rows = (n_rows - 1) - np.rint(tin.vertices[:, 1]).astype(np.int64)  # pydelatin's y is up
    z = dtm.heights[rows, cols]
    triangles = np.asarray(tin.triangles, dtype=np.int64).reshape(-1, 3)
    triangles = triangles[~np.isnan(z)[triangles].any(axis=1)]
    if not len(triangles):
        raise InputError(
            "the DTM has no area of valid cells to triangulate",
            file=str(dtm.path), layer="drone", field="dtm",
        )  # fmt: skip
    used, triangles = np.unique(triangles, return_inverse=True)
    triangles = triangles.reshape(-1, 3)
    lon, lat = dtm.cell_lonlat(cols[used], rows[used])
    positions = frame.to_enu(lon, lat, z[used])
    a, b, c = (positions[triangles[:, i], :2] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    triangles[cross < 0] = triangles[cross < 0][:, ::-1]
    return positions, triangles


def ground_heights(dtm: Dtm | None, lon: ArrayLike, lat: ArrayLike) -> F64:
    """Ground height (m) at lon/lat (deg): the DTM's, or 0 without a DTM or outside it."""
    lon_a = np.atleast_1d(np.asarray(lon, float))
    if dtm is None:
        return np.zeros(lon_a.shape)
    return np.nan_to_num(dtm.sample(lon_a, lat), nan=0.0)


def terrain_grid(
    dtm: Dtm,
    frame: LocalFrame,
    texture: Texturer | None = None,
    *,
    max_error: float = TIN_MAX_ERROR_M,
) -> TerrainGrid:
    """The DTM as a `tiles.terrain.TerrainGrid`: cells placed in `frame` (ENU metres), leaves
    within `max_error` metres, tiles textured by `texture` (e.g. `ortho.OrthoTexturer`)."""

    def to_enu(cols: F64, rows: F64, heights: F64) -> F64:
        lon, lat = dtm.cell_lonlat(cols, rows)
        return frame.to_enu(lon, lat, heights)

    return TerrainGrid(dtm.heights, to_enu, texture, finest_error=max_error)
