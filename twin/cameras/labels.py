"""AR labels: the catalog elements a camera sees, at their pixel positions, occlusion-aware.

Each element has an anchor point: the roof centre of a building (representative point at
``base_height + height``), the mount point of a camera or sensor, the representative point on
the ground of a road or site. A building counts as visible when the rays of a pixel grid hit
it first (so a building partly hidden behind another is still labelled, on a part that shows);
every other element when the ray to its anchor reaches it. Visible labels come first, nearest
first, up to a limit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from twin.cameras.camera import Camera
from twin.cameras.world import World
from twin.catalog import Element

LABEL_KINDS = ("building", "road", "site", "sensor", "camera")
DEFAULT_LIMIT = 150
GRID_CELLS_ACROSS = 160
"""Pixel grid for building visibility: this many rays across the image width."""


def anchor(el: Element) -> tuple[float, float, float]:
    """Where an element's label points: lon, lat (deg), ellipsoidal height (m)."""
    return el.lon, el.lat, el.base_height + el.height


def labels(
    camera: Camera,
    world: World,
    elements: Sequence[Element],
    *,
    limit: int = DEFAULT_LIMIT,
    host: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Labels ``{element_id, name, kind, u, v, visible, distance_m}`` (px of the calibrated
    image, m) of `elements` in `camera`'s view; hidden ones keep their projected pixel. The
    `host` buildings (the camera is mounted on them) are neither labelled nor obstacles."""
    skip = {camera.id, *host}
    els = [el for el in elements if el.id not in skip and el.kind in LABEL_KINDS]
    if not els:
        return []
    lon, lat, height = np.array([anchor(el) for el in els], float).T
    own = [el.id if el.kind == "building" else None for el in els]
    proj = world.project(camera, lon, lat, height, element_ids=own, skip=host)
    step = max(4.0, camera.image_width / GRID_CELLS_ACROSS)
    seen = world.element_pixels(camera, step, skip=host)
    items: list[dict[str, Any]] = []
    for i, el in enumerate(els):
        pixels = seen.get(el.id)
        u, v, visible = float(proj.u[i]), float(proj.v[i]), bool(proj.visible[i])
        if pixels is not None and len(pixels):
            if not visible:  # the anchor is hidden or outside: label the part that shows
                centre = pixels.mean(axis=0)
                u, v = (float(c) for c in pixels[np.argmin(((pixels - centre) ** 2).sum(axis=1))])
            visible = True
        elif not proj.in_view[i]:
            continue
        items.append(
            {
                "element_id": el.id, "name": el.name, "kind": el.kind, "u": round(u, 2),
                "v": round(v, 2), "visible": visible,
                "distance_m": round(float(proj.distance[i]), 2),
            }
        )  # fmt: skip
    items.sort(key=lambda item: (not item["visible"], item["distance_m"]))
    return items[:limit]
