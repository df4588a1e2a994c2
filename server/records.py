"""The one-click element record: the catalog element plus its jurisdiction, site, the cameras
that see it, recent events and live entities nearby. Composition only: each part is answered by
`twin` (catalog, cameras) or `scenes` (live service)."""

from __future__ import annotations

import logging
from typing import Any

from server.state import TwinState
from twin.catalog import Element

log = logging.getLogger("twin.server")


def _brief(el: Element | None, *extra: str) -> dict[str, Any] | None:
    if el is None:
        return None
    brief: dict[str, Any] = {"id": el.id, "name": el.name}
    for key in extra:
        brief[key] = getattr(el, key)
    return brief


def cameras_seeing(state: TwinState, el: Element) -> list[dict[str, Any]]:
    """Cameras (and live drones) whose image holds the element, with the pixel (u, v) and
    whether it is visible there or hidden behind a building (`CameraRig.cameras_seeing`)."""
    return state.cameras.cameras_seeing(el)


def element_record(state: TwinState, el: Element) -> dict[str, Any]:
    """Everything about `el` for the side panel and API clients."""
    settings = state.settings
    record = el.to_dict()
    jurisdiction = state.catalog.get(el.jurisdiction_id) if el.jurisdiction_id else None
    site = state.catalog.get(el.site_id) if el.site_id else None
    record["jurisdiction"] = _brief(jurisdiction, "unit")
    record["site"] = _brief(site)
    record["cameras"] = cameras_seeing(state, el)
    record["recent_events"] = state.live.recent_events(
        el.geometry, settings.nearby_radius_m, element_id=el.id, limit=settings.recent_events
    )
    record["nearby"] = [
        {**ent.model_dump(mode="json"), "distance_m": round(dist, 2)}
        for ent, dist in state.live.nearby(el.geometry, settings.nearby_radius_m)
    ]
    return record
