"""Ground heights under workspace points: the terrain TIN (``WS/meshes/terrain.npz``, within
0.5 m of the DTM) interpolated linearly, for draping roads, water and outlines and for
measuring heights. Without terrain the ground is the plane z = 0 of the ENU frame (the
frame's origin lies on the ground)."""

from __future__ import annotations

import numpy as np
import pyvista as pv
from numpy.typing import ArrayLike, NDArray

from twin.viewer.content import triangle_mesh
from twin.workspace import WorkspacePaths

F64 = NDArray[np.float64]
ELEVATION = "elevation"


class Ground:
    """Terrain heights (ENU z, m) at ENU x, y (m)."""

    def __init__(self, mesh: pv.PolyData | None) -> None:
        self.mesh = mesh
        self._flat: pv.PolyData | None = None
        if mesh is not None:
            flat = mesh.copy()
            points = np.asarray(mesh.points, float)
            flat.point_data[ELEVATION] = points[:, 2]
            flat.points = np.column_stack([points[:, :2], np.zeros(len(points))])
            self._flat = flat

    @classmethod
    def from_workspace(cls, paths: WorkspacePaths) -> Ground:
        """The terrain of a workspace (flat ground when it has none)."""
        if not paths.terrain_mesh.is_file():
            return cls(None)
        with np.load(paths.terrain_mesh) as data:
            mesh = triangle_mesh(
                np.asarray(data["vertices"], float), np.asarray(data["faces"], np.int64)
            )
        return cls(mesh)

    def heights(self, xy: ArrayLike) -> F64:
        """Ground z (m) under each (x, y) of an (n, 2) array; 0 outside the terrain."""
        points = np.asarray(xy, float).reshape(-1, 2)
        if self._flat is None or not len(points):
            return np.zeros(len(points))
        probe = pv.PolyData(np.column_stack([points, np.zeros(len(points))]))
        sampled = probe.sample(self._flat, tolerance=1e-6)
        z = np.asarray(sampled.point_data[ELEVATION], float)
        valid = np.asarray(sampled.point_data["vtkValidPointMask"], bool)
        return np.where(valid, z, 0.0)

    def drape(self, xy: ArrayLike, lift: float = 0.0) -> F64:
        """(n, 3) points on the ground under (n, 2) x, y, raised by `lift` metres."""
        points = np.asarray(xy, float).reshape(-1, 2)
        return np.column_stack([points, self.heights(points) + lift])
