"""Detections in pixels → observations on the globe.

Each box's bottom-centre is cast as a ray from the camera: onto the workspace's terrain and
building meshes when a ray caster is given (falling back to flat ground where the mesh is
missed), else onto flat ground at the camera's ground height. Observations are plain JSON-ready
dicts with the fields of `scenes.models.Observation` (``twin`` does not import ``scenes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.cameras.camera import Camera
from twin.cameras.raycast import MeshRaycaster
from twin.geo import ecef_to_geodetic
from twin.live.detector import Detection


def locate_pixels(
    camera: Camera, u: Sequence[float], v: Sequence[float], raycaster: MeshRaycaster | None = None
) -> tuple[NDArray[np.float64], list[str | None]]:
    """Ground positions of calibrated pixels: (n, 3) lon (deg), lat (deg), ellipsoidal height
    (m), NaN rows where nothing is hit within the camera's range; plus the element id hit
    (a building) or None."""
    us, vs = np.asarray(u, float), np.asarray(v, float)
    flat_enu = camera.ground_points_enu(us, vs)
    flat = camera.frame.to_geodetic(flat_enu)
    flat[np.isnan(flat_enu).any(axis=1)] = np.nan
    hit_ids: list[str | None] = [None] * len(us)
    if raycaster is None or len(us) == 0:
        return flat, hit_ids
    dirs = camera.direction_enu(us, vs) @ camera.frame.rotation
    origins = np.broadcast_to(camera.position_ecef, dirs.shape)
    hits = raycaster.cast(origins, dirs)
    ok = np.nan_to_num(hits.distance, nan=np.inf) <= camera.max_range
    located = flat.copy()
    if ok.any():
        located[ok] = ecef_to_geodetic(hits.points_ecef[ok])
    return located, [hits.element_ids[i] if ok[i] else None for i in range(len(us))]


def detections_to_observations(
    detections: Sequence[Detection],
    camera: Camera,
    frame_index: int,
    time: datetime | None = None,
    *,
    frame_size: tuple[int, int] | None = None,
    raycaster: MeshRaycaster | None = None,
) -> list[dict[str, Any]]:
    """Observations (JSON-ready dicts) for the detections of one frame.

    Parameters
    ----------
    detections : boxes in frame pixels.
    camera : the camera that took the frame.
    frame_index : frame number, kept in ``attributes.frame``.
    time : when the frame was taken (UTC; default now).
    frame_size : (width, height) px of the frame when it differs from the calibrated image size.
    raycaster : terrain/building meshes to land rays on (default flat ground).

    Detections whose foot point does not reach the ground within range are left out.
    """
    if not detections:
        return []
    when = (time or datetime.now(UTC)).astimezone(UTC).isoformat()
    feet = np.array([d.foot for d in detections], float)
    u, v = feet[:, 0], feet[:, 1]
    if frame_size is not None and frame_size != (camera.image_width, camera.image_height):
        u, v = camera.scale_pixels(u, v, *frame_size)
    positions, hit_ids = locate_pixels(camera, list(u), list(v), raycaster)
    observations = []
    for i, det in enumerate(detections):
        lon, lat, height = positions[i]
        if np.isnan(lon):
            continue
        attributes: dict[str, Any] = {
            "bbox": [round(c, 1) for c in det.bbox],
            "frame": frame_index,
            "u": round(float(u[i]), 2),
            "v": round(float(v[i]), 2),
        }
        if hit_ids[i]:
            attributes["on"] = hit_ids[i]
        observations.append(
            {
                "kind": det.kind,
                "cls": det.cls,
                "confidence": round(det.confidence, 4),
                "source": camera.id,
                "track_id": None if det.track_id is None else str(det.track_id),
                "lon": float(lon),
                "lat": float(lat),
                "height": float(height),
                "time": when,
                "attributes": attributes,
            }
        )
    return observations
