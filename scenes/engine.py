"""Rule evaluation: observations in, alerts out, one observation at a time (incremental).

Zones are prepared shapely polygons in lon/lat degrees. A rule alerts at most once per entity
(source + track) within its ``cooldown_s``, measured on observation times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from scenes.errors import RuleError
from scenes.models import Alert, Observation
from scenes.routing import element_at, route
from scenes.rules import RuleSet, Zone, ZoneRule
from twin.catalog import Catalog
from twin.geo import WGS84


@dataclass
class _CompiledRule:
    rule: ZoneRule
    area: BaseGeometry  # prepared polygon, lon/lat deg
    element_id: str | None

    def matches(self, obs: Observation) -> bool:
        if self.rule.kinds is not None and obs.kind not in self.rule.kinds:
            return False
        if self.rule.classes is not None and obs.cls not in self.rule.classes:
            return False
        return bool(shapely.contains_xy(self.area, obs.lon, obs.lat))


def _zone_geometry(rule: ZoneRule, catalog: Catalog) -> tuple[BaseGeometry, str | None]:
    zone: Zone = rule.zone
    if zone.element is not None:
        el = catalog.get(zone.element)
        if el is None:
            raise RuleError(
                f"rule '{rule.id}': zone element '{zone.element}' is not in the catalog"
            )
        if el.geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise RuleError(
                f"rule '{rule.id}': zone element '{zone.element}' is a {el.geometry.geom_type},"
                " not a polygon"
            )
        return el.geometry, el.id
    assert zone.polygon is not None
    try:
        crs = CRS.from_user_input(zone.crs)
    except CRSError as exc:
        raise RuleError(f"rule '{rule.id}': zone.crs '{zone.crs}' is not a known CRS") from exc
    ring = list(zone.polygon)
    if not crs.equals(WGS84):
        to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
        ring = [to_wgs84.transform(x, y) for x, y in ring]
    polygon = Polygon(ring)
    if not polygon.is_valid or polygon.area == 0:
        raise RuleError(f"rule '{rule.id}': zone.polygon is not a valid polygon")
    return polygon, None


class Engine:
    """Evaluates a rule set over observations. Not thread-safe: call from one thread at a time."""

    def __init__(self, rules: RuleSet, catalog: Catalog) -> None:
        self.catalog = catalog
        self._rules: list[_CompiledRule] = []
        for rule in rules.rules:
            area, element_id = _zone_geometry(rule, catalog)
            shapely.prepare(area)
            self._rules.append(_CompiledRule(rule, area, element_id))
        self._last: dict[tuple[str, str], datetime] = {}

    @property
    def rules(self) -> list[ZoneRule]:
        return [compiled.rule for compiled in self._rules]

    def seed(self, alerts: Iterable[Alert]) -> None:
        """Remember earlier alerts (e.g. from the store after a restart) for the cooldowns."""
        for alert in alerts:
            if alert.entity_id and alert.observed_at:
                key = (alert.rule, alert.entity_id)
                if key not in self._last or self._last[key] < alert.observed_at:
                    self._last[key] = alert.observed_at

    def process(self, observations: Iterable[Observation]) -> list[Alert]:
        """Evaluate every rule on each observation, in order; return the alerts raised."""
        alerts: list[Alert] = []
        for obs in observations:
            for compiled in self._rules:
                if compiled.matches(obs) and self._cooled_down(compiled.rule, obs):
                    alerts.append(self._raise(compiled, obs))
        return alerts

    def _cooled_down(self, rule: ZoneRule, obs: Observation) -> bool:
        key = (rule.id, obs.entity_id)
        last = self._last.get(key)
        if last is not None and abs((obs.time - last).total_seconds()) < rule.cooldown_s:
            return False
        self._last[key] = obs.time
        return True

    def _raise(self, compiled: _CompiledRule, obs: Observation) -> Alert:
        where = route(self.catalog, obs.lon, obs.lat)
        element_id = compiled.element_id or element_at(self.catalog, obs.lon, obs.lat)
        return Alert(
            id=uuid.uuid4().hex,
            rule=compiled.rule.id,
            title=compiled.rule.title,
            severity=compiled.rule.severity,
            lon=obs.lon,
            lat=obs.lat,
            height=obs.height,
            element_id=element_id,
            jurisdiction_id=where.jurisdiction_id,
            unit=where.unit,
            observation_ids=[obs.id] if obs.id else [],
            entity_id=obs.entity_id,
            observed_at=obs.time,
        )
