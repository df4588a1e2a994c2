"""The built-in rule types: zone (presence/intrusion), count (crowd), dwell (loitering), speed
(too fast or stopped), threshold (sensor reading with hysteresis), watchlist (identifier on a
list) and match.

Times are observation times (UTC); counts are of distinct entities (source + track).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, model_validator

from scenes.evaluate import Area, BoundedMap, Evaluator, RuleContext, Trigger
from scenes.identifiers import WATCHLISTS
from scenes.models import Observation
from scenes.rules import RuleSpec, register_rule_type
from twin.geo import metres_per_degree

MAX_TRACKS = 100_000


@register_rule_type("zone")
class ZoneRule(RuleSpec):
    """A matching observation inside the zone (e.g. intrusion into a closed area)."""

    zone_required = True

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Presence()


class _Presence:
    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        return [Trigger(obs, areas[0], observation_ids=[obs.id or ""])] if areas else []


@register_rule_type("count")
class CountRule(RuleSpec):
    """At least `min_count` distinct tracks in one area of the zone, sustained `for_s` seconds
    (a crowd). A track counts while its latest observation, at most `window_s` old, is inside.
    Alerts once per episode; the count must drop below `min_count` to re-arm."""

    zone_required = True
    min_count: int = Field(ge=2, le=100_000, title="Distinct tracks needed")
    window_s: float = Field(default=10.0, gt=0, le=3600, title="How long a sighting counts, s")
    for_s: float = Field(default=0.0, ge=0, le=86_400, title="How long the count must hold, s")

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Crowd(self)


@dataclass
class _Sighting:
    time: datetime
    obs_id: str
    lon: float
    lat: float


_pushes = itertools.count()  # heap tie-break: sightings never compare


@dataclass
class _AreaState:
    """The tracks counted in one area: each one's latest sighting, and a heap of sightings to
    expire them oldest first in O(log n) (entries superseded by a newer sighting of their
    track are skipped as they surface)."""

    tracks: dict[str, _Sighting] = field(default_factory=dict)
    expiry: list[tuple[datetime, int, str, _Sighting]] = field(default_factory=list)
    since: datetime | None = None
    fired: bool = False

    def put(self, entity: str, sighting: _Sighting) -> None:
        self.tracks[entity] = sighting
        heapq.heappush(self.expiry, (sighting.time, next(_pushes), entity, sighting))

    def expire(self, before: datetime) -> None:
        """Drop the tracks whose latest sighting is older than `before`."""
        while self.expiry and self.expiry[0][0] < before:
            _, _, entity, sighting = heapq.heappop(self.expiry)
            if self.tracks.get(entity) is sighting:
                del self.tracks[entity]


class _Crowd:
    def __init__(self, rule: CountRule) -> None:
        self.rule = rule
        self.areas: dict[str, _AreaState] = {}
        self.where: BoundedMap[str, frozenset[str]] = BoundedMap(rule.window_s, MAX_TRACKS)

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        entity = obs.entity_id
        now_in = {area.key for area in areas}
        was_in = self.where.get(entity)
        if was_in is None:  # never seen, or its entry expired before the areas' own (out of order)
            was_in = frozenset(key for key, state in self.areas.items() if entity in state.tracks)
        for key in was_in - now_in:
            state = self.areas.get(key)
            if state is not None:
                state.tracks.pop(entity, None)
        self.where.set(entity, frozenset(now_in), obs.time)
        triggers = []
        for area in areas:
            state = self.areas.setdefault(area.key, _AreaState())
            state.put(entity, _Sighting(obs.time, obs.id or "", obs.lon, obs.lat))
            trigger = self._check(state, area, obs)
            if trigger is not None:
                triggers.append(trigger)
        return triggers

    def _check(self, state: _AreaState, area: Area, obs: Observation) -> Trigger | None:
        rule = self.rule
        state.expire(obs.time - timedelta(seconds=rule.window_s))
        fresh = state.tracks
        if len(fresh) < rule.min_count:
            state.since, state.fired = None, False
            return None
        state.since = state.since or obs.time
        held = (obs.time - state.since).total_seconds()
        if state.fired or held < rule.for_s:
            return None
        state.fired = True
        sightings = sorted(fresh.values(), key=lambda s: s.time, reverse=True)
        return Trigger(
            obs, area, key=f"area:{area.key}",
            observation_ids=[s.obs_id for s in sightings[:50]],
            lon=sum(s.lon for s in sightings) / len(sightings),
            lat=sum(s.lat for s in sightings) / len(sightings),
            details={"count": len(fresh), "held_s": round(held, 3)},
        )  # fmt: skip


@register_rule_type("dwell")
class DwellRule(RuleSpec):
    """One track staying in the zone at least `dwell_s` seconds (loitering). A gap of more
    than `gap_s` between its sightings, or a sighting outside, restarts the clock."""

    zone_required = True
    dwell_s: float = Field(gt=0, le=86_400, title="Seconds inside before alerting")
    gap_s: float = Field(default=30.0, gt=0, le=3600, title="Longest gap between sightings, s")

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Dwell(self)


@dataclass
class _Stay:
    area: str
    since: datetime
    last: datetime
    first_id: str
    fired: bool = False


class _Dwell:
    def __init__(self, rule: DwellRule) -> None:
        self.rule = rule
        self.stays: BoundedMap[str, _Stay] = BoundedMap(rule.gap_s, MAX_TRACKS)

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        entity = obs.entity_id
        if not areas:
            self.stays.pop(entity)
            return []
        area = areas[0]
        stay = self.stays.get(entity)
        if (
            stay is None
            or stay.area != area.key
            or (obs.time - stay.last).total_seconds() > self.rule.gap_s
        ):
            stay = _Stay(area.key, obs.time, obs.time, obs.id or "")
        stay.last = max(stay.last, obs.time)
        self.stays.set(entity, stay, obs.time)
        stayed = (obs.time - stay.since).total_seconds()
        if stay.fired or stayed < self.rule.dwell_s:
            return []
        stay.fired = True
        ids = [stay.first_id, obs.id or ""] if stay.first_id != obs.id else [obs.id or ""]
        return [Trigger(obs, area, observation_ids=ids, details={"dwell_s": round(stayed, 3)})]


@register_rule_type("speed")
class SpeedRule(RuleSpec):
    """A track faster than `above_kmh` (speeding) or slower than `below_kmh` (a vehicle stopped
    where it must not) for at least `for_s` seconds, inside the zone (or anywhere). The speed is
    the tracker's ``attributes.speed_mps`` when given, else the distance from the track's
    previous sighting over the time between them (sightings closer than `min_interval_s` are
    not used). Alerts once per episode; the speed must come back inside the band to re-arm."""

    above_kmh: float | None = Field(default=None, gt=0, le=1000, title="Alert above, km/h")
    below_kmh: float | None = Field(default=None, ge=0, le=1000, title="Alert below, km/h")
    for_s: float = Field(default=0.0, ge=0, le=86_400, title="How long it must last, s")
    min_interval_s: float = Field(default=0.5, gt=0, le=600, title="Shortest usable gap, s")
    stale_s: float = Field(default=30.0, gt=0, le=3600, title="Forget a silent track after, s")

    @model_validator(mode="after")
    def _one_limit(self) -> SpeedRule:
        if (self.above_kmh is None) == (self.below_kmh is None):
            raise ValueError("a speed rule needs exactly one of 'above_kmh' and 'below_kmh'")
        return self

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Speed(self)


@dataclass
class _Pace:
    time: datetime  # the sighting the next speed is measured from
    lon: float
    lat: float
    since: datetime | None = None  # start of the current out-of-band episode
    first_id: str = ""
    fired: bool = False


class _Speed:
    def __init__(self, rule: SpeedRule) -> None:
        self.rule = rule
        self.tracks: BoundedMap[str, _Pace] = BoundedMap(rule.stale_s, MAX_TRACKS)

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        entity, rule = obs.entity_id, self.rule
        pace = self.tracks.get(entity)
        kmh, source = self._speed(obs, pace)
        if pace is None:
            pace = _Pace(obs.time, obs.lon, obs.lat)
        elif kmh is not None:  # a measured step: the next one is measured from here
            pace.time, pace.lon, pace.lat = obs.time, obs.lon, obs.lat
        self.tracks.set(entity, pace, obs.time)
        if kmh is None:
            return []
        if rule.above_kmh is not None:
            outside = kmh > rule.above_kmh
        else:
            outside = kmh < (rule.below_kmh or 0.0)
        if not outside or not areas:
            pace.since, pace.first_id, pace.fired = None, "", False
            return []
        if pace.since is None:
            pace.since, pace.first_id = obs.time, obs.id or ""
        lasted = (obs.time - pace.since).total_seconds()
        if pace.fired or lasted < rule.for_s:
            return []
        pace.fired = True
        limit = rule.above_kmh if rule.above_kmh is not None else rule.below_kmh
        details = {"speed_kmh": round(kmh, 1), "limit_kmh": limit, "source": source,
                   "direction": "above" if rule.above_kmh is not None else "below",
                   "lasted_s": round(lasted, 3)}  # fmt: skip
        ids = list(dict.fromkeys([pace.first_id, obs.id or ""]))
        return [Trigger(obs, areas[0], observation_ids=ids, details=details)]

    def _speed(self, obs: Observation, last: _Pace | None) -> tuple[float | None, str]:
        """(km/h, where it came from) of `obs`, or (None, "") when it cannot be told yet."""
        reported = _number(obs.attributes.get("speed_mps"))
        if reported is not None and reported >= 0:
            return reported * 3.6, "tracker"
        if last is None:
            return None, ""
        dt = (obs.time - last.time).total_seconds()
        if dt < self.rule.min_interval_s:
            return None, ""
        east, north = metres_per_degree((obs.lat + last.lat) / 2)
        metres = math.hypot((obs.lon - last.lon) * east, (obs.lat - last.lat) * north)
        return metres / dt * 3.6, "positions"


@register_rule_type("threshold")
class ThresholdRule(RuleSpec):
    """A sensor reading past its limit. The reading is ``attributes[attribute]`` (default: the
    attribute named like the observation's class, e.g. ``pm25``). The limit is `limit`, else
    the source element's ``limit`` attribute, else ``limits[attribute]``. After alerting, the
    source re-arms only once the reading is back on the safe side by the hysteresis."""

    attribute: str | None = Field(default=None, title="Attribute holding the reading")
    limit: float | None = Field(default=None, title="Limit, in the reading's unit")
    limits: dict[str, float] = Field(default_factory=dict, title="Limit per attribute")
    direction: Literal["above", "below"] = Field(default="above", title="Alert above or below")
    hysteresis: float = Field(default=0.0, ge=0, title="Re-arm margin, reading's unit")
    hysteresis_fraction: float = Field(default=0.0, ge=0, le=1, title="Re-arm margin × limit")
    stale_s: float = Field(default=3600.0, gt=0, title="Forget a silent source after, s")

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Threshold(self, ctx)


class _Threshold:
    def __init__(self, rule: ThresholdRule, ctx: RuleContext) -> None:
        self.rule, self.ctx = rule, ctx
        self.raised: BoundedMap[str, bool] = BoundedMap(rule.stale_s, MAX_TRACKS)
        self._element_limits: dict[str, float | None] = {}

    def _limit(self, obs: Observation, attribute: str) -> float | None:
        if self.rule.limit is not None:
            return self.rule.limit
        if obs.source not in self._element_limits:
            el = self.ctx.catalog.get(obs.source)
            value = el.attributes.get("limit") if el is not None else None
            self._element_limits[obs.source] = _number(value)
        found = self._element_limits[obs.source]
        return found if found is not None else self.rule.limits.get(attribute)

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        attribute = self.rule.attribute or obs.cls
        reading = _number(obs.attributes.get(attribute))
        limit = self._limit(obs, attribute) if reading is not None else None
        if not areas or reading is None or limit is None:
            return []
        rule = self.rule
        margin = max(rule.hysteresis, rule.hysteresis_fraction * abs(limit))
        sign = 1.0 if rule.direction == "above" else -1.0
        over = sign * (reading - limit) > 0
        entity = obs.entity_id
        if self.raised.get(entity):
            cleared = sign * (reading - (limit - sign * margin)) < 0
            self.raised.set(entity, not cleared, obs.time)
            return []
        self.raised.set(entity, over, obs.time)
        if not over:
            return []
        details = {"attribute": attribute, "reading": reading, "limit": limit,
                   "direction": rule.direction, "unit_of_measure": self._unit(obs)}  # fmt: skip
        return [Trigger(obs, areas[0], observation_ids=[obs.id or ""], details=details)]

    def _unit(self, obs: Observation) -> str | None:
        el = self.ctx.catalog.get(obs.source)
        value = el.attributes.get("unit_of_measure") if el is not None else None
        return str(value) if value is not None else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number == number else None


@register_rule_type("watchlist")
class WatchlistRule(RuleSpec):
    """An observation whose identifier (plate or identity token, as its keyed hash) is on a
    watchlist. Every such hit is also written to the watchlist audit log."""

    list: Literal["suspended-licences", "wanted-persons"] = Field(title="Watchlist name")

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Listed(self, ctx)


class _Listed:
    def __init__(self, rule: WatchlistRule, ctx: RuleContext) -> None:
        self.rule, self.ctx = rule, ctx
        self.attribute = WATCHLISTS[rule.list]

    def step(self, obs: Observation, areas: list[Area]) -> list[Trigger]:
        digest = obs.attributes.get(f"{self.attribute}_hash")
        if not areas or self.ctx.watchlists is None or not isinstance(digest, str):
            return []
        reason = self.ctx.watchlists.reason(self.rule.list, digest)
        if reason is None:
            return []
        details = {
            "watchlist": self.rule.list,
            "entry": digest,
            "masked": obs.attributes.get(f"{self.attribute}_masked"),
            "reason": reason,
        }
        return [Trigger(obs, areas[0], observation_ids=[obs.id or ""], details=details)]


@register_rule_type("match")
class MatchRule(RuleSpec):
    """A matching observation anywhere, or inside the zone when one is given (e.g. an
    uncovered muck truck: class truck with ``covered: false``)."""

    def start(self, ctx: RuleContext) -> Evaluator:
        return _Presence()
