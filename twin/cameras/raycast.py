"""First-hit ray casting on a workspace's terrain and building meshes (trimesh + Embree).

Meshes are stored in the workspace's local ENU frame (metres; see docs/architecture.md, "Meshes");
rays come in and hits go out in ECEF metres so that any camera can use them. Embree works in
single precision, so each hit is recomputed in double precision on the triangle it found.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from numpy.typing import ArrayLike, NDArray
from trimesh.ray.ray_pyembree import RayMeshIntersector

from twin.errors import WorkspaceError
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

Array = NDArray[np.float64]
SKIP_PASSES = 64
"""Walls of skipped elements a ray may pass through (in and out of the parts of a tower)."""
SKIP_STEP_M = 1e-3


@dataclass(frozen=True)
class Hits:
    """Result of casting n rays: ECEF points (n, 3) with NaN rows for misses, the distance along
    each ray (m, NaN for misses), the element id hit (None for terrain or a miss) and the unit
    normal (ECEF, NaN for misses) of the triangle hit, turned to face the ray's origin."""

    points_ecef: Array
    distance: Array
    element_ids: list[str | None]
    normals_ecef: Array


class MeshRaycaster:
    """Casts rays on one triangle mesh given in the ENU `frame` (vertices in metres)."""

    def __init__(
        self,
        frame: LocalFrame,
        vertices: ArrayLike,
        faces: ArrayLike,
        face_element: ArrayLike | None = None,
        element_ids: ArrayLike | None = None,
    ) -> None:
        self.frame = frame
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        if self.faces.size == 0:
            raise WorkspaceError("cannot ray-cast on an empty mesh")
        n_faces = len(self.faces)
        self.face_element = (
            np.asarray(face_element, np.int64)
            if face_element is not None
            else np.full(n_faces, -1, np.int64)
        )
        self.element_ids = (
            [str(e) for e in np.asarray(element_ids)] if element_ids is not None else []
        )
        mesh = trimesh.Trimesh(self.vertices, self.faces, process=False, validate=False)
        self._intersector = RayMeshIntersector(mesh, scale_to_box=False)

    @classmethod
    def from_workspace(cls, ws: Path, *, buildings: bool = True) -> MeshRaycaster:
        """Terrain (and building) meshes of workspace `ws` as one ray-cast target."""
        paths = WorkspacePaths(Path(ws))
        frame = Manifest.read(paths.manifest).frame
        verts: list[Array] = []
        faces: list[NDArray[np.int64]] = []
        face_el: list[NDArray[np.int64]] = []
        ids: list[str] = []
        sources = [paths.terrain_mesh] + ([paths.building_mesh] if buildings else [])
        for path in sources:
            if not path.is_file():
                continue
            with np.load(path) as data:
                offset = sum(len(v) for v in verts)
                verts.append(np.asarray(data["vertices"], np.float64))
                faces.append(np.asarray(data["faces"], np.int64) + offset)
                if "face_element" in data:
                    face_el.append(np.asarray(data["face_element"], np.int64) + len(ids))
                    ids.extend(str(e) for e in data["element_ids"])
                else:
                    face_el.append(np.full(len(data["faces"]), -1, np.int64))
        if not verts:
            raise WorkspaceError(f"workspace {ws} has no meshes to ray-cast on")
        return cls(frame, np.vstack(verts), np.vstack(faces), np.concatenate(face_el), ids)

    def _to_enu(self, origins_ecef: ArrayLike, directions_ecef: ArrayLike) -> tuple[Array, Array]:
        rot = self.frame.rotation
        origins = (np.atleast_2d(np.asarray(origins_ecef, float)) - self.frame.origin_ecef) @ rot.T
        dirs = np.atleast_2d(np.asarray(directions_ecef, float)) @ rot.T
        dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        origins, dirs = np.broadcast_arrays(origins, dirs)
        return origins, dirs

    def _first_hits(
        self, origins: Array, dirs: Array
    ) -> tuple[Array, NDArray[np.int64], NDArray[np.int64], Array]:
        """Embree's first hits, refined in float64: distance (n,) NaN for misses, the rays that
        hit, their triangles, and those triangles' unnormalised normals (ENU)."""
        tri, ray = self._intersector.intersects_id(
            origins, dirs, multiple_hits=False, return_locations=False
        )
        distance = np.full(len(dirs), np.nan)
        v0, v1, v2 = (self.vertices[self.faces[tri, k]] for k in range(3))
        normal = np.cross(v1 - v0, v2 - v0)
        if len(tri):
            num = np.einsum("ij,ij->i", normal, v0 - origins[ray])
            distance[ray] = num / np.einsum("ij,ij->i", normal, dirs[ray])
        return distance, np.asarray(ray, np.int64), np.asarray(tri, np.int64), normal

    def cast(
        self, origins_ecef: ArrayLike, directions_ecef: ArrayLike, *, skip: Collection[str] = ()
    ) -> Hits:
        """First hit of each ray (origins and directions (n, 3), ECEF). Triangles of the
        elements in `skip` are passed through: the building a camera is mounted on, say."""
        origins, dirs = self._to_enu(origins_ecef, directions_ecef)
        distance, ray, tri, normal = self._first_hits(origins, dirs)
        n = len(dirs)
        hit_tri = np.full(n, -1, np.int64)
        hit_tri[ray] = tri
        normals = np.full((n, 3), np.nan)
        normals[ray] = normal
        skipped = [i for i, el in enumerate(self.element_ids) if el in set(skip)] if skip else []
        for _ in range(SKIP_PASSES if skipped else 0):
            again = np.flatnonzero((hit_tri >= 0) & np.isin(self.face_element[hit_tri], skipped))
            if not len(again):
                break
            start = origins[again] + (distance[again] + SKIP_STEP_M)[:, None] * dirs[again]
            more, ray2, tri2, normal2 = self._first_hits(start, dirs[again])
            distance[again] += more + SKIP_STEP_M
            hit_tri[again] = -1
            normals[again] = np.nan
            hit_tri[again[ray2]] = tri2
            normals[again[ray2]] = normal2
        unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        facing = np.einsum("ij,ij->i", unit, dirs) > 0
        unit = np.where(facing[:, None], -unit, unit)
        rot = self.frame.rotation
        points = (origins + distance[:, None] * dirs) @ rot + self.frame.origin_ecef
        element_ids: list[str | None] = []
        for t in hit_tri:
            idx = int(self.face_element[t]) if t >= 0 else -1
            element_ids.append(self.element_ids[idx] if idx >= 0 else None)
        return Hits(points, distance, element_ids, unit @ rot)

    def first_hit_distance(self, origins_ecef: ArrayLike, directions_ecef: ArrayLike) -> Array:
        """Distance (m) along each ray (origins, directions (n, 3) ECEF) to its first hit, NaN
        for misses: the fast path for large batches (no element ids, no normals)."""
        origins, dirs = self._to_enu(origins_ecef, directions_ecef)
        return self._first_hits(origins, dirs)[0]
