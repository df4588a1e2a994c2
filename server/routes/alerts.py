"""Alerts: list, one alert and its evidence crop (read) and life-cycle actions (alerts
permission): ack, dispatch, arrive, resolve, false-alarm, and acknowledging many at once
(POST /api/alerts/ack)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from scenes.errors import AlertNotFound
from scenes.models import Alert, AlertStatus, IsoTime
from scenes.store import AlertFilter
from server.auth import Principal, require
from server.deps import get_state
from server.jsonbody import StrictJSONRoute
from server.publish import publish_alert
from server.schemas import AlertPage, Offset, errors
from server.state import TwinState
from twin.errors import NotFoundError


class AlertId(Convertor[str]):
    """An alert id in a path of its own: any segment but ``ack`` (``/api/alerts/ack`` is the
    bulk acknowledge, which serves POST only)."""

    regex = "(?!ack$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("alert_id", AlertId())

router = APIRouter(
    prefix="/api/alerts", tags=["alerts"], route_class=StrictJSONRoute, responses=errors(401, 403)
)
Actor = Annotated[Principal, Depends(require("alerts"))]
ACTION_ERRORS = errors(404, 409)


@router.get("", response_model=AlertPage)
async def list_alerts(
    _: Annotated[Principal, Depends(require("read"))],
    state: TwinState = Depends(get_state),
    status: AlertStatus | None = None,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    rule: Annotated[str | None, Query(max_length=128)] = None,
    app: Annotated[str | None, Query(max_length=64, description="Scenario app id")] = None,
    board: Annotated[str | None, Query(max_length=64, description="Board id")] = None,
    since: Annotated[IsoTime | None, Query(description="Created at or after (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> AlertPage:
    """Alerts, newest first: ``{"items": [...], "total": N}``."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    where = AlertFilter(status=status, unit=unit, rule=rule, since=since, app=app, board=board)
    items, total = await run_in_threadpool(
        state.live.store.alerts, where, limit=limit, offset=offset
    )
    return AlertPage(items=items, total=total)


@router.get("/{alert_id:alert_id}", response_model=Alert, responses=errors(404))
async def get_alert(
    alert_id: Annotated[str, Path(max_length=64)],
    _: Annotated[Principal, Depends(require("read"))],
    state: TwinState = Depends(get_state),
) -> Alert:
    """One alert of the live store (open, or closed within the hot window; older ones are in
    ``/api/history/alerts``); 404 when it has none by that id."""
    return await run_in_threadpool(state.live.store.get_alert, alert_id)


@router.get(
    "/{alert_id}/crop.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **errors(404)},
)
async def alert_crop(
    alert_id: str,
    _: Annotated[Principal, Depends(require("read"))],
    state: TwinState = Depends(get_state),
) -> Response:
    """The JPEG crop of the observed box kept with the alert (404 when it has none)."""
    data = await run_in_threadpool(state.live.store.alert_crop, alert_id)
    if data is None:
        raise NotFoundError(f"no crop for alert '{alert_id}'")
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


async def _act(state: TwinState, alert_id: str, status: AlertStatus, who: Principal) -> Alert:
    alert = await run_in_threadpool(state.live.act, alert_id, status, by=who.label)
    state.metrics.alert(alert.app, alert.status.value)
    publish_alert(state.bus, alert)
    return alert


@router.post("/{alert_id}/ack", response_model=Alert, responses=ACTION_ERRORS)
async def acknowledge(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """new → acknowledged (409 from any other status)."""
    return await _act(state, alert_id, AlertStatus.acknowledged, who)


@router.post("/{alert_id}/resolve", response_model=Alert, responses=ACTION_ERRORS)
async def resolve(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """Any open status → resolved (409 when already closed)."""
    return await _act(state, alert_id, AlertStatus.resolved, who)


@router.post("/{alert_id}/dispatch", response_model=Alert, responses=ACTION_ERRORS)
async def dispatch(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """new or acknowledged → dispatched (a unit is on its way)."""
    return await _act(state, alert_id, AlertStatus.dispatched, who)


@router.post("/{alert_id}/arrive", response_model=Alert, responses=ACTION_ERRORS)
async def arrive(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """dispatched → on_scene (the unit arrived; dispatch → arrival is the response time)."""
    return await _act(state, alert_id, AlertStatus.on_scene, who)


@router.post("/{alert_id}/false-alarm", response_model=Alert, responses=ACTION_ERRORS)
async def false_alarm(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """Any open status → false_alarm (closed)."""
    return await _act(state, alert_id, AlertStatus.false_alarm, who)


class BulkAction(BaseModel):
    """Alerts to move together (each on its own: one refused leaves the others moving)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=500, title="Alert ids"
    )


class BulkRefusal(BaseModel):
    id: str
    status: int = Field(title="What the single action would have answered: 404 or 409")
    detail: str


class BulkResult(BaseModel):
    items: list[Alert] = Field(title="The alerts moved, as they are now")
    failed: list[BulkRefusal] = Field(title="The alerts that could not move, and why")


@router.post("/ack", response_model=BulkResult, responses=errors(413))
async def acknowledge_many(
    body: BulkAction, who: Actor, state: TwinState = Depends(get_state)
) -> BulkResult:
    """Bulk acknowledge: each new alert of ``ids`` → acknowledged; the others are listed in
    ``failed`` (404 unknown, 409 no longer new)."""
    moved, refused = await run_in_threadpool(
        state.live.act_many, body.ids, AlertStatus.acknowledged, by=who.label
    )
    for alert in moved:
        state.metrics.alert(alert.app, alert.status.value)
        publish_alert(state.bus, alert)
    failed = [
        BulkRefusal(id=alert_id, status=404 if isinstance(exc, AlertNotFound) else 409,
                    detail=str(exc))
        for alert_id, exc in refused.items()
    ]  # fmt: skip
    return BulkResult(items=moved, failed=failed)
