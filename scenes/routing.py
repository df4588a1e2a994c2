"""Where an alert goes: the unit whose jurisdiction holds the place (optionally only units of
one service, e.g. ``traffic``), the nearest other units, and the element it happened at.

A jurisdiction's service is its ``service`` attribute (a column of the jurisdictions layer).
Distances are metres on a local equirectangular approximation around the place.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.strtree import STRtree

from scenes.models import NearbyUnit
from twin.catalog import PICK_ORDER, Catalog, Element
from twin.geo import metres_per_degree

_ORIGIN = Point(0.0, 0.0)
_CACHE = 4096  # places remembered by Router and Picker (most recently used)


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


class _Recent(OrderedDict[tuple[object, ...], object]):
    """A bounded most-recently-used map."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: tuple[object, ...], value: object) -> None:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


class Router:
    """Routing over the catalog's jurisdictions (read once; the catalog is fixed while a
    workspace is served). The last few thousand places routed are remembered."""

    def __init__(self, catalog: Catalog, nearby_units: int = 3) -> None:
        self.jurisdictions = [el for el in catalog.all("jurisdiction")
                              if el.geometry.geom_type in ("Polygon", "MultiPolygon")]  # fmt: skip
        self.nearby_units = nearby_units
        self._recent = _Recent(_CACHE)

    def route(self, lon: float, lat: float, service: str | None = None) -> Route:
        """The smallest jurisdiction holding lon/lat (deg) — among those whose ``service`` is
        `service` when one holds it, else among all — and the nearest units other than it."""
        key = (lon, lat, service)
        found = self._recent.get(key)
        if found is None:
            found = self._route(lon, lat, service)
            self._recent.remember(key, found)
        else:
            self._recent.move_to_end(key)
        assert isinstance(found, Route)
        return Route(found.jurisdiction_id, found.unit, list(found.nearby))

    def _route(self, lon: float, lat: float, service: str | None) -> Route:
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


class Picker:
    """`element_at` from memory: the catalog's elements read once into an STRtree, with the
    same choice as `Catalog.pick` (a building under the point, then the nearest camera, sensor,
    site, road or water within `radius_m` metres, else nothing). The catalog is fixed while a
    workspace is served; the last few thousand places asked are remembered."""

    def __init__(self, catalog: Catalog, radius_m: float = 15.0) -> None:
        self.radius_m = radius_m
        self.elements = list(catalog.all())
        self._tree = STRtree([el.geometry for el in self.elements])
        self._rank = {kind: i for i, kind in enumerate(PICK_ORDER)}
        self._recent = _Recent(_CACHE)

    def element_at(self, lon: float, lat: float) -> str | None:
        """Id of the element a click at lon/lat (deg) would pick; None for open ground or a
        jurisdiction only."""
        key = (lon, lat)
        if key in self._recent:
            self._recent.move_to_end(key)
            found = self._recent[key]
            return found if isinstance(found, str) else None
        el = self._pick(lon, lat)
        element_id = None if el is None or el.kind == "jurisdiction" else el.id
        self._recent.remember(key, element_id)
        return element_id

    def _pick(self, lon: float, lat: float) -> Element | None:
        mx, my = metres_per_degree(lat)
        dlon, dlat = self.radius_m / mx, self.radius_m / my
        box = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        origin, scale = np.array([lon, lat]), np.array([mx, my])
        found: list[tuple[float, int]] = []
        for i in sorted(int(i) for i in self._tree.query(box)):
            local = shapely.transform(self.elements[i].geometry, lambda xy: (xy - origin) * scale)
            dist = float(local.distance(_ORIGIN))
            if dist <= self.radius_m:
                found.append((dist, i))
        if not found:
            return None
        found.sort()
        candidates = [(self.elements[i], dist) for dist, i in found]
        inside = [(el, d) for el, d in candidates if d == 0.0 and el.geometry.geom_type != "Point"]
        pool = [c for c in inside if c[0].kind != "jurisdiction"] or candidates
        pool.sort(key=lambda pair: (self._rank.get(pair[0].kind, 99), pair[1]))
        return pool[0][0]
