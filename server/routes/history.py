"""The history API (read permission): observations, tracks, alerts (closed ones included),
figures and replay, from the live store and the archive as one (see `scenes.history`).

Times are ISO 8601 with a zone; a range, box, cursor or key the server cannot use is a 422
whose ``detail`` names the parameter (``loc``), like every validation error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from scenes.history import AlertQuery, Cursor, CursorError, ObservationQuery
from scenes.live import SOURCE_KINDS
from scenes.models import Alert, AlertStatus, IsoTime, Observation, ObservationKind, utcnow
from scenes.rows import from_us, to_us
from server.auth import Principal, require
from server.deps import get_state
from server.errors import invalid
from server.schemas import errors
from server.state import TwinState

router = APIRouter(prefix="/api/history", tags=["history"], responses=errors(401, 403))
Reader = Annotated[Principal, Depends(require("read"))]
HOUR = timedelta(hours=1)
MAX_REPLAY = timedelta(hours=1)
TimeParam = Annotated[IsoTime | None, Query(description="ISO 8601 with a zone")]


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in µs since the epoch, UTC."""

    from_us: int
    to_us: int


def time_range(
    start: datetime | None, end: datetime | None, default: timedelta, longest: timedelta | None
) -> TimeRange:
    """The range of ``from``/``to`` (defaults: now, and `default` before ``to``)."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise invalid(name, "needs a time zone (e.g. 'Z' or '+08:00')", value.isoformat())
    end = end or utcnow()
    start = start or end - default
    try:
        span = TimeRange(to_us(start), to_us(end))
    except OverflowError:
        raise invalid("from", "out of range", start.isoformat()) from None
    if span.from_us >= span.to_us:
        raise invalid("from", "must be before 'to'", start.isoformat())
    if longest is not None and end - start > longest:
        raise invalid("from", f"the range may span {longest} at most", start.isoformat())
    return span


@dataclass
class Window:
    """The ``from`` / ``to`` of a history query (ISO 8601 with a zone)."""

    start: Annotated[TimeParam, Query(alias="from")] = None
    end: Annotated[TimeParam, Query(alias="to")] = None

    def span(self, default: timedelta, longest: timedelta | None = None) -> TimeRange:
        """The range asked (see `time_range`)."""
        return time_range(self.start, self.end, default, longest)


@dataclass
class ObservationParams(Window):
    """The query of ``GET /api/history/observations``: where, what, and which page."""

    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None
    kind: ObservationKind | None = None
    source: Annotated[str | None, Query(max_length=128)] = None
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000
    cursor: Annotated[str | None, Query(max_length=200)] = None


@dataclass
class AlertHistoryParams(Window):
    """The query of ``GET /api/history/alerts``: which alerts, and which page."""

    unit: Annotated[str | None, Query(max_length=128)] = None
    app: Annotated[str | None, Query(max_length=64)] = None
    board: Annotated[str | None, Query(max_length=64)] = None
    status: AlertStatus | None = None
    severity: Annotated[str | None, Query(max_length=32)] = None
    rule: Annotated[str | None, Query(max_length=128)] = None
    closed: Annotated[
        bool | None, Query(description="true: resolved or false alarm; false: still open")
    ] = None
    limit: Annotated[int, Query(ge=1, le=1000)] = 100
    cursor: Annotated[str | None, Query(max_length=200)] = None


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` (deg) or None."""
    if value is None:
        return None
    try:
        minlon, minlat, maxlon, maxlat = (float(v) for v in value.split(","))
    except ValueError:
        raise invalid("bbox", "expected minlon,minlat,maxlon,maxlat", value) from None
    if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
        raise invalid("bbox", "expected -180 <= minlon <= maxlon <= 180, -90 <= minlat <= "
                      "maxlat <= 90", value)  # fmt: skip
    return minlon, minlat, maxlon, maxlat


def parse_cursor(value: str | None) -> Cursor | None:
    try:
        return None if value is None else Cursor.decode(value)
    except CursorError as exc:
        raise invalid("cursor", str(exc), value) from None


def source_id(state: TwinState, value: str | None) -> str | None:
    """A source by its element id, or by its layer's own id when that names one camera or
    sensor of the catalog."""
    return None if value is None else state.catalog.resolve(value, SOURCE_KINDS)


class ObservationPage(BaseModel):
    items: list[Observation]
    next: str | None = Field(title="Cursor of the next page; null after the last")


class AlertHistoryPage(BaseModel):
    items: list[Alert]
    next: str | None = Field(title="Cursor of the next page; null after the last")


class Track(BaseModel):
    entity_id: str
    items: list[Observation] = Field(title="Its observations, oldest first")
    truncated: bool = Field(title="More observations exist in the range than were returned")


class Figures(BaseModel):
    key: str | None = Field(title="Hour start (UTC, ISO), unit, app or board; null: none")
    count: int
    handled: int = Field(title="Closed: resolved or false alarm")
    handled_ratio: float
    responses: int = Field(title="Alerts with a dispatch and an arrival on scene")
    median_response_s: float | None = Field(title="Median dispatch → on scene, s")


