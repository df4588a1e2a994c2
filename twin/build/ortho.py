"""The orthophoto as the terrain's texture.

The orthophoto (any CRS, RGB or RGBA, any size) is reprojected (bilinear, GDAL warp) onto a
regular lon/lat grid over the terrain's lon/lat extent, so a terrain vertex's texture
coordinate is a linear function of its lon/lat: u = (lon − west) / (east − west),
v = (north − lat) / (north − south). The texture's sides are powers of two, chosen near the
orthophoto's own ground resolution and at most `MAX_TEXTURE_SIDE` pixels. Where the orthophoto
has no data (its no-data value, alpha 0, or outside it) the texture is `GROUND_RGB`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from rasterio import band
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.transform import from_bounds
from rasterio.warp import reproject

from tiles.model import TerrainMesh
from twin.build.rasters import LonLatBounds, open_raster, raster_crs
from twin.errors import InputError
from twin.geo import WGS84, LocalFrame, metres_per_degree

MAX_TEXTURE_SIDE = 2048
GROUND_RGB = (140, 150, 125)
JPEG_QUALITY = 88
ImageFormat = Literal["jpeg", "png"]

U8 = NDArray[np.uint8]
F64 = NDArray[np.float64]


@dataclass
class OrthoTexture:
    """An RGB image (rows, cols, 3) covering `bounds` (west, south, east, north, degrees) on a
    regular lon/lat grid, and the share of its pixels the orthophoto covered."""

    image: U8
    bounds: LonLatBounds
    coverage: float


def _side(extent_m: float, pixel_m: float, max_side: int) -> int:
    """Power-of-two side (pixels) nearest above extent / pixel size, within 2..max_side."""
    wanted = max(2.0, extent_m / max(pixel_m, 1e-6))
    return int(min(max_side, 2 ** math.ceil(math.log2(wanted))))


def _pixel_metres(src: Any, crs: Any, lat: float) -> float:
    """Ground size (m) of an orthophoto pixel, roughly."""
    size = float(min(abs(src.transform.a), abs(src.transform.e)))
    if crs.is_geographic:
        return size * metres_per_degree(lat)[1]
    linear = [a for a in crs.axis_info if a.direction in ("east", "north")]
    return size * (float(linear[0].unit_conversion_factor) if linear else 1.0)


def read_ortho_texture(
    path: Path,
    bounds: LonLatBounds,
    *,
    default_crs: str | None = None,
    max_side: int = MAX_TEXTURE_SIDE,
) -> OrthoTexture:
    """The orthophoto reprojected onto a lon/lat grid over `bounds` (degrees).

    Raises `InputError` (field ``ortho``) for a missing, unreadable or CRS-less file, and for
    one that covers none of `bounds`.
    """
    west, south, east, north = bounds
    lat = (south + north) / 2
    mx, my = metres_per_degree(lat)
    with open_raster(path, "ortho") as src:
        crs = raster_crs(src, path, "ortho", default_crs)
        pixel = _pixel_metres(src, crs, lat)
        cols = _side((east - west) * mx, pixel, max_side)
        rows = _side((north - south) * my, pixel, max_side)
        interp = list(src.colorinterp)
        alpha = interp.index(ColorInterp.alpha) + 1 if ColorInterp.alpha in interp else None
        colour = [i + 1 for i, c in enumerate(interp) if c != ColorInterp.alpha][:3]
        colour += [colour[-1]] * (3 - len(colour))  # grey: one band for all three
        bands = colour + ([alpha] if alpha else [])
        out = np.zeros((len(bands), rows, cols), np.uint8)
        try:
            reproject(
                source=band(src, bands),
                destination=out,
                dst_transform=from_bounds(west, south, east, north, cols, rows),
                dst_crs=WGS84.to_wkt(),
                src_crs=crs.to_wkt(),
                src_nodata=src.nodata if src.nodata is not None else (None if alpha else 0),
                dst_nodata=0,
                resampling=Resampling.bilinear,
            )
        except RasterioError as exc:
            reason = " ".join(str(exc).replace(str(path), path.name).split())
            raise InputError(
                f"cannot read the orthophoto ({reason})", file=str(path), layer="drone",
                field="ortho",
            ) from exc  # fmt: skip
    missing = out[3] == 0 if alpha else (out[:3] == 0).all(axis=0)
    image = np.ascontiguousarray(np.moveaxis(out[:3], 0, -1))
    image[missing] = GROUND_RGB
    coverage = float(1.0 - missing.mean())
    if coverage == 0.0:
        raise InputError(
            f"the orthophoto does not overlap the terrain (lon {west:.4f}..{east:.4f}, "
            f"lat {south:.4f}..{north:.4f})",
            file=str(path), layer="drone", field="ortho",
            hint="is the CRS right? a file without one takes twin.yaml's crs:",
        )  # fmt: skip
    return OrthoTexture(image, bounds, coverage)


def encode_image(image: U8, fmt: ImageFormat = "jpeg") -> tuple[bytes, str]:
    """PNG or JPEG bytes of an RGB image, and its MIME type."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        mime = "image/png"
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        mime = "image/jpeg"
    if not ok:
        raise InputError(f"cannot encode the terrain texture as {fmt}")
    return data.tobytes(), mime


def lonlat_uvs(lon: F64, lat: F64, bounds: LonLatBounds) -> F64:
    """Texture coordinates (n, 2) of lon/lat points (degrees) on a texture covering `bounds`."""
    west, south, east, north = bounds
    u = (np.asarray(lon) - west) / (east - west)
    v = (north - np.asarray(lat)) / (north - south)
    return np.column_stack([u, v])


def textured_terrain(
    positions: F64,
    triangles: NDArray[np.int64],
    frame: LocalFrame,
    ortho: Path,
    *,
    default_crs: str | None = None,
    max_side: int = MAX_TEXTURE_SIDE,
    fmt: ImageFormat = "jpeg",
) -> tuple[TerrainMesh, dict[str, Any]]:
    """The terrain mesh (ENU metres in `frame`) textured with the orthophoto, and a report
    (texture size, bytes, format, coverage)."""
    lonlat = frame.to_geodetic(positions)[:, :2]
    bounds = (
        float(lonlat[:, 0].min()), float(lonlat[:, 1].min()),
        float(lonlat[:, 0].max()), float(lonlat[:, 1].max()),
    )  # fmt: skip
    texture = read_ortho_texture(ortho, bounds, default_crs=default_crs, max_side=max_side)
    data, mime = encode_image(texture.image, fmt)
    uvs = lonlat_uvs(lonlat[:, 0], lonlat[:, 1], bounds)
    rows, cols = texture.image.shape[:2]
    report = {
        "source": ortho.name, "texture_px": [cols, rows], "format": mime, "bytes": len(data),
        "coverage": round(texture.coverage, 4), "bounds": list(bounds),
    }  # fmt: skip
    return TerrainMesh(positions, triangles, uvs, data, mime), report
