"""Dispatch: which unit an alert at a place goes to, and which element it happened at."""

from __future__ import annotations

from dataclasses import dataclass

from twin.catalog import Catalog


@dataclass(frozen=True)
class Route:
    """The jurisdiction holding a place and the unit responsible for it (None when outside)."""

    jurisdiction_id: str | None
    unit: str | None


def route(catalog: Catalog, lon: float, lat: float) -> Route:
    """Route lon/lat (deg) to the smallest jurisdiction polygon that contains it."""
    found = catalog.containing(lon, lat, "jurisdiction")
    if not found:
        return Route(None, None)
    smallest = found[0]
    return Route(smallest.id, smallest.unit or smallest.attributes.get("unit"))


def element_at(catalog: Catalog, lon: float, lat: float) -> str | None:
    """Id of the building or road a click at lon/lat would pick (None for open ground)."""
    el = catalog.pick(lon, lat)
    if el is None or el.kind == "jurisdiction":
        return None
    return el.id
