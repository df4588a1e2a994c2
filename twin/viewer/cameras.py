"""Cameras (and drones) as the viewer draws them and looks through them, in the workspace's
ENU frame (metres): the view pyramid (frustum) from the optical centre to the image corners,
the footprint of flat ground it sees, and the pose of a 3D view that matches it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon

from twin.cameras.camera import Camera
from twin.geo import LocalFrame
from twin.viewer.content import triangle_mesh
from twin.viewer.ground import Ground
from twin.viewer.vectors import ELEMENT, ElementMesh, area_mesh, line_mesh

F64 = NDArray[np.float64]
FOOTPRINT_LIFT_M = 0.6


@dataclass(frozen=True)
class CameraPose:
    """A camera placed in the workspace frame: optical centre (ENU m), unit forward and up
    directions, vertical field of view (deg) and image aspect (width / height)."""

    position: F64
    forward: F64
    up: F64
    vfov: float
    aspect: float


def _to_frame(camera: Camera, frame: LocalFrame, enu: F64, *, directions: bool = False) -> F64:
    """Points (or directions) of the camera's own ENU frame in the workspace frame."""
    ecef = np.asarray(enu, float) @ camera.frame.rotation
    if not directions:
        ecef = ecef + camera.frame.origin_ecef - frame.origin_ecef
    return np.asarray(ecef @ frame.rotation.T, float)


def camera_pose(camera: Camera, frame: LocalFrame) -> CameraPose:
    """Where `camera` is and looks, in the workspace frame `frame`."""
    axes = camera.rotation  # columns: right, down, forward (camera ENU)
    position = _to_frame(camera, frame, camera.position_enu)
    forward = _to_frame(camera, frame, camera.direction_enu(*camera.principal_point),
                        directions=True)  # fmt: skip
    up = _to_frame(camera, frame, -axes[:, 1], directions=True)
    return CameraPose(position, forward / np.linalg.norm(forward), up / np.linalg.norm(up),
                      camera.vfov, camera.image_width / camera.image_height)  # fmt: skip


def frustum_mesh(cameras: Sequence[Camera], frame: LocalFrame, length: float) -> ElementMesh:
    """Each camera's view pyramid, `length` m deep: four side triangles and the far
    rectangle, cell data ``element`` indexing `cameras`."""
    points: list[F64] = []
    faces: list[list[int]] = []
    owners: list[int] = []
    for i, camera in enumerate(cameras):
        w, h = camera.image_width, camera.image_height
        corners = camera.direction_enu([0, w, w, 0], [0, 0, h, h])
        far = (
            camera.position_enu
            + corners * length / np.abs(corners @ camera.rotation[:, 2])[:, None]
        )
        base = len(points) * 5
        points.append(_to_frame(camera, frame, np.vstack([camera.position_enu, far])))
        faces += [[base, base + 1 + k, base + 1 + (k + 1) % 4] for k in range(4)]
        faces += [[base + 1, base + 2, base + 3], [base + 1, base + 3, base + 4]]
        owners += [i] * 6
    mesh = triangle_mesh(np.vstack(points), np.asarray(faces, np.int64))
    mesh.cell_data[ELEMENT] = np.asarray(owners, np.int32)
    return ElementMesh(mesh, [c.id for c in cameras])


def footprints(
    cameras: Sequence[Camera], frame: LocalFrame, ground: Ground, area: Polygon
) -> tuple[ElementMesh | None, ElementMesh | None]:
    """The flat-ground view footprints (`Camera.view_footprint`) inside `area` (lon/lat deg:
    the district; beyond it there is no ground model) draped on the terrain: a fill and an
    outline, each None when no camera sees the ground there."""
    seen = [(c.id, c.view_footprint().intersection(area)) for c in cameras]
    seen = [(cid, poly) for cid, poly in seen if not poly.is_empty]
    ids = [cid for cid, _ in seen]
    shapes = [poly for _, poly in seen]
    return (area_mesh(ids, shapes, frame, ground, FOOTPRINT_LIFT_M),
            line_mesh(ids, shapes, frame, ground, FOOTPRINT_LIFT_M + 0.1))  # fmt: skip
