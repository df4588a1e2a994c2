"""Scenario rules as data: strict models (an unknown key is a `RuleError` that names it) and the
plugin registry of rule types.

Every rule has the common fields of `RuleSpec` (what it matches, where, when, how often it may
alert); its ``type`` picks a registered subclass that adds its own fields and says how it is
evaluated. Built-in types (`scenes.ruletypes`): ``zone``, ``match``, ``count``, ``dwell``,
``speed``, ``threshold``, ``watchlist``. A plugin adds one with::

    @register_rule_type("speeding")
    class Speeding(RuleSpec):
        limit_kmh: float = Field(gt=0)

        def start(self, ctx: RuleContext) -> Evaluator:
            return SpeedingEvaluator(self)

Rule files are read and validated by `scenes.rulefile`; see docs/scenarios.md for the format.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scenes.errors import RuleError
from scenes.models import Observation, ObservationKind

if TYPE_CHECKING:
    from scenes.evaluate import Evaluator, RuleContext

Scalar = str | int | float | bool | None
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Strict):
    """Catalog elements of one kind whose attributes equal the given values."""

    kind: str = Field(min_length=1, title="Element kind (site, road, building, ...)")
    attributes: dict[str, Scalar] = Field(default_factory=dict, title="Attribute equalities")


class Zone(_Strict):
    """Where a rule applies: catalog elements (by id or by selection) or an inline polygon,
    optionally grown by `buffer_m` metres (points and lines need it: a gate, a road)."""

    element: str | None = Field(default=None, title="Catalog element id")
    elements: list[str] | None = Field(default=None, title="Catalog element ids")
    select: Selector | None = Field(default=None, title="Catalog elements selected by attributes")
    polygon: list[tuple[float, float]] | None = Field(
        default=None, min_length=3, title="Ring of [x, y] vertices in `crs` (lon, lat by default)"
    )
    crs: str = Field(default="EPSG:4326", title="CRS of `polygon` (any CRS pyproj knows)")
    buffer_m: float = Field(default=0.0, ge=0, le=5000, title="Grow each area by metres")

    @model_validator(mode="after")
    def _exactly_one(self) -> Zone:
        given = [self.element, self.elements, self.select, self.polygon]
        if sum(part is not None for part in given) != 1:
            raise ValueError("give exactly one of 'element', 'elements', 'select' or 'polygon'")
        return self


class TimeWindow(_Strict):
    """Local clock times (and days) when a rule may alert; `end` before `start` spans midnight."""

    start: time = Field(title="Local start time, HH:MM")
    end: time = Field(title="Local end time, HH:MM (exclusive)")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = Field(
        default=None, title="Days of the week (of the start time); all when absent"
    )
    tz: str = Field(default="Asia/Shanghai", title="IANA time zone of the clock times")

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}'") from exc
        return value

    def contains(self, when: datetime) -> bool:
        """Whether the aware datetime `when` falls inside the window."""
        local = when.astimezone(ZoneInfo(self.tz))
        clock = local.time().replace(tzinfo=None)
        weekday = local.weekday()
        if self.start <= self.end:
            inside = self.start <= clock < self.end
        elif clock >= self.start:
            inside = True
        else:
            inside = clock < self.end
            weekday = (weekday - 1) % 7  # the window opened the day before
        return inside and (self.days is None or DAYS[weekday] in self.days)


class RuleSpec(_Strict):
    """Fields every rule has. Subclasses registered with `register_rule_type` add theirs."""

    type_name: ClassVar[str] = ""
    zone_required: ClassVar[bool] = False

    id: str = Field(min_length=1, max_length=128, title="Stable rule id")
    title: str = Field(min_length=1, title="Alert title shown to operators")
    type: str = Field(title="Rule type (a registered name)")
    kinds: list[ObservationKind] | None = Field(default=None, title="Observation kinds matched")
    classes: list[str] | None = Field(default=None, title="Detector classes matched")
    attributes: dict[str, Scalar | list[Scalar]] | None = Field(
        default=None, title="Observation attributes that must equal (or be one of) these"
    )
    zone: Zone | None = Field(default=None, title="Where it applies (everywhere when absent)")
    when: TimeWindow | None = Field(default=None, title="When it may alert (always if absent)")
    route_to: str | None = Field(
        default=None, title="Service of the unit to route to (jurisdiction attribute 'service')"
    )
    severity: Literal["info", "warning", "critical"] = Field(default="warning", title="Severity")
    cooldown_s: float = Field(
        default=60.0, ge=0, le=86_400, title="Seconds before the same key can alert again"
    )
    incident_s: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        title="Seconds after an open incident was last seen in which a repeat (same rule, same "
        "area of the zone, else same entity) joins it instead of raising a new alert (0: never)",
    )

    @model_validator(mode="after")
    def _zone_if_required(self) -> RuleSpec:
        if self.zone_required and self.zone is None:
            raise ValueError(f"a '{self.type}' rule needs a 'zone'")
        return self

    def matches(self, obs: Observation) -> bool:
        """Kind, class and attribute filters (not zone or time)."""
        if self.kinds is not None and obs.kind not in self.kinds:
            return False
        if self.classes is not None and obs.cls not in self.classes:
            return False
        for key, wanted in (self.attributes or {}).items():
            value = obs.attributes.get(key)
            options = wanted if isinstance(wanted, list) else [wanted]
            if not any(_same(value, option) for option in options):
                return False
        return True

    def start(self, ctx: RuleContext) -> Evaluator:
        """A fresh evaluator holding this rule's streaming state."""
        raise NotImplementedError


def _same(value: Any, wanted: Scalar) -> bool:
    """Equality that keeps booleans apart from numbers (``False`` is not ``0``)."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return isinstance(value, bool) and isinstance(wanted, bool) and value is wanted
    return bool(value == wanted)


RULE_TYPES: dict[str, type[RuleSpec]] = {}
_R = TypeVar("_R", bound=type[RuleSpec])


def register_rule_type(name: str) -> Callable[[_R], _R]:
    """Class decorator: make a `RuleSpec` subclass available as ``type: name`` in rule files."""

    def register(cls: _R) -> _R:
        if name in RULE_TYPES and RULE_TYPES[name] is not cls:
            raise RuleError(f"rule type '{name}' is already registered")
        cls.type_name = name
        RULE_TYPES[name] = cls
        return cls

    return register


class RuleSet(_Strict):
    """A list of validated rules with unique ids."""

    rules: list[RuleSpec] = Field(default_factory=list)
