"""Evidence crops from the frame store: when an alert is raised, the part of an observation's
source camera frame that holds the observed box, taken from the frame the camera pushed closest
in time to the observation (at most `FRESH_S` away). The image work and the choice of
observation are `scenes.crops`; the crops are stored with the alert by the live store."""

from __future__ import annotations

import threading
from urllib.parse import quote

from scenes.crops import crop_jpeg, observation_box, observation_frame_size
from scenes.models import Observation
from server.frames import FrameStore
from twin.cameras.camera import Camera
from twin.catalog import Catalog
from twin.errors import TwinError

FRESH_S = 10.0
"""Largest gap (s) between a frame's arrival and the observation's time for that frame to be
taken to show what the detector saw."""


class FrameCrops:
    """A `scenes.crops.CropSource` over a server's frame store and catalog cameras."""

    def __init__(self, frames: FrameStore, catalog: Catalog, fresh_s: float = FRESH_S) -> None:
        self.frames, self.catalog, self.fresh_s = frames, catalog, fresh_s
        self._sizes: dict[str, tuple[int, int] | None] = {}
        self._lock = threading.Lock()

    def crop(self, obs: Observation) -> bytes | None:
        """JPEG of `obs`'s ``attributes.bbox`` in the frame its source pushed closest to
        ``obs.time`` (at most `fresh_s` away); the box is in pixels of ``attributes.frame_size``
        (width, height), else of the camera's calibrated image size, else of the stored frame."""
        box = observation_box(obs)
        if box is None:
            return None
        frame = self.frames.nearest(obs.source, obs.time, self.fresh_s)
        if frame is None:
            return None
        size = observation_frame_size(obs) or self._camera_size(obs.source)
        return crop_jpeg(frame.data, box, size)

    def url(self, alert_id: str) -> str:
        """``/api/alerts/{id}/crop.jpg``."""
        return f"/api/alerts/{quote(alert_id, safe='')}/crop.jpg"

    def _camera_size(self, camera_id: str) -> tuple[int, int] | None:
        """The catalog camera's image (width, height) px; None for a sensor or a bad record."""
        with self._lock:
            if camera_id in self._sizes:
                return self._sizes[camera_id]
        size = None
        element = self.catalog.get(camera_id)
        if element is not None and element.kind == "camera":
            try:
                camera = Camera.from_element(element)
                size = (camera.image_width, camera.image_height)
            except TwinError:
                size = None
        with self._lock:
            self._sizes[camera_id] = size
        return size
