"""LoD1 buildings: footprint polygons extruded from their ground height to their roof height.

Roofs are triangulated with earcut (holes supported), walls are one quad (two triangles) per
footprint edge; every triangle is counter-clockwise seen from outside. Positions are in the local
ENU frame (metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mapbox_earcut
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from twin.config import BuildOptions
from twin.geo import LocalFrame

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

HEIGHT_SOURCES = ("attribute", "levels", "default")


@dataclass(frozen=True)
class BuildingHeight:
    """Height above ground (m), where it came from (`HEIGHT_SOURCES`) and storeys when known."""

    height: float
    source: str
    levels: float | None


def _positive(value: Any) -> float | None:
    """`value` as a positive finite float (numbers or numeric text such as "25" or "25 m")."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip().removesuffix("m").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def building_height(height: Any, levels: Any, options: BuildOptions) -> BuildingHeight:
    """Height from the height column (m); else levels × storey height; else the default."""
    storeys = _positive(levels)
    metres = _positive(height)
    if metres is not None:
        return BuildingHeight(metres, "attribute", storeys)
    if storeys is not None:
        return BuildingHeight(storeys * options.storey_height_m, "levels", storeys)
    return BuildingHeight(options.default_height_m, "default", None)


def footprint(geometry: BaseGeometry) -> tuple[Polygon | MultiPolygon | None, str | None]:
    """The polygonal footprint of a feature and a note: ``(polygon, None)``, ``(repaired
    polygon, "repaired")`` for an invalid one fixed by make_valid, or ``(None, reason)``."""
    if not isinstance(geometry, Polygon | MultiPolygon):
        return None, f"not a polygon ({geometry.geom_type})"
    note = None
    if not geometry.is_valid:
        repaired = shapely.make_valid(geometry)
        polygons = [p for p in shapely.get_parts(repaired) if isinstance(p, Polygon)]
        polygons += [
            q for p in shapely.get_parts(repaired) if isinstance(p, MultiPolygon)
            for q in p.geoms
        ]  # fmt: skip
        if not polygons:
            return None, "invalid polygon"
        geometry = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
        note = "repaired"
    if geometry.area <= 0:
        return None, "zero-area polygon"
    return geometry, note


def _ring_lonlat(ring: Any) -> F64:
    """Ring coordinates without the closing point or repeated consecutive points."""
    xy = np.asarray(ring.coords, dtype=np.float64)[:-1, :2]
    if len(xy) == 0:
        return xy
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.any(xy[1:] != xy[:-1], axis=1)
    xy = xy[keep]
    if len(xy) > 1 and np.all(xy[0] == xy[-1]):
        xy = xy[:-1]
    return xy


def _extrude_polygon(
    polygon: Polygon, base: float, top: float, frame: LocalFrame
) -> tuple[F64, I64] | None:
    polygon = shapely.orient_polygons(polygon)  # exterior CCW, holes CW (seen from above)
    rings = [_ring_lonlat(polygon.exterior)]
    rings += [r for r in (_ring_lonlat(h) for h in polygon.interiors) if len(r) >= 3]
    if len(rings[0]) < 3:
        return None
    lonlat = np.concatenate(rings)
    n = len(lonlat)
    bottom = frame.to_enu(lonlat[:, 0], lonlat[:, 1], np.full(n, base))
    roof = frame.to_enu(lonlat[:, 0], lonlat[:, 1], np.full(n, top))
    ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
    roof_xy = roof[:, :2] - roof[0, :2]
    roof_tri = mapbox_earcut.triangulate_float64(roof_xy, ends).astype(np.int64).reshape(-1, 3)
    a, b, c = (roof_xy[roof_tri[:, i]] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    roof_tri[cross < 0] = roof_tri[cross < 0][:, ::-1]
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    lengths = ends.astype(np.int64) - starts
    i = np.arange(n)
    ring_of = np.repeat(np.arange(len(rings)), lengths)
    nxt = starts[ring_of] + (i - starts[ring_of] + 1) % lengths[ring_of]
    # Vertices: bottom ring 0..n-1, roof n..2n-1. Wall a→b: (a, b, b') and (a, b', a').
    walls = np.concatenate(
        [np.column_stack([i, nxt, nxt + n]), np.column_stack([i, nxt + n, i + n])]
    )
    return np.concatenate([bottom, roof]), np.concatenate([roof_tri + n, walls])


def extrude(
    geometry: Polygon | MultiPolygon, base: float, height: float, frame: LocalFrame
) -> tuple[F64, I64] | None:
    """Extrude a lon/lat footprint (deg) from `base` to `base + height` (m, ellipsoidal).

    Returns positions (n, 3) in `frame` (ENU metres) and triangles (m, 3), counter-clockwise
    seen from outside (roof and walls, no floor); None if no part had three distinct corners.
    """
    positions: list[F64] = []
    triangles: list[I64] = []
    offset = 0
    for part in shapely.get_parts(geometry):
        extruded = _extrude_polygon(part, base, base + height, frame)
        if extruded is None:
            continue
        pos, tri = extruded
        positions.append(pos)
        triangles.append(tri + offset)
        offset += len(pos)
    if not positions:
        return None
    return np.concatenate(positions), np.concatenate(triangles)


def footprint_sample_points(geometry: BaseGeometry) -> F64:
    """Lon/lat (deg) of a footprint's exterior vertices and its centroid, (k, 2): where the DTM
    is sampled to seat the building (its base is the lowest sample, so it never floats)."""
    rings = [np.asarray(p.exterior.coords)[:, :2] for p in shapely.get_parts(geometry)]
    centroid = np.asarray(geometry.centroid.coords)[:, :2]
    return np.concatenate([*rings, centroid])
