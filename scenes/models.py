"""Typed observations and alerts: validated at the boundary (HTTP, detector), trusted inside.

Positions are WGS84 lon/lat degrees and ellipsoidal height in metres; times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


class ObservationKind(StrEnum):
    person = "person"
    vehicle = "vehicle"
    object = "object"
    environment = "environment"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _text_time(value: Any) -> Any:
    """Refuse a number (or a number's text) where a time is expected: times are ISO 8601
    text (pydantic would read a number as Unix seconds, which the schema does not promise)."""
    number = isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    if number or isinstance(value, int | float):
        raise ValueError("a time is ISO 8601 text, e.g. '2026-05-01T08:00:00Z'")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_text_time)]
"""A datetime given as ISO 8601 text (or a datetime object), never as a number."""


class Observation(BaseModel):
    """One sighting or reading: what, where, when, from which source and track."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=64, title="Assigned by the server if absent")
    kind: ObservationKind
    cls: str = Field(default="", max_length=64, title="Detector class, e.g. 'car', 'person'")
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    source: str = Field(min_length=1, max_length=128, title="Camera or sensor element id")
    track_id: str | None = Field(default=None, max_length=64, title="Track id within the source")
    lon: float = Field(ge=-180.0, le=180.0)
    lat: float = Field(ge=-90.0, le=90.0)
    height: float = Field(default=0.0, ge=-1000.0, le=10000.0, title="Ellipsoidal height, m")
    time: IsoTime = Field(default_factory=utcnow, title="When it was seen (UTC)")
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A time without a zone is taken as UTC; every time is stored in UTC."""
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            raise ValueError("time out of range") from None

    @property
    def entity_id(self) -> str:
        """Stable id of the live entity this observation updates: source + track."""
        return f"{self.source}/{self.track_id or self.id}"


class AlertStatus(StrEnum):
    """Life cycle: new → acknowledged → dispatched → on_scene → resolved | false_alarm."""

    new = "new"
    acknowledged = "acknowledged"
    dispatched = "dispatched"
    on_scene = "on_scene"
    resolved = "resolved"
    false_alarm = "false_alarm"


CLOSED_STATUSES = frozenset({AlertStatus.resolved, AlertStatus.false_alarm})


class CameraView(BaseModel):
    """A camera whose image holds the alert's place, with the pixel (u, v) where it appears
    (None for the source camera when the place projects outside its model's image)."""

    id: str
    name: str = ""
    u: float | None = None
    v: float | None = None
    source: bool = Field(default=False, title="The camera that made the observation")


class Evidence(BaseModel):
    """What backs an alert: the observations, the place (lon/lat deg, ellipsoidal height m), the
    cameras that see it, rule-specific details (e.g. a count, a dwell time, a reading) and, when
    the source camera had a recent frame, a crop of the observed box."""

    observation_ids: list[str] = Field(default_factory=list)
    lon: float
    lat: float
    height: float = 0.0
    cameras: list[CameraView] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    crop: str | None = Field(
        default=None, title="URL of a JPEG of the observed box in the source camera's frame"
    )


class NearbyUnit(BaseModel):
    """Another unit near an alert: its jurisdiction and the distance from the place to it (m,
    0 when the jurisdiction also holds the place)."""

    jurisdiction_id: str
    unit: str | None
    distance_m: float


class Alert(BaseModel):
    """An alert raised by a rule, routed to the unit whose jurisdiction contains its position."""

    id: str
    rule: str = Field(title="Rule id that raised it")
    app: str | None = Field(default=None, title="Scenario app the rule belongs to")
    board: str | None = Field(default=None, title="Board of the app (basic, public-order, ...)")
    title: str
    severity: str = "warning"
    status: AlertStatus = AlertStatus.new
    lon: float
    lat: float
    height: float = 0.0
    element_id: str | None = Field(default=None, title="Zone or element where it happened")
    jurisdiction_id: str | None = None
    unit: str | None = Field(default=None, title="Unit it is routed to")
    observation_ids: list[str] = Field(default_factory=list)
    entity_id: str | None = None
    observed_at: datetime | None = Field(default=None, title="Time of the observation (UTC)")
    incident_key: str | None = Field(
        default=None, title="What the rule's repeats merge on: an area of its zone or an entity"
    )
    count: int = Field(default=1, ge=1, title="Times the rule fired for this incident")
    first_seen_at: datetime | None = Field(default=None, title="First observation (UTC)")
    last_seen_at: datetime | None = Field(default=None, title="Latest observation (UTC)")
    created_at: datetime = Field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    dispatched_at: datetime | None = None
    dispatched_by: str | None = None
    on_scene_at: datetime | None = None
    on_scene_by: str | None = None
    false_alarm_at: datetime | None = None
    false_alarm_by: str | None = None
    evidence: Evidence | None = None
    nearby_units: list[NearbyUnit] = Field(default_factory=list)

    @property
    def closed(self) -> bool:
        """Resolved or a false alarm: nothing more to do."""
        return self.status in CLOSED_STATUSES

    @property
    def closed_at(self) -> datetime | None:
        """When it was resolved or marked a false alarm (None while open)."""
        return self.resolved_at or self.false_alarm_at

    def response_s(self) -> float | None:
        """Seconds from dispatch to arrival on scene, when both happened."""
        if self.dispatched_at is None or self.on_scene_at is None:
            return None
        return (self.on_scene_at - self.dispatched_at).total_seconds()


class Entity(BaseModel):
    """A live thing on the map: the latest observation of one track (``id`` = source/track)."""

    id: str
    kind: ObservationKind
    cls: str = ""
    lon: float
    lat: float
    height: float = 0.0
    source: str
    track_id: str | None = None
    confidence: float = 1.0
    time: datetime
    attributes: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_observation(cls, obs: Observation) -> Entity:
        return cls(
            id=obs.entity_id,
            kind=obs.kind,
            cls=obs.cls,
            lon=obs.lon,
            lat=obs.lat,
            height=obs.height,
            source=obs.source,
            track_id=obs.track_id or obs.id,
            confidence=obs.confidence,
            time=obs.time,
            attributes=obs.attributes,
        )
