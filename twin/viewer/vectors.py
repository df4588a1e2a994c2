"""Catalog layers as meshes draped on the ground, in the workspace's ENU frame (metres): lines
(roads, area outlines), areas (water, triangulated with earcut) and points (sites, sensors).

Every mesh carries cell data ``element`` (index into its `ElementMesh.ids`), so a picked cell
leads back to its catalog element."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mapbox_earcut
import numpy as np
import pyvista as pv
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry as Geometry

from twin.geo import LocalFrame, metres_per_degree
from twin.viewer.content import triangle_mesh
from twin.viewer.ground import Ground

ELEMENT = "element"
DRAPE_STEP_M = 25.0
"""Longest segment (m) of a draped line or ring: vertices follow the ground at least this often."""
F64 = NDArray[np.float64]


@dataclass
class ElementMesh:
    """A mesh of several elements; cell data ``element`` indexes `ids`."""

    mesh: pv.PolyData
    ids: list[str]

    def element_of(self, cell: int) -> str | None:
        """The id of the element drawn by `cell`."""
        index = int(self.mesh.cell_data[ELEMENT][cell])
        return self.ids[index] if 0 <= index < len(self.ids) else None


def enu_xy(frame: LocalFrame, lonlat: F64) -> F64:
    """ENU x, y (m) of (n, 2) lon/lat (deg) on the frame's tangent plane."""
    if not len(lonlat):
        return np.zeros((0, 2))
    enu = frame.to_enu(lonlat[:, 0], lonlat[:, 1], np.full(len(lonlat), frame.height))
    return np.asarray(enu, float).reshape(-1, 3)[:, :2]


def _densified(geometry: Geometry) -> Geometry:
    """`geometry` with vertices at most `DRAPE_STEP_M` apart (lon/lat deg)."""
    lat = shapely.get_coordinates(geometry)[:, 1].mean() if not geometry.is_empty else 0.0
    _, metres_per_deg_lat = metres_per_degree(float(lat))
    return shapely.segmentize(geometry, DRAPE_STEP_M / metres_per_deg_lat)


def _lines(geometry: Geometry) -> list[Geometry]:
    """The linework of a geometry: lines as they are, polygon rings, nothing for points."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return list(shapely.get_parts(shapely.get_rings(shapely.get_parts(geometry))))
    if geometry.geom_type in ("LineString", "LinearRing", "MultiLineString"):
        return list(shapely.get_parts(geometry))
    return []


def line_mesh(
    ids: Sequence[str],
    geometries: Sequence[Geometry],
    frame: LocalFrame,
    ground: Ground,
    lift: float,
) -> ElementMesh | None:
    """Polylines of the lines and polygon outlines of elements `ids` (geometries lon/lat deg),
    `lift` m above the ground."""
    lines, owners = [], []
    for i, geometry in enumerate(geometries):
        for line in _lines(_densified(geometry)):
            lines.append(line)
            owners.append(i)
    if not lines:
        return None
    coords, which = shapely.get_coordinates(np.asarray(lines, dtype=object), return_index=True)
    points = ground.drape(enu_xy(frame, coords), lift)
    counts = np.bincount(which, minlength=len(lines))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    cells = np.concatenate([np.concatenate([[n], s + np.arange(n)])
                            for s, n in zip(starts, counts, strict=True) if n >= 2])  # fmt: skip
    mesh = pv.PolyData(points, lines=cells)
    mesh.cell_data[ELEMENT] = np.asarray(owners, np.int32)[counts >= 2]
    return ElementMesh(mesh, list(ids))


def area_mesh(
    ids: Sequence[str],
    geometries: Sequence[Geometry],
    frame: LocalFrame,
    ground: Ground,
    lift: float,
) -> ElementMesh | None:
    """Triangulated polygons (holes kept) of elements `ids` (geometries lon/lat deg), `lift` m
    above the ground."""
    blocks: list[F64] = []
    faces: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int32]] = []
    offset = 0
    for i, geometry in enumerate(geometries):
        for part in shapely.get_parts(_densified(geometry)):
            if part.geom_type != "Polygon" or part.is_empty:
                continue
            rings = [np.asarray(part.exterior.coords)[:-1]]
            rings += [np.asarray(r.coords)[:-1] for r in part.interiors]
            xy = enu_xy(frame, np.concatenate(rings))
            ends = np.cumsum([len(r) for r in rings]).astype(np.uint32)
            tri = mapbox_earcut.triangulate_float64(xy, ends).astype(np.int64).reshape(-1, 3)
            if not len(tri):
                continue
            blocks.append(xy)
            faces.append(tri + offset)
            owners.append(np.full(len(tri), i, np.int32))
            offset += len(xy)
    if not blocks:
        return None
    mesh = triangle_mesh(ground.drape(np.concatenate(blocks), lift),
                                          np.concatenate(faces))  # fmt: skip
    mesh.cell_data[ELEMENT] = np.concatenate(owners)
    return ElementMesh(mesh, list(ids))


def point_mesh(
    ids: Sequence[str], lonlat: F64, frame: LocalFrame, ground: Ground, lift: float
) -> ElementMesh | None:
    """One vertex per element `ids` at (n, 2) lon/lat (deg), `lift` m above the ground."""
    if not len(ids):
        return None
    mesh = pv.PolyData(ground.drape(enu_xy(frame, np.asarray(lonlat, float).reshape(-1, 2)), lift))
    mesh.cell_data[ELEMENT] = np.arange(len(ids), dtype=np.int32)
    return ElementMesh(mesh, list(ids))
