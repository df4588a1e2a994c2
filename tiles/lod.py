"""Simplified building geometry for the coarse levels of the LOD tree.

A building's coarse form is its footprint's convex hull, simplified by `SIMPLIFY_TOLERANCE`,
extruded from its lowest to its highest vertex (walls and a flat roof; no floor). Its
*coarse error* is the largest distance between the coarse and the true shape: the Hausdorff
distance in plan between the simplified hull and the footprint (the union of the mesh's
upward-facing triangles seen from above), or the spread of roof or floor heights, whichever is
larger. Its *size* — max(footprint diagonal, height) — is the error of leaving it out. All in
metres in the local ENU frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from tiles.content import PreparedFeature

# Hull vertices closer than this (metres) to the simplified outline are dropped.
SIMPLIFY_TOLERANCE = 0.5
# Faces whose unit normal has |z| above this count as roof (up) or floor (down).
FLAT = 0.5
# Bytes a vertex (position, normal, feature id) and an index take uncompressed.
VERTEX_BYTES = 28
INDEX_BYTES = 4


@dataclass
class Outline:
    """A building's coarse form: `ring` (k, 2) counter-clockwise hull, ENU x/y metres, without
    the closing point; `z_lo`/`z_hi` metres; `error` and `size` metres (see module doc)."""

    ring: NDArray[np.float64]
    z_lo: float
    z_hi: float
    error: float
    size: float

    @property
    def coarse_bytes(self) -> int:
        """Uncompressed glb bytes of the coarse form (5k vertices, 3k - 2 triangles)."""
        k = len(self.ring)
        return 5 * k * VERTEX_BYTES + (3 * k - 2) * 3 * INDEX_BYTES


def full_bytes(feature: PreparedFeature) -> int:
    """Uncompressed glb bytes of a feature's full geometry."""
    return len(feature.positions) * VERTEX_BYTES + feature.triangles.size * INDEX_BYTES


def outlines(features: Sequence[PreparedFeature]) -> list[Outline]:
    """The coarse form of every feature (vectorised over all features at once)."""
    if not features:
        return []
    counts = np.array([len(f.positions) for f in features])
    positions = np.concatenate([f.positions for f in features])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(features)), counts)
    hulls = shapely.convex_hull(shapely.multipoints(positions[:, :2], indices=owner))
    simple = shapely.simplify(hulls, SIMPLIFY_TOLERANCE, preserve_topology=True)
    up, down, up_owner, down_owner, corners = _flat_faces(features, starts)
    plan_error = _plan_errors(hulls, simple, corners, up, up_owner)
    lo = np.minimum.reduceat(positions, starts, axis=0)
    hi = np.maximum.reduceat(positions, starts, axis=0)
    spread = np.maximum(
        _spreads(corners[up], up_owner, len(features)),
        _spreads(corners[down], down_owner, len(features)),
    )
    size = np.maximum(np.hypot(*(hi - lo)[:, :2].T), hi[:, 2] - lo[:, 2])
    error = np.maximum(plan_error, spread)
    rings = _rings(simple, features)
    return [
        Outline(ring, z_lo, z_hi, e, s)
        for ring, z_lo, z_hi, e, s in zip(
            rings, lo[:, 2].tolist(), hi[:, 2].tolist(), error.tolist(), size.tolist(),
            strict=True,
        )
    ]  # fmt: skip


def _flat_faces(
    features: Sequence[PreparedFeature], starts: NDArray[np.int64]
) -> tuple[
    NDArray[np.bool_], NDArray[np.bool_], NDArray[np.int64], NDArray[np.int64],
    NDArray[np.float64],
]:  # fmt: skip
    """Masks of roof (up) and floor (down) triangles of all features, the feature of each,
    and every triangle's corner positions (t, 3, 3) ENU metres."""
    tri_counts = np.array([len(f.triangles) for f in features])
    tri_owner = np.repeat(np.arange(len(features)), tri_counts)
    triangles = np.concatenate([f.triangles for f in features]) + starts[tri_owner][:, None]
    positions = np.concatenate([f.positions for f in features])
    normals_z = np.concatenate([f.normals[:, 2] for f in features])
    first_z = normals_z[triangles[:, 0]]
    up, down = first_z > FLAT, -first_z > FLAT
    return up, down, tri_owner[up], tri_owner[down], positions[triangles]


