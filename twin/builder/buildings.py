"""LoD1 buildings: footprint polygons extruded from their ground height to their roof height.

Roofs are triangulated with earcut (holes supported), walls are one quad (two triangles) per
footprint edge; every triangle is counter-clockwise seen from outside. Positions are in the local
ENU frame (metres).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mapbox_earcut
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from twin.config import BuildOptions
from twin.geo import LocalFrame

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

HEIGHT_SOURCES = ("attribute", "levels", "default")


@dataclass(frozen=True)
class BuildingHeight:
    """Height above ground (m), where it came from (`HEIGHT_SOURCES`), storeys when known, and
    the values given but refused as implausible (`Refusal`), which the next source replaced."""

    height: float
    source: str
    levels: float | None
    refused: tuple[Refusal, ...] = ()


@dataclass(frozen=True)
class Refusal:
    """A height or levels value that was given but cannot be a building's: the field, the
    value as given and why (``not a number``, ``not above 0``, ``under min_height_m`` ...)."""

    field: str
    value: Any
    reason: str


def _reading(value: Any) -> float | str | None:
    """`value` as a float (numbers or numeric text such as "25" or "25 m"); None when it is
    missing (null, NaN, blank); ``"not a number"`` when it is given but is no number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not str(value).strip():
        return None
    if isinstance(value, bool):
        return "not a number"
    try:
        number = float(str(value).strip().removesuffix("m").strip())
    except ValueError:
        return "not a number"
    return number if math.isfinite(number) else "not a number"


def _plausible(metres: float, options: BuildOptions) -> str | None:
    """Why a height of `metres` cannot be a building's, or None when it can."""
    if metres <= 0:
        return "not above 0"
    if metres < options.min_height_m:
        return f"under min_height_m ({options.min_height_m:g} m)"
    if metres > options.max_height_m:
        return f"over max_height_m ({options.max_height_m:g} m)"
    return None


def _given(
    field: str, value: Any, scale: float, options: BuildOptions
) -> tuple[float | None, Refusal | None]:
    """The reading of `value` when `value` × `scale` m is a plausible height; else None and,
    when something was given, why it was refused."""
    reading = _reading(value)
    if reading is None:
        return None, None
    if isinstance(reading, str):
        return None, Refusal(field, value, reading)
    why = _plausible(reading * scale, options)
    return (reading, None) if why is None else (None, Refusal(field, value, why))


def building_height(height: Any, levels: Any, options: BuildOptions) -> BuildingHeight:
    """Height from the height column (m); else levels × storey height; else the default. A
    value that is given but implausible (no number, not above 0, outside
    ``min_height_m``–``max_height_m``) is refused and the next source used."""
    metres, bad_height = _given("height", height, 1.0, options)
    storeys, bad_levels = _given("levels", levels, options.storey_height_m, options)
    refused = tuple(r for r in (bad_height, bad_levels) if r is not None)
    if metres is not None:
        return BuildingHeight(metres, "attribute", storeys, refused)
    if storeys is not None:
        return BuildingHeight(storeys * options.storey_height_m, "levels", storeys, refused)
    return BuildingHeight(options.default_height_m, "default", None, refused)


def footprint(geometry: BaseGeometry) -> tuple[Polygon | MultiPolygon | None, str | None]:
    """The polygonal footprint of a feature and a note: ``(polygon, None)``, ``(repaired
    polygon, "repaired")`` for an invalid one fixed by make_valid, or ``(None, reason)``."""
    if not isinstance(geometry, Polygon | MultiPolygon):
        return None, f"not a polygon ({geometry.geom_type})"
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        return None, "NaN or infinite coordinates"
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


def extrude(
    geometry: Polygon | MultiPolygon, base: float, height: float, frame: LocalFrame
) -> tuple[F64, I64] | None:
    """Extrude a lon/lat footprint (deg) from `base` to `base + height` (m, ellipsoidal).

    Returns positions (n, 3) in `frame` (ENU metres) and triangles (m, 3), counter-clockwise
    seen from outside (roof and walls, no floor); None if no part had three distinct corners.
    """
    return extrude_many([geometry], np.array([base]), np.array([height]), frame)[0]