class Stats(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    by: str
    groups: list[Figures]


class ReplayEntity(BaseModel):
    id: str
    kind: str
    cls: str
    source: str
    samples: list[tuple[int, float, float, float]] = Field(
        title="[epoch ms, lon, lat, height m]: its last observation in each step, oldest first"
    )


class Replay(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    step_s: float
    entities: list[ReplayEntity]
    truncated: bool = Field(title="More entities moved in the range than were returned")


@router.get("/observations", response_model=ObservationPage)
async def history_observations(
    _: Reader,
    params: Annotated[ObservationParams, Depends()],
    state: TwinState = Depends(get_state),
) -> ObservationPage:
    """Observations in [from, to) (default: the last hour), oldest first in (time, id) order,
    from the live store and the archive; pass ``next`` as ``cursor`` for the next page. Each
    observation comes exactly once across pages, even while the history mover runs."""
    span = params.span(HOUR)
    kind = params.kind.value if params.kind else None
    query = ObservationQuery(span.from_us, span.to_us, parse_bbox(params.bbox), kind,
                             source_id(state, params.source))  # fmt: skip
    page = await run_in_threadpool(
        state.history.observations, query, limit=params.limit, after=parse_cursor(params.cursor)
    )
    return ObservationPage(items=page.items, next=page.next.encode() if page.next else None)


@router.get("/tracks/{entity_id:path}", response_model=Track, responses=errors(404))
async def history_track(
    entity_id: Annotated[str, Field(max_length=200)],
    _: Reader,
    state: TwinState = Depends(get_state),
    start: Annotated[TimeParam, Query(alias="from")] = None,
    end: Annotated[TimeParam, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Track:
    """The positions of entity `entity_id` (``source/track``) in [from, to) (default: the
    last 24 hours), oldest first: for a trail and for replay."""
    span = time_range(start, end, timedelta(days=1), None)
    items = await run_in_threadpool(
        state.history.track, entity_id, span.from_us, span.to_us, limit=limit + 1
    )
    return Track(entity_id=entity_id, items=items[:limit], truncated=len(items) > limit)


@router.get("/alerts", response_model=AlertHistoryPage)
async def history_alerts(
    _: Reader,
    params: Annotated[AlertHistoryParams, Depends()],
    state: TwinState = Depends(get_state),
) -> AlertHistoryPage:
    """Alerts created in [from, to) (default: the last 7 days), newest first, open and closed,
    with their life-cycle times; from the live store and the archive."""
    p = params
    span = p.span(timedelta(days=7))
    query = AlertQuery(span.from_us, span.to_us, p.unit, p.app, p.board,
                       p.status.value if p.status else None, p.severity, p.rule,
                       p.closed)  # fmt: skip
    page = await run_in_threadpool(
        state.history.alerts, query, limit=p.limit, before=parse_cursor(p.cursor)
    )
    return AlertHistoryPage(items=page.items, next=page.next.encode() if page.next else None)


@router.get("/stats", response_model=Stats, response_model_by_alias=True)
async def history_stats(
    _: Reader,
    state: TwinState = Depends(get_state),
    start: Annotated[TimeParam, Query(alias="from")] = None,
    end: Annotated[TimeParam, Query(alias="to")] = None,
    by: Literal["hour", "unit", "app", "board"] = "hour",
    unit: Annotated[str | None, Query(max_length=128)] = None,
    app: Annotated[str | None, Query(max_length=64)] = None,
    board: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Alert figures over [from, to) (default: the last 7 days) per hour, unit, app or board:
    counts, how many were handled (closed), the handled ratio and the median response time
    (dispatch → on scene)."""
    span = time_range(start, end, timedelta(days=7), None)
    query = AlertQuery(span.from_us, span.to_us, unit, app, board)
    groups = await run_in_threadpool(state.history.stats, query, by)
    return {"from": from_us(span.from_us), "to": from_us(span.to_us), "by": by,
            "groups": groups}  # fmt: skip


@router.get("/replay", response_model=Replay, response_model_by_alias=True)
async def history_replay(
    _: Reader,
    state: TwinState = Depends(get_state),
    start: Annotated[TimeParam, Query(alias="from")] = None,
    end: Annotated[TimeParam, Query(alias="to")] = None,
    step_s: Annotated[float, Query(ge=0.5, le=60.0)] = 1.0,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    max_entities: Annotated[int, Query(ge=1, le=5000)] = 2000,
) -> dict[str, Any]:
    """Where entities were in [from, to) (an hour at most; default: the last minute): each
    one's last observation in every `step_s` window, for the page's time bar."""
    span = time_range(start, end, timedelta(minutes=1), MAX_REPLAY)
    tracks, truncated = await run_in_threadpool(
        state.history.replay, span.from_us, span.to_us, int(step_s * 1e6),
        bbox=parse_bbox(bbox), max_entities=max_entities,
    )  # fmt: skip
    entities = [
        {"id": t.id, "kind": t.kind, "cls": t.cls, "source": t.source,
         "samples": [(us // 1000, lon, lat, h) for us, lon, lat, h in t.samples]}
        for t in tracks
    ]  # fmt: skip
    return {"from": from_us(span.from_us), "to": from_us(span.to_us), "step_s": step_s,
            "entities": entities, "truncated": truncated}  # fmt: skip
