"""Alerts: list and evidence crop (read) and life-cycle actions (alerts permission): ack,
dispatch, arrive, resolve, false-alarm."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from scenes.models import Alert, AlertStatus
from scenes.store import AlertFilter
from server.auth import Principal, require
from server.deps import get_state
from server.schemas import AlertPage
from server.state import TwinState

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Actor = Annotated[Principal, Depends(require("alerts"))]


@router.get("", response_model=AlertPage)
async def list_alerts(
    _: Annotated[Principal, Depends(require("read"))],
    state: TwinState = Depends(get_state),
    status: AlertStatus | None = None,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    rule: Annotated[str | None, Query(max_length=128)] = None,
    app: Annotated[str | None, Query(max_length=64, description="Scenario app id")] = None,
    board: Annotated[str | None, Query(max_length=64, description="Board id")] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertPage:
    """Alerts, newest first: ``{"items": [...], "total": N}``."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    where = AlertFilter(status=status, unit=unit, rule=rule, since=since, app=app, board=board)
    items, total = await run_in_threadpool(
        state.live.store.alerts, where, limit=limit, offset=offset
    )
    return AlertPage(items=items, total=total)


@router.get(
    "/{alert_id}/crop.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No crop"}},
)
async def alert_crop(
    alert_id: str,
    _: Annotated[Principal, Depends(require("read"))],
    state: TwinState = Depends(get_state),
) -> Response:
    """The JPEG crop of the observed box kept with the alert (404 when it has none)."""
    data = await run_in_threadpool(state.live.store.alert_crop, alert_id)
    if data is None:
        raise HTTPException(404, f"no crop for alert '{alert_id}'")
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


async def _act(state: TwinState, alert_id: str, status: AlertStatus, who: Principal) -> Alert:
    alert = await run_in_threadpool(state.live.act, alert_id, status, by=who.label)
    state.bus.publish("alert", alert.model_dump(mode="json"))
    return alert


@router.post("/{alert_id}/ack", response_model=Alert)
async def acknowledge(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """new → acknowledged (409 from any other status)."""
    return await _act(state, alert_id, AlertStatus.acknowledged, who)


@router.post("/{alert_id}/resolve", response_model=Alert)
async def resolve(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """Any open status → resolved (409 when already closed)."""
    return await _act(state, alert_id, AlertStatus.resolved, who)


@router.post("/{alert_id}/dispatch", response_model=Alert)
async def dispatch(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """new or acknowledged → dispatched (a unit is on its way)."""
    return await _act(state, alert_id, AlertStatus.dispatched, who)


@router.post("/{alert_id}/arrive", response_model=Alert)
async def arrive(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """dispatched → on_scene (the unit arrived; dispatch → arrival is the response time)."""
    return await _act(state, alert_id, AlertStatus.on_scene, who)


@router.post("/{alert_id}/false-alarm", response_model=Alert)
async def false_alarm(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
    """Any open status → false_alarm (closed)."""
    return await _act(state, alert_id, AlertStatus.false_alarm, who)