def extrude_many(
    geometries: Sequence[BaseGeometry], bases: ArrayLike, heights: ArrayLike, frame: LocalFrame
) -> list[tuple[F64, I64] | None]:
    """`extrude` for many footprints at once (same output, vectorised): footprint i (lon/lat
    deg) from ``bases[i]`` to ``bases[i] + heights[i]`` (m, ellipsoidal), in `frame` (ENU m).

    Per footprint: positions (n, 3) — for each polygon part its bottom ring vertices, then its
    roof ring vertices — and triangles (m, 3), roof then walls, or None (no part with three
    distinct corners). Only the roof triangulation (earcut) loops over polygons in Python."""
    count = len(geometries)
    if not count:
        return []
    base = np.asarray(bases, np.float64).reshape(count)
    top = base + np.asarray(heights, np.float64).reshape(count)
    parts, part_owner = shapely.get_parts(np.asarray(geometries, dtype=object), return_index=True)
    parts = shapely.orient_polygons(parts)  # exterior CCW, holes CW (seen from above)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of_coord = shapely.get_coordinates(rings, return_index=True)
    keep, ring_len = _ring_vertices(coords, ring_of_coord, len(rings))
    # A ring is the exterior when it is the first ring of its part.
    exterior = np.ones(len(rings), bool)
    exterior[1:] = ring_part[1:] != ring_part[:-1]
    part_ok = np.zeros(len(parts), bool)
    part_ok[ring_part[exterior]] = ring_len[exterior] >= 3
    ring_ok = (ring_len >= 3) & part_ok[ring_part]
    keep &= ring_ok[ring_of_coord]
    lonlat = coords[keep]
    vertex_ring = ring_of_coord[keep]
    ring_len = np.where(ring_ok, ring_len, 0)
    # Vertices of each (kept) part: its kept rings, concatenated.
    part_n = np.bincount(ring_part, weights=ring_len, minlength=len(parts)).astype(np.int64)
    kept_parts = np.flatnonzero(part_n > 0)
    n_p = part_n[kept_parts]
    owner = part_owner[kept_parts]
    vertex_part = np.repeat(np.arange(len(kept_parts)), n_p)
    # Layout: part p takes 2 n_p rows from 2 * first_p: bottom ring, then roof ring.
    first = np.concatenate([[0], np.cumsum(n_p)[:-1]])
    local = np.arange(len(lonlat)) - first[vertex_part]
    bottom_row = 2 * first[vertex_part] + local
    roof_row = bottom_row + n_p[vertex_part]
    z = np.empty(2 * len(lonlat))
    z[bottom_row] = base[owner][vertex_part]
    z[roof_row] = top[owner][vertex_part]
    xy = np.empty((2 * len(lonlat), 2))
    xy[bottom_row] = lonlat
    xy[roof_row] = lonlat
    positions = frame.to_enu(xy[:, 0], xy[:, 1], z)
    roof_tri, roof_tri_part = _roofs(positions, roof_row, vertex_ring, first, n_p)
    walls, wall_part = _walls(vertex_ring, first, n_p, vertex_part)
    # Triangles of a part, in order: roof, then walls; rows index `positions` globally.
    block = np.concatenate([2 * roof_tri_part, 2 * wall_part + 1])
    order = np.argsort(block, kind="stable")
    triangles = np.concatenate([roof_tri, walls])[order]
    tri_part = np.concatenate([roof_tri_part, wall_part])[order]
    return _split(positions, triangles, owner, 2 * n_p, tri_part, count)


def _ring_vertices(coords: F64, ring_of_coord: I64, rings: int) -> tuple[NDArray[np.bool_], I64]:
    """Which ring coordinates are corners — not the closing point, not a repeat of the point
    before, not a last point equal to the first — and how many each ring keeps."""
    n = len(coords)
    keep = np.ones(n, bool)
    last = np.ones(n, bool)
    last[:-1] = ring_of_coord[1:] != ring_of_coord[:-1]
    first = np.ones(n, bool)
    first[1:] = ring_of_coord[1:] != ring_of_coord[:-1]
    keep[last] = False
    same = np.zeros(n, bool)
    same[1:] = np.all(coords[1:] == coords[:-1], axis=1)
    keep &= first | ~same
    # The last kept point of a ring equal to its first kept point is dropped (once).
    idx = np.flatnonzero(keep)
    if len(idx):
        ring = ring_of_coord[idx]
        head = np.ones(len(idx), bool)
        head[1:] = ring[1:] != ring[:-1]
        tail = np.ones(len(idx), bool)
        tail[:-1] = ring[1:] != ring[:-1]
        heads, tails = idx[head], idx[tail]
        dup = (tails != heads) & np.all(coords[heads] == coords[tails], axis=1)
        keep[tails[dup]] = False
    return keep, np.bincount(ring_of_coord[keep], minlength=rings).astype(np.int64)


