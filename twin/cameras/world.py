"""Pixel ↔ world on a workspace's terrain and building meshes, with uncertainty and occlusion.

Rays from a camera land on the first triangle of the workspace meshes (`MeshRaycaster`). The
plane through the camera's ground height (`Camera.ground_points_enu`) is the ground where the
meshes are missed and, when the workspace has no terrain mesh, wherever it is nearer than the
first building hit. Positions are
lon/lat (deg) and ellipsoidal height (m); distances are metres along the ray from the optical
centre.

Uncertainty of a ray's hit (1 σ, metres): the camera's angular uncertainty — its pixel σ over
the focal length combined with its orientation σ — times the range, stretched by the
obliquity of the surface hit (``1 / sin(incidence)``, incidence measured from the surface,
floored at `MIN_SIN_INCIDENCE`), combined with the camera's position σ.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.cameras.camera import Camera
from twin.cameras.raycast import MeshRaycaster
from twin.errors import WorkspaceError
from twin.geo import ecef_to_geodetic, geodetic_to_ecef
from twin.workspace import WorkspacePaths

Array = NDArray[np.float64]
MIN_SIN_INCIDENCE = 0.05
"""Grazing rays (less than ~3° to the surface) count as 3° for the uncertainty."""
OCCLUSION_TOLERANCE_M = 0.5
OCCLUSION_TOLERANCE_REL = 0.002
"""A point is hidden when something is hit before it by more than 0.5 m + 0.2 % of its range."""


@dataclass(frozen=True)
class RayResult:
    """Where a pixel's ray lands: lon, lat (deg), ellipsoidal height (m), the element hit (a
    building id, None for the ground), the range and its 1-σ uncertainty (m)."""

    lon: float
    lat: float
    height: float
    element_id: str | None
    distance_m: float
    uncertainty_m: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "lon": self.lon,
            "lat": self.lat,
            "height": self.height,
            "element_id": self.element_id,
            "distance_m": self.distance_m,
            "uncertainty_m": self.uncertainty_m,
        }


@dataclass(frozen=True)
class Projection:
    """World → pixel for n points: u, v (px, NaN where not projectable), range (m), whether
    each is in the image (in front, inside the frame, within range) and visible (in the image
    and not hidden behind something)."""

    u: Array
    v: Array
    distance: Array
    in_view: NDArray[np.bool_]
    visible: NDArray[np.bool_]


class World:
    """The meshes rays land on (None: flat ground only) and whether they include terrain."""

    def __init__(self, raycaster: MeshRaycaster | None, *, has_terrain: bool = False) -> None:
        self.raycaster = raycaster
        self.has_terrain = has_terrain and raycaster is not None

    @classmethod
    def from_workspace(cls, ws: Path) -> World:
        """The terrain and building meshes of workspace `ws` (flat ground when it has none)."""
        paths = WorkspacePaths(Path(ws))
        try:
            caster: MeshRaycaster | None = MeshRaycaster.from_workspace(paths.root)
        except WorkspaceError:
            if paths.building_mesh.is_file() or paths.terrain_mesh.is_file():
                raise
            caster = None
        return cls(caster, has_terrain=paths.terrain_mesh.is_file())

    # ----------------------------------------------------------------- pixel → world
    def rays(
        self, camera: Camera, u: ArrayLike, v: ArrayLike, *, skip: Collection[str] = ()
    ) -> list[RayResult | None]:
        """Where the rays through pixels (u, v) of the calibrated image land; None for rays
        that hit nothing within the camera's range (sky, beyond the horizon). Rays pass
        through the elements in `skip` (the building the camera is mounted on)."""
        us, vs = np.atleast_1d(np.asarray(u, float)), np.atleast_1d(np.asarray(v, float))
        frame_rot = camera.frame.rotation
        dirs = camera.direction_enu(us, vs)
        n = len(dirs)
        up = frame_rot[2]
        # Flat ground below the camera.
        flat = camera.ground_points_enu(us, vs)
        flat_dist = np.linalg.norm(flat - camera.position_enu, axis=1)
        distance = flat_dist.copy()
        normal = np.broadcast_to(up, (n, 3)).copy()
        element: list[str | None] = [None] * n
        if self.raycaster is not None and n:
            dirs_ecef = dirs @ frame_rot
            origins = np.broadcast_to(camera.position_ecef, (n, 3))
            hits = self.raycaster.cast(origins, dirs_ecef, skip=skip)
            mesh = np.nan_to_num(hits.distance, nan=np.inf)
            in_range = mesh <= camera.max_range
            if not self.has_terrain:  # the ground plane stands in for terrain: nearest wins
                in_range &= mesh <= np.nan_to_num(flat_dist, nan=np.inf)
            use = in_range
            distance[use] = mesh[use]
            normal[use] = hits.normals_ecef[use]
            element = [hits.element_ids[i] if use[i] else None for i in range(n)]
        points = camera.position_ecef + distance[:, None] * (dirs @ frame_rot)
        geo = ecef_to_geodetic(points)
        dirs_ecef = dirs @ frame_rot
        sin_inc = np.maximum(np.abs(np.einsum("ij,ij->i", normal, dirs_ecef)), MIN_SIN_INCIDENCE)
        sigma_ang = math.hypot(camera.pixel_sigma / camera.focal, math.radians(camera.angle_sigma))
        uncertainty = np.hypot(distance * sigma_ang / sin_inc, camera.position_sigma)
        results: list[RayResult | None] = []
        for i in range(n):
            if not np.isfinite(distance[i]):
                results.append(None)
                continue
            lon, lat, height = (float(c) for c in geo[i])
            ray = RayResult(lon, lat, height, element[i], float(distance[i]), float(uncertainty[i]))
            results.append(ray)
        return results

    def ray(
        self, camera: Camera, u: float, v: float, *, skip: Collection[str] = ()
    ) -> RayResult | None:
        """Where the ray through pixel (u, v) lands (see `rays`)."""
        return self.rays(camera, [u], [v], skip=skip)[0]

    # ----------------------------------------------------------------- world → pixel
    def project(
        self,
        camera: Camera,
        lon: ArrayLike,
        lat: ArrayLike,
        height: ArrayLike,
        element_ids: list[str | None] | None = None,
        *,
        skip: Collection[str] = (),
    ) -> Projection:
        """Pixels of world points (lon, lat deg, ellipsoidal height m) and their visibility.

        A point is hidden when a ray from the camera towards it hits the meshes before it
        (beyond a tolerance); hitting the element the point belongs to (`element_ids`, e.g. a
        building's own wall in front of its centre) does not hide it, nor do the elements in
        `skip` (the building the camera is mounted on).
        """
        ecef = np.atleast_2d(geodetic_to_ecef(lon, lat, height))
        enu = (ecef - camera.frame.origin_ecef) @ camera.frame.rotation.T
        u, v, depth = camera.project_enu(enu)
        u, v = np.atleast_1d(u), np.atleast_1d(v)
        offset = ecef - camera.position_ecef
        distance = np.linalg.norm(offset, axis=1)
        with np.errstate(invalid="ignore"):
            in_view = (
                (np.atleast_1d(depth) > 0)
                & (u >= 0) & (u <= camera.image_width) & (v >= 0) & (v <= camera.image_height)
                & (distance <= camera.max_range)
            )  # fmt: skip
        visible = in_view.copy()
        idx = np.flatnonzero(in_view)
        if self.raycaster is not None and len(idx):
            hits = self.raycaster.cast(
                np.broadcast_to(camera.position_ecef, (len(idx), 3)), offset[idx], skip=skip
            )
            hit = np.nan_to_num(hits.distance, nan=np.inf)
            before = hit < distance[idx] - (
                OCCLUSION_TOLERANCE_M + OCCLUSION_TOLERANCE_REL * distance[idx]
            )
            if element_ids is not None:
                own = np.array(
                    [hits.element_ids[k] is not None and hits.element_ids[k] == element_ids[i]
                     for k, i in enumerate(idx)], bool,
                )  # fmt: skip
                before &= ~own
            visible[idx[before]] = False
        return Projection(u=u, v=v, distance=distance, in_view=in_view, visible=visible)

    def element_pixels(
        self, camera: Camera, step_px: float, *, skip: Collection[str] = ()
    ) -> dict[str, Array]:
        """Pixels (k, 2) of a grid every `step_px` whose rays hit each element first: what
        the camera sees of each building, occlusion included (elements in `skip` passed through)."""
        if self.raycaster is None:
            return {}
        us = np.arange(step_px / 2.0, camera.image_width, step_px)
        vs = np.arange(step_px / 2.0, camera.image_height, step_px)
        gu, gv = np.meshgrid(us, vs)
        gu, gv = gu.ravel(), gv.ravel()
        dirs = camera.direction_enu(gu, gv) @ camera.frame.rotation
        hits = self.raycaster.cast(
            np.broadcast_to(camera.position_ecef, dirs.shape), dirs, skip=skip
        )
        ok = np.nan_to_num(hits.distance, nan=np.inf) <= camera.max_range
        seen: dict[str, list[int]] = {}
        for i, el in enumerate(hits.element_ids):
            if el is not None and ok[i]:
                seen.setdefault(el, []).append(i)
        return {el: np.column_stack([gu[ix], gv[ix]]) for el, ix in seen.items()}