def _spreads(corners: NDArray[np.float64], owner: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    """Height spread (m) of the corners (t, 3, 3) of each feature's faces; 0 without faces."""
    z = corners[:, :, 2].max(axis=1), corners[:, :, 2].min(axis=1)
    top, bottom = np.full(n, -np.inf), np.full(n, np.inf)
    np.maximum.at(top, owner, z[0])
    np.minimum.at(bottom, owner, z[1])
    return np.where(np.isfinite(top), top - bottom, 0.0)


def _rings(simple: NDArray[np.object_], features: Sequence[PreparedFeature]) -> list[Any]:
    """`_ring` of every simplified hull (vectorised for the non-degenerate ones)."""
    good = (shapely.get_type_id(simple) == 3) & (shapely.area(simple) > 1e-6)
    out: list[Any] = [None] * len(features)
    index = np.flatnonzero(good)
    exteriors = shapely.get_exterior_ring(shapely.orient_polygons(simple[index]))
    xy, of = shapely.get_coordinates(exteriors, return_index=True)
    cuts = np.flatnonzero(np.diff(of)) + 1
    for i, ring in zip(index.tolist(), np.split(xy, cuts), strict=True):
        out[i] = np.asarray(ring[:-1], float)
    for i in np.flatnonzero(~good).tolist():
        out[i] = _ring(simple[i], features[i])
    return out


def _ring(hull: shapely.Geometry, feature: PreparedFeature) -> NDArray[np.float64]:
    """Counter-clockwise exterior without the closing point; a bounding rectangle when the
    hull is degenerate (a building seen edge-on from above)."""
    if isinstance(hull, shapely.Polygon) and hull.area > 1e-6:
        ring = shapely.get_coordinates(shapely.orient_polygons(hull).exterior)[:-1]
        return np.asarray(ring, float)
    lo, hi = feature.positions[:, :2].min(axis=0), feature.positions[:, :2].max(axis=0)
    hi = np.maximum(hi, lo + 0.01)
    return np.array([lo, (hi[0], lo[1]), hi, (lo[0], hi[1])], float)


def _plan_errors(
    hulls: NDArray[np.object_],
    simple: NDArray[np.object_],
    corners: NDArray[np.float64],
    up: NDArray[np.bool_],
    up_owner: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Hausdorff distance (m) in plan between each simplified hull and the true footprint.

    Where the upward faces cover the hull's area (a convex prism), the footprint is the hull
    and only the simplification counts; otherwise the footprint is the union of the upward
    faces (`corners` (t, 3, 3) of all triangles, `up` their roof mask, `up_owner` the feature
    of each roof triangle), unioned for all such buildings at once, grouped by face count."""
    n = len(hulls)
    a, b, c = (corners[up][:, k, :2] for k in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    roof_area = np.bincount(up_owner, weights=np.abs(cross), minlength=n) / 2
    hull_area = shapely.area(hulls)
    convex = np.abs(hull_area - roof_area) <= 1e-3 * np.maximum(hull_area, 1)
    errors = np.asarray(shapely.hausdorff_distance(simple, hulls), float)
    wanted = ~convex[up_owner]
    owner = up_owner[wanted]
    polygons = shapely.polygons(corners[up][wanted][:, :, :2])
    big = shapely.area(polygons) > 1e-9
    has_faces = np.zeros(n, bool)
    has_faces[owner] = True
    kept = np.bincount(owner[big], minlength=n)
    empty = shapely.from_wkt("GEOMETRYCOLLECTION EMPTY")
    footprints = np.full(n, empty, dtype=object)
    polygons, owner = polygons[big], owner[big]  # grouped by owner, in triangle order
    for count in np.unique(kept[has_faces & (kept > 0)]).tolist():
        members = np.flatnonzero(has_faces & (kept == count))
        rows = np.isin(owner, members)
        footprints[members] = shapely.union_all(polygons[rows].reshape(-1, count), axis=1)
    todo = np.flatnonzero(~convex & has_faces)
    errors[todo] = shapely.hausdorff_distance(simple[todo], footprints[todo])
    return np.nan_to_num(errors)


def coarse_feature(feature: PreparedFeature, outline: Outline) -> PreparedFeature:
    """The coarse form as flat-shaded geometry with the feature's property row: a roof fan at
    `z_hi` and one quad per hull edge from `z_lo` to `z_hi`, normals outward."""
    ring = outline.ring
    k = len(ring)
    nxt = np.roll(ring, -1, axis=0)
    lo = np.column_stack([ring, np.full(k, outline.z_lo)])
    hi = np.column_stack([ring, np.full(k, outline.z_hi)])
    lo_n = np.column_stack([nxt, np.full(k, outline.z_lo)])
    hi_n = np.column_stack([nxt, np.full(k, outline.z_hi)])
    # Walls: vertices a (ring lo), b (next lo), c (next hi), d (ring hi) per edge.
    walls = np.stack([lo, lo_n, hi_n, hi], axis=1).reshape(-1, 3)
    edge = nxt - ring
    outward = np.column_stack([edge[:, 1], -edge[:, 0], np.zeros(k)])
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-12)
    wall_normals = np.repeat(outward, 4, axis=0)
    base = 4 * np.arange(k)[:, None]
    wall_tri = np.concatenate([base + np.array([0, 1, 2]), base + np.array([0, 2, 3])])
    roof_tri = 4 * k + np.column_stack([np.zeros(k - 2, int), np.arange(1, k - 1), np.arange(2, k)])
    positions = np.concatenate([walls, hi])
    normals = np.concatenate([wall_normals, np.tile([0.0, 0.0, 1.0], (k, 1))])
    triangles = np.concatenate([wall_tri, roof_tri]).astype(np.int64)
    return PreparedFeature(feature.row, positions, normals, triangles)


def coarse_features(
    features: Sequence[PreparedFeature], forms: Sequence[Outline]
) -> list[PreparedFeature]:
    """`coarse_feature` of every (feature, outline) pair, built on concatenated arrays."""
    if not features:
        return []
    k = np.array([len(o.ring) for o in forms])
    ring = np.concatenate([o.ring for o in forms])
    start = np.concatenate([[0], np.cumsum(k)[:-1]])
    owner = np.repeat(np.arange(len(forms)), k)
    j = np.arange(len(ring)) - start[owner]  # edge index within its ring
    nxt = ring[start[owner] + (j + 1) % k[owner]]
    z_lo = np.array([o.z_lo for o in forms])[owner]
    z_hi = np.array([o.z_hi for o in forms])[owner]
    lo, hi = np.column_stack([ring, z_lo]), np.column_stack([ring, z_hi])
    lo_n, hi_n = np.column_stack([nxt, z_lo]), np.column_stack([nxt, z_hi])
    edge = nxt - ring
    outward = np.column_stack([edge[:, 1], -edge[:, 0], np.zeros(len(ring))])
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-12)
    # Feature f: 4 k_f wall vertices (a, b, c, d per edge), then k_f roof vertices.
    base = 5 * start[owner]
    positions = np.empty((5 * len(ring), 3))
    normals = np.empty((5 * len(ring), 3))
    for c, corner in enumerate((lo, lo_n, hi_n, hi)):
        positions[base + 4 * j + c] = corner
        normals[base + 4 * j + c] = outward
    roof_rows = base + 4 * k[owner] + j
    positions[roof_rows] = hi
    normals[roof_rows] = (0.0, 0.0, 1.0)
    w = (4 * j)[:, None]
    fan = j[(j >= 1) & (j < k[owner] - 1)]
    fan_owner = owner[(j >= 1) & (j < k[owner] - 1)]
    fan_tri = 4 * k[fan_owner][:, None] + np.column_stack([np.zeros_like(fan), fan, fan + 1])
    triangles = np.concatenate([w + np.array([0, 1, 2]), w + np.array([0, 2, 3]), fan_tri])
    tri_owner = np.concatenate([owner, owner, fan_owner])
    order = np.argsort(tri_owner, kind="stable")
    triangles, tri_owner = triangles[order].astype(np.int64), tri_owner[order]
    cuts_v = np.cumsum(5 * k)[:-1]
    cuts_t = np.cumsum(np.bincount(tri_owner, minlength=len(forms)))[:-1]
    return [
        PreparedFeature(f.row, p, n, t)
        for f, p, n, t in zip(
            features, np.split(positions, cuts_v), np.split(normals, cuts_v),
            np.split(triangles, cuts_t), strict=True,
        )
    ]  # fmt: skip
