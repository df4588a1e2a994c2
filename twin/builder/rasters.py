"""Drone rasters (DSM, DTM, orthophoto GeoTIFFs) opened in their own CRS, with clear errors.

Each raster may be in any CRS pyproj knows and in a different one from the layers and from the
other rasters. A file without a CRS takes twin.yaml's top-level ``crs:``; with neither it is an
error. Heights are converted to metres: a band's own unit (GeoTIFF ``units``) wins; else the
vertical axis of a 3D/compound CRS; else the linear unit of a projected CRS (a DEM in a US-feet
State Plane CRS holds feet); else metres. Reads are windowed to the survey area and resampled
to a bounded size, so a large raster never has to fit in memory at full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from rasterio import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window, from_bounds

from twin.errors import InputError
from twin.geo import WGS84

# Metres per unit for band unit names found in GeoTIFFs.
UNIT_METRES = {
    "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "international foot": 0.3048,
    "us survey foot": 1200 / 3937, "us-ft": 1200 / 3937, "ftus": 1200 / 3937,
    "foot_us": 1200 / 3937, "us_survey_foot": 1200 / 3937,
}  # fmt: skip
# Margin (degrees) around the survey area kept when a raster is windowed to it.
AREA_MARGIN_DEG = 0.002

F32 = NDArray[np.float32]
LonLatBounds = tuple[float, float, float, float]  # west, south, east, north (degrees)


@dataclass
class Grid:
    """A height grid: ``values`` (rows, cols) in metres, NaN for no data; ``transform`` maps
    (col, row) pixel corners to coordinates of ``crs``."""

    path: Path
    values: F32
    transform: Affine
    crs: CRS

    @property
    def pixel_size(self) -> float:
        """Larger side of a pixel, in units of ``crs``."""
        return float(max(abs(self.transform.a), abs(self.transform.e)))


def _fail(message: str, path: Path, field: str, hint: str = "") -> InputError:
    return InputError(message, file=str(path), layer="drone", field=field, hint=hint)


@contextmanager
def open_raster(path: Path, field: str) -> Iterator[DatasetReader]:
    """Open a GeoTIFF; a missing or unreadable file is an `InputError` with a one-line reason."""
    if not path.is_file():
        raise _fail("file not found", path, field, "check 'drone' in twin.yaml")
    try:
        with rasterio.open(path) as src:
            yield src
    except RasterioError as exc:
        reason = " ".join(str(exc).replace(str(path), path.name).split())
        raise _fail(f"cannot read the raster ({reason})", path, field, "is it a GeoTIFF?") from exc


def raster_crs(src: DatasetReader, path: Path, field: str, default_crs: str | None) -> CRS:
    """The raster's CRS, else twin.yaml's ``crs:``; `InputError` when neither exists."""
    if src.crs is not None:
        return CRS.from_user_input(src.crs.to_wkt())
    if default_crs:
        try:
            return CRS.from_user_input(default_crs)
        except CRSError as exc:
            raise _fail(f"unknown CRS '{default_crs}'", path, "crs") from exc
    raise _fail(
        "the raster has no CRS", path, field,
        "add 'crs: EPSG:...' to twin.yaml or write the GeoTIFF with its CRS",
    )  # fmt: skip


def vertical_metres(crs: CRS, band_unit: str | None = None) -> float:
    """Metres per stored height unit (see the module docstring for the order of rules)."""
    if band_unit and band_unit.strip().lower() in UNIT_METRES:
        return UNIT_METRES[band_unit.strip().lower()]
    vertical = [a for a in crs.axis_info if a.direction in ("up", "down")]
    if vertical:
        return float(vertical[0].unit_conversion_factor)
    if crs.is_projected:
        linear = [a for a in crs.axis_info if a.direction in ("east", "north")]
        if linear:
            return float(linear[0].unit_conversion_factor)
    return 1.0


def area_window(src: DatasetReader, crs: CRS, area: LonLatBounds, path: Path, field: str) -> Window:
    """The window of `src` that covers `area` (lon/lat degrees, with a margin); `InputError`
    when the raster does not overlap it."""
    west, south, east, north = area
    m = AREA_MARGIN_DEG
    xs = np.linspace(west - m, east + m, 21)
    ys = np.linspace(south - m, north + m, 21)
    lon, lat = np.meshgrid(xs, ys)
    edge = np.zeros(lon.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    to_raster = Transformer.from_crs(WGS84, crs, always_xy=True)
    x, y = to_raster.transform(lon[edge], lat[edge])
    x, y = np.asarray(x), np.asarray(y)
    window = from_bounds(x.min(), y.min(), x.max(), y.max(), transform=src.transform)
    col0, row0 = max(0, math.floor(window.col_off)), max(0, math.floor(window.row_off))
    col1 = min(src.width, math.ceil(window.col_off + window.width))
    row1 = min(src.height, math.ceil(window.row_off + window.height))
    if col1 - col0 < 1 or row1 - row0 < 1:
        b = src.bounds
        to_lonlat = Transformer.from_crs(crs, WGS84, always_xy=True)
        lo = to_lonlat.transform(b.left, b.bottom)
        hi = to_lonlat.transform(b.right, b.top)
        raise _fail(
            f"the raster does not overlap the survey layers (raster ≈ lon {lo[0]:.4f}..{hi[0]:.4f}"
            f", lat {lo[1]:.4f}..{hi[1]:.4f}; layers lon {west:.4f}..{east:.4f}, "
            f"lat {south:.4f}..{north:.4f})",
            path, field, "is the CRS right? a file without one takes twin.yaml's crs:",
        )  # fmt: skip
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_height_grid(
    path: Path,
    field: str,
    *,
    default_crs: str | None = None,
    area: LonLatBounds | None = None,
    max_side: int = 4096,
) -> Grid:
    """Band 1 of a height raster (DSM or DTM) in metres, no data as NaN, in its own CRS.

    Parameters
    ----------
    path, field
        The file and its twin.yaml field (``dsm``, ``dtm``), named in errors.
    default_crs
        twin.yaml's ``crs:``, used when the file carries none.
    area
        Survey area (west, south, east, north degrees): only the window covering it is read;
        a raster that misses it is an `InputError`.
    max_side
        Largest side (pixels) kept; larger windows are read resampled (bilinear).
    """
    with open_raster(path, field) as src:
        crs = raster_crs(src, path, field, default_crs)
        window = (
            area_window(src, crs, area, path, field)
            if area is not None
            else Window(0, 0, src.width, src.height)
        )
        scale = max(window.width / max_side, window.height / max_side, 1.0)
        shape = (max(2, round(window.height / scale)), max(2, round(window.width / scale)))
        try:
            data = src.read(
                1, window=window, out_shape=shape, masked=True, resampling=Resampling.bilinear
            )
        except RasterioError as exc:
            reason = " ".join(str(exc).replace(str(path), path.name).split())
            raise _fail(f"cannot read the raster ({reason})", path, field) from exc
        transform = src.window_transform(window) @ Affine.scale(
            window.width / shape[1], window.height / shape[0]
        )
        factor = vertical_metres(crs, src.units[0] if src.units else None)
        band_scale, band_offset = src.scales[0], src.offsets[0]
    values = np.ma.filled(data.astype(np.float32), np.nan)
    values[~np.isfinite(values)] = np.nan
    values = (values * band_scale + band_offset) * factor
    if np.isnan(values).all():
        where = " over the survey area" if area is not None else ""
        raise _fail(f"the raster holds no valid cell{where} (all no data)", path, field)
    return Grid(path, values.astype(np.float32), transform, crs)