def _roofs(
    positions: F64, roof_row: I64, vertex_ring: I64, first: I64, n_p: I64
) -> tuple[I64, I64]:
    """Earcut roof triangles (rows of `positions`, counter-clockwise from above) and the part
    of each, for every part; the roof is triangulated relative to its first vertex."""
    roof_start = 2 * first + n_p
    roof_xy = positions[roof_row, :2] - np.repeat(positions[roof_start, :2], n_p, axis=0)
    new_ring = np.ones(len(vertex_ring), bool)
    new_ring[1:] = vertex_ring[1:] != vertex_ring[:-1]
    ring_end = np.flatnonzero(np.append(new_ring[1:], True)) + 1  # global ends of rings
    ring_end_part = np.searchsorted(np.cumsum(n_p), ring_end, side="left")
    ends_by_part = np.split(
        ring_end, np.cumsum(np.bincount(ring_end_part, minlength=len(n_p)))[:-1]
    )
    pieces, counts = [], np.zeros(len(n_p), np.int64)
    triangulate = mapbox_earcut.triangulate_float64
    for p, (start, ends) in enumerate(zip(first.tolist(), ends_by_part, strict=True)):
        stop = int(ends[-1])
        tri = triangulate(roof_xy[start:stop], (ends - start).astype(np.uint32))
        counts[p] = len(tri) // 3
        pieces.append(tri.astype(np.int64) + start)
    local = np.concatenate(pieces).reshape(-1, 3) if pieces else np.zeros((0, 3), np.int64)
    a, b, c = (roof_xy[local[:, i]] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    local[cross < 0] = local[cross < 0][:, ::-1]
    part = np.repeat(np.arange(len(n_p)), counts)
    # Vertex v of the concatenated rings is roof row 2 * first + n_p + (v - first).
    return local + (first[part] + n_p[part])[:, None], part


def _walls(vertex_ring: I64, first: I64, n_p: I64, vertex_part: I64) -> tuple[I64, I64]:
    """Wall triangles per part: (a, b, b') for every ring edge a→b, then (a, b', a'); rows of
    `positions` (bottom a, roof a' = a + n_p)."""
    v = np.arange(len(vertex_ring))
    new_ring = np.ones(len(v), bool)
    new_ring[1:] = vertex_ring[1:] != vertex_ring[:-1]
    ring_start = np.maximum.accumulate(np.where(new_ring, v, 0))
    ring_len = np.bincount(np.cumsum(new_ring) - 1)
    length = ring_len[np.cumsum(new_ring) - 1]
    nxt = ring_start + (v - ring_start + 1) % length
    shift = first[vertex_part]  # bottom row of vertex v is v + shift
    i, j, n = v + shift, nxt + shift, n_p[vertex_part]
    one = np.column_stack([i, j, j + n])
    two = np.column_stack([i, j + n, i + n])
    # Per part: all of its first-kind walls, then all of its second-kind walls.
    tri = np.concatenate([one, two])
    part = np.concatenate([vertex_part, vertex_part])
    order = np.argsort(part, kind="stable")
    return tri[order], part[order]


def _split(
    positions: F64, triangles: I64, owner: I64, rows: I64, tri_part: I64, count: int
) -> list[tuple[F64, I64] | None]:
    """Cut the global arrays into one (positions, triangles) per footprint."""
    per_owner_rows = np.bincount(owner, weights=rows, minlength=count).astype(np.int64)
    owner_row_start = np.concatenate([[0], np.cumsum(per_owner_rows)])
    tri_owner = owner[tri_part]
    triangles = triangles - owner_row_start[tri_owner][:, None]
    per_owner_tris = np.bincount(tri_owner, minlength=count)
    pos_parts = np.split(positions, owner_row_start[1:-1])
    tri_parts = np.split(triangles, np.cumsum(per_owner_tris)[:-1])
    return [(p, t) if len(p) else None for p, t in zip(pos_parts, tri_parts, strict=True)]


def footprint_sample_points(geometry: BaseGeometry) -> F64:
    """Lon/lat (deg) of a footprint's exterior vertices and its centroid, (k, 2): where the DTM
    is sampled to seat the building (its base is the lowest sample, so it never floats)."""
    rings = [np.asarray(p.exterior.coords)[:, :2] for p in shapely.get_parts(geometry)]
    centroid = np.asarray(geometry.centroid.coords)[:, :2]
    return np.concatenate([*rings, centroid])


def footprint_samples(geometries: Sequence[BaseGeometry]) -> tuple[F64, I64]:
    """`footprint_sample_points` of many footprints at once: the points (k, 2) lon/lat (deg),
    footprint by footprint, and the index of each footprint's first point (n,)."""
    parts, owner = shapely.get_parts(np.asarray(geometries, dtype=object), return_index=True)
    rings = shapely.get_exterior_ring(parts)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    centroids = shapely.get_coordinates(shapely.centroid(np.asarray(geometries, dtype=object)))
    point_owner = np.concatenate([owner[ring_of], np.arange(len(geometries))])
    order = np.argsort(point_owner, kind="stable")
    points = np.concatenate([xy, centroids])[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(point_owner, minlength=len(geometries)))])
    return points, starts[:-1].astype(np.int64)
