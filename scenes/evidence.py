"""Cameras that see a place, for an alert's evidence: every catalog camera's model (read once)
projects the place; the observation's own source camera is always listed first.

Heights are WGS84 ellipsoidal metres; occlusion by buildings is not checked.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from scenes.models import CameraView
from twin.cameras.camera import Camera
from twin.catalog import Catalog
from twin.errors import TwinError

log = logging.getLogger("twin.scenes")
# Heights above the observed point tried in turn: about mid-body, then the point itself (m).
_LIFTS = (1.0, 0.0)
# Places remembered (most recently used): alerts of a rule zone, a gate or a sensor repeat them.
_CACHE = 4096
Pixel = tuple[float, float] | None


class CameraIndex:
    """The catalog's cameras as projection models (read once: the catalog is fixed while a
    workspace is served). The projections of the last few thousand places are remembered."""

    def __init__(self, catalog: Catalog) -> None:
        self._recent: OrderedDict[tuple[float, float, float], list[tuple[str, str, Pixel]]] = (
            OrderedDict()
        )
        self.cameras: list[tuple[Camera, str]] = []
        for el in catalog.all("camera"):
            try:
                self.cameras.append((Camera.from_element(el), el.name or ""))
            except TwinError as exc:
                log.warning("camera %s left out of alert evidence: %s", el.id, exc)

    def seeing(
        self, lon: float, lat: float, height: float, source: str | None = None
    ) -> list[CameraView]:
        """Cameras whose image holds lon/lat (deg) at `height` (m) or 1 m above it, with the
        pixel; the camera `source` (when it is one) first, even if its model misses the place."""
        views: list[CameraView] = []
        for camera_id, name, pixel in self._projections(lon, lat, height):
            is_source = camera_id == source
            if pixel is not None or is_source:
                u, v = pixel if pixel is not None else (None, None)
                views.append(CameraView(id=camera_id, name=name, u=u, v=v, source=is_source))
        views.sort(key=lambda view: not view.source)
        return views

    def _projections(self, lon: float, lat: float, height: float) -> list[tuple[str, str, Pixel]]:
        """Each camera's pixel of the place (None when it misses it), remembered per place."""
        key = (lon, lat, height)
        found = self._recent.get(key)
        if found is not None:
            self._recent.move_to_end(key)
            return found
        found = []
        for camera, name in self.cameras:
            pixel = None
            for lift in _LIFTS:
                pixel = camera.project(lon, lat, height + lift)
                if pixel is not None:
                    break
            found.append((camera.id, name, pixel))
        self._recent[key] = found
        if len(self._recent) > _CACHE:
            self._recent.popitem(last=False)
        return found
