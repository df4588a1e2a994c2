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
    """The coarse form of every feature (vectorised with shapely where it can be)."""
    if not features:
        return []
    counts = [len(f.positions) for f in features]
    xy = np.concatenate([f.positions[:, :2] for f in features])
    owner = np.repeat(np.arange(len(features)), counts)
    hulls = shapely.convex_hull(shapely.multipoints(xy, indices=owner))
    simple = shapely.simplify(hulls, SIMPLIFY_TOLERANCE, preserve_topology=True)
    plan_error = _plan_errors(features, hulls, simple)
    out = []
    for feature, hull, error in zip(features, simple, plan_error, strict=True):
        z = feature.positions[:, 2]
        ring = _ring(hull, feature)
        lo, hi = feature.positions.min(axis=0), feature.positions.max(axis=0)
        spread = max(_spread(feature, 1.0), _spread(feature, -1.0))
        size = float(max(np.hypot(*(hi - lo)[:2]), hi[2] - lo[2]))
        out.append(Outline(ring, float(z.min()), float(z.max()), float(max(error, spread)), size))
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


def _spread(feature: PreparedFeature, sign: float) -> float:
    """Height spread (m) of the vertices of roof (`sign` +1) or floor (-1) faces."""
    tri = feature.triangles[feature.normals[feature.triangles[:, 0], 2] * sign > FLAT]
    if not len(tri):
        return 0.0
    return float(np.ptp(feature.positions[tri.ravel(), 2]))


def _plan_errors(
    features: Sequence[PreparedFeature], hulls: NDArray[np.object_], simple: NDArray[np.object_]
) -> NDArray[np.float64]:
    """Hausdorff distance (m) in plan between each simplified hull and the true footprint.

    Where the upward faces cover the hull's area (a convex prism), the footprint is the hull
    and only the simplification counts; otherwise the footprint is the union of the upward
    faces, built per building."""
    roof_area = np.array([_up_area(f) for f in features])
    convex = np.abs(shapely.area(hulls) - roof_area) <= 1e-3 * np.maximum(shapely.area(hulls), 1)
    errors = np.asarray(shapely.hausdorff_distance(simple, hulls), float)
    for i in np.flatnonzero(~convex).tolist():
        footprint = _footprint(features[i])
        if footprint is not None:
            errors[i] = shapely.hausdorff_distance(simple[i], footprint)
    return np.nan_to_num(errors)


def _up_area(feature: PreparedFeature) -> float:
    tri = feature.triangles[feature.normals[feature.triangles[:, 0], 2] > FLAT]
    a, b, c = (feature.positions[tri[:, k], :2] for k in range(3))
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    return float(np.abs(cross).sum() / 2)


def _footprint(feature: PreparedFeature) -> shapely.Geometry | None:
    tri = feature.triangles[feature.normals[feature.triangles[:, 0], 2] > FLAT]
    if not len(tri):
        return None
    polygons = shapely.polygons(feature.positions[tri][:, :, :2])
    return shapely.union_all(polygons[shapely.area(polygons) > 1e-9])


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
