"""Where an alert goes: the unit whose jurisdiction holds the place (optionally only units of
one service, e.g. ``traffic``), the nearest other units, and the element it happened at.

A jurisdiction's service is its ``service`` attribute (a column of the jurisdictions layer).
Distances are metres on a local equirectangular approximation around the place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Point

from scenes.models import NearbyUnit
from twin.catalog import Catalog, Element
from twin.geo import metres_per_degree

_ORIGIN = Point(0.0, 0.0)


@dataclass(frozen=True)
class Route:
    """The jurisdiction holding a place and the unit responsible for it (None when outside),
    plus other units near it, nearest first."""

    jurisdiction_id: str | None
    unit: str | None
    nearby: list[NearbyUnit] = field(default_factory=list)


def _unit(el: Element) -> str | None:
    value = el.unit or el.attributes.get("unit")
    return str(value) if value else None


def route(catalog: Catalog, lon: float, lat: float) -> Route:
    """Route lon/lat (deg) to the smallest jurisdiction polygon that contains it."""
    found = catalog.containing(lon, lat, "jurisdiction")
    if not found:
        return Route(None, None)
    return Route(found[0].id, _unit(found[0]))


class Router:
    """Routing over the catalog's jurisdictions (read once)."""

    def __init__(self, catalog: Catalog, nearby_units: int = 3) -> None:
        self.jurisdictions = [el for el in catalog.all("jurisdiction")
                              if el.geometry.geom_type in ("Polygon", "MultiPolygon")]  # fmt: skip
        self.nearby_units = nearby_units

    def route(self, lon: float, lat: float, service: str | None = None) -> Route:
        """The smallest jurisdiction holding lon/lat (deg) — among those whose ``service`` is
        `service` when one holds it, else among all — and the nearest units other than it."""
        origin = np.array([lon, lat])
        scale = np.array(metres_per_degree(lat))
        ranked = []
        for el in self.jurisdictions:
            local = shapely.transform(el.geometry, lambda xy: (xy - origin) * scale)
            ranked.append((float(local.distance(_ORIGIN)), float(local.area), el))
        holding = sorted((r for r in ranked if r[0] == 0.0), key=lambda r: r[1])
        if service is not None:
            serving = [r for r in holding if r[2].attributes.get("service") == service]
            holding = serving or holding
        chosen = holding[0][2] if holding else None
        unit = _unit(chosen) if chosen is not None else None
        others = sorted((r for r in ranked if r[2] is not chosen and _unit(r[2]) != unit),
                        key=lambda r: (r[0], r[1]))  # fmt: skip
        nearby: list[NearbyUnit] = []
        seen: set[str | None] = set()
        for dist, _, el in others:
            if _unit(el) in seen:
                continue
            seen.add(_unit(el))
            nearby.append(
                NearbyUnit(jurisdiction_id=el.id, unit=_unit(el), distance_m=round(dist, 1))
            )
            if len(nearby) == self.nearby_units:
                break
        return Route(chosen.id if chosen else None, unit, nearby)


def element_at(catalog: Catalog, lon: float, lat: float) -> str | None:
    """Id of the building or road a click at lon/lat would pick (None for open ground)."""
    el = catalog.pick(lon, lat)
    if el is None or el.kind == "jurisdiction":
        return None
    return el.id
