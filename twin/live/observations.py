"""Detections in pixels → observations on the globe.

Each box's bottom-centre is cast as a ray from the camera onto the `Ground`
(`twin.live.ground`): the workspace's terrain and building meshes, passing through the
building the camera is mounted on, or flat ground at the camera's ground height. Observations
are plain JSON-ready dicts with the fields of `scenes.models.Observation` (``twin`` does not
import ``scenes``); ``attributes.uncertainty_m`` is the position's 1-σ uncertainty (m) and
``attributes.on`` the element the foot point landed on (a building), when any.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from twin.cameras.camera import Camera
from twin.live.detector import Detection
from twin.live.ground import Ground


def detections_to_observations(
    detections: Sequence[Detection],
    camera: Camera,
    frame_index: int,
    time: datetime | None = None,
    *,
    frame_size: tuple[int, int] | None = None,
    ground: Ground | None = None,
    extra: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Observations (JSON-ready dicts) for the detections of one frame.

    Parameters
    ----------
    detections : boxes in frame pixels.
    camera : the camera that took the frame.
    frame_index : frame number, kept in ``attributes.frame``.
    time : when the frame was taken (UTC; default now).
    frame_size : (width, height) px of the frame when it differs from the calibrated image size.
    ground : surfaces to land rays on (default flat ground at the camera's ground height).
    extra : more attributes for each detection, in the same order (e.g. a plate read by
        `twin.live.enrich.CropEnricher`).

    Detections whose foot point does not reach the ground within range are left out.
    """
    if not detections:
        return []
    when = (time or datetime.now(UTC)).astimezone(UTC).isoformat()
    feet = np.array([d.foot for d in detections], float)
    u, v = feet[:, 0], feet[:, 1]
    if frame_size is not None and frame_size != (camera.image_width, camera.image_height):
        u, v = camera.scale_pixels(u, v, *frame_size)
    rays = (ground or Ground.flat()).locate(camera, u, v)
    observations = []
    for i, det in enumerate(detections):
        ray = rays[i]
        if ray is None:
            continue
        attributes: dict[str, Any] = {
            "bbox": [round(c, 1) for c in det.bbox],
            "frame": frame_index,
            "u": round(float(u[i]), 2),
            "v": round(float(v[i]), 2),
            "uncertainty_m": round(ray.uncertainty_m, 2),
        }
        if frame_size is not None:
            attributes["frame_size"] = list(frame_size)  # the pixels `bbox` is in (w, h)
        if ray.element_id:
            attributes["on"] = ray.element_id
        if extra is not None:
            attributes.update(extra[i])
        observations.append(
            {
                "kind": det.kind,
                "cls": det.cls,
                "confidence": round(det.confidence, 4),
                "source": camera.id,
                "track_id": None if det.track_id is None else str(det.track_id),
                "lon": ray.lon,
                "lat": ray.lat,
                "height": ray.height,
                "time": when,
                "attributes": attributes,
            }
        )
    return observations
