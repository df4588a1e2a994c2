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
from dataclasses import dataclass, field
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

from twin.builder.rasters import LonLatBounds, open_raster, raster_crs
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


def _side(extent_m: float, pixel_m: float, max_side: int, power_of_two: bool = True) -> int:
    """Side (pixels) nearest above extent / pixel size, within 2..max_side; a power of two
    unless `power_of_two` is False."""
    wanted = max(2.0, extent_m / max(pixel_m, 1e-6))
    if not power_of_two:
        return int(min(max_side, math.ceil(wanted)))
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
    require_overlap: bool = True,
    power_of_two: bool = True,
) -> OrthoTexture:
    """The orthophoto reprojected onto a lon/lat grid over `bounds` (degrees).

    Raises `InputError` (field ``ortho``) for a missing, unreadable or CRS-less file, and (with
    `require_overlap`) for one that covers none of `bounds`. Image sides are powers of two
    unless `power_of_two` is False.
    """
    west, south, east, north = bounds
    lat = (south + north) / 2
    mx, my = metres_per_degree(lat)
    with open_raster(path, "ortho") as src:
        crs = raster_crs(src, path, "ortho", default_crs)
        pixel = _pixel_metres(src, crs, lat)
        cols = _side((east - west) * mx, pixel, max_side, power_of_two)
        rows = _side((north - south) * my, pixel, max_side, power_of_two)
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
    if coverage == 0.0 and require_overlap:
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


@dataclass
class OrthoTexturer:
    """Textures terrain tiles one by one (`tiles.terrain.TerrainGrid.texture`).

    `prepare` reads the orthophoto once onto a lon/lat grid over the whole terrain, at its own
    resolution and at most `mosaic_side` px a side; each call then cuts the extent of a tile's
    ENU vertices (in `frame`) out of it, at most `max_side` px a side (power-of-two sides,
    resampled from the mosaic's image pyramid, so coarse tiles are not aliased).
    `report()` sums up what was made."""

    ortho: Path
    frame: LocalFrame
    default_crs: str | None = None
    fmt: ImageFormat = "jpeg"
    mosaic_side: int = 8192
    made: list[dict[str, Any]] = field(default_factory=list)
    _pyramid: list[U8] = field(default_factory=list)
    _bounds: LonLatBounds = (0.0, 0.0, 1.0, 1.0)

    def _extent(self, positions: F64) -> tuple[F64, LonLatBounds]:
        lonlat = self.frame.to_geodetic(positions)[:, :2]
        bounds = (
            float(lonlat[:, 0].min()), float(lonlat[:, 1].min()),
            float(lonlat[:, 0].max()), float(lonlat[:, 1].max()),
        )  # fmt: skip
        return lonlat, bounds

    def prepare(self, positions: F64) -> OrthoTexture:
        """Read the mosaic over the extent of the whole terrain (ENU vertices `positions`).

        Raises `InputError` (field ``ortho``) for a bad file or one that covers none of it."""
        _, bounds = self._extent(positions)
        mosaic = read_ortho_texture(
            self.ortho, bounds, default_crs=self.default_crs, max_side=self.mosaic_side,
            power_of_two=False,
        )  # fmt: skip
        self._bounds = bounds
        self._pyramid = [mosaic.image]
        while min(self._pyramid[-1].shape[:2]) > 2:
            self._pyramid.append(np.asarray(cv2.pyrDown(self._pyramid[-1]), np.uint8))
        return mosaic

    def __call__(self, positions: F64, max_side: int) -> tuple[F64, bytes, str]:
        """Texture coordinates (n, 2), image bytes and MIME type for a tile's vertices."""
        if not self._pyramid:
            self.prepare(positions)
        lonlat, bounds = self._extent(positions)
        west, south, east, north = bounds
        m_west, m_south, m_east, m_north = self._bounds
        base = self._pyramid[0]
        sx = base.shape[1] / (m_east - m_west)  # mosaic px per degree
        sy = base.shape[0] / (m_north - m_south)
        need_cols, need_rows = (east - west) * sx, (north - south) * sy
        cols = int(min(max_side, 2 ** math.ceil(math.log2(max(need_cols, 2.0)))))
        rows = int(min(max_side, 2 ** math.ceil(math.log2(max(need_rows, 2.0)))))
        shrink = max(need_cols / cols, need_rows / rows, 1.0)
        level = min(math.floor(math.log2(shrink)), len(self._pyramid) - 1)
        source = self._pyramid[level]
        fx = source.shape[1] / base.shape[1]
        fy = source.shape[0] / base.shape[0]
        # Output pixel centre (i + 0.5) → source pixel coordinate (centre-based).
        ax = (east - west) * sx * fx / cols
        ay = (north - south) * sy * fy / rows
        bx = (west - m_west) * sx * fx + 0.5 * ax - 0.5
        by = (m_north - north) * sy * fy + 0.5 * ay - 0.5
        matrix = np.array([[ax, 0.0, bx], [0.0, ay, by]])
        image = cv2.warpAffine(
            source, matrix, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        data, mime = encode_image(np.asarray(image, np.uint8), self.fmt)
        made = {"texture_px": [cols, rows], "bytes": len(data), "format": mime,
                "bounds": list(bounds)}  # fmt: skip
        self.made.append(made)
        return lonlat_uvs(lonlat[:, 0], lonlat[:, 1], bounds), data, mime

    def report(self) -> dict[str, Any]:
        """The widest tile's texture (size, format, coverage, bounds), the number of textures,
        their total bytes and the largest side (px)."""
        if not self.made:
            return {"source": self.ortho.name, "textures": 0}

        def area(made: dict[str, Any]) -> float:
            west, south, east, north = made["bounds"]
            return float((east - west) * (north - south))

        widest = max(self.made, key=area)
        return {
            "source": self.ortho.name, **widest, "textures": len(self.made),
            "bytes": sum(m["bytes"] for m in self.made),
            "max_texture_px": max(max(m["texture_px"]) for m in self.made),
        }  # fmt: skip
