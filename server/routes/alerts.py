"""Alerts: list, one alert and its evidence crop (read) and life-cycle actions (alerts
permission): ack, dispatch, arrive, resolve, false-alarm, and acknowledging many at once
(POST /api/alerts/ack)."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class AlertListParams:
    """The query of ``GET /api/alerts``: which alerts, and which page of them."""

    status: AlertStatus | None = None
    unit: Annotated[str | None, Query(max_length=128)] = None
    rule: Annotated[str | None, Query(max_length=128)] = None
    app: Annotated[str | None, Query(max_length=64, description="Scenario app id")] = None
    board: Annotated[str | None, Query(max_length=64, description="Board id")] = None
    since: Annotated[IsoTime | None, Query(description="Created at or after (ISO 8601)")] = None
    limit: Annotated[int, Query(ge=1, le=1000)] = 100
    offset: Offset = 0

    def where(self) -> AlertFilter:
        """The store's filter; a `since` without a zone is taken as UTC."""
        since = self.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return AlertFilter(status=self.status, unit=self.unit, rule=self.rule, since=since,
                           app=self.app, board=self.board)  # fmt: skip


@router.get("", response_model=AlertPage)
async def list_alerts(
    _: Annotated[Principal, Depends(require("read"))],
    query: Annotated[AlertListParams, Depends()],
    state: TwinState = Depends(get_state),
) -> AlertPage:
    """Alerts, newest first: ``{"items": [...], "total": N}``."""
    items, total = await run_in_threadpool(
        state.live.store.alerts, query.where(), limit=query.limit, offset=query.offset
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


def _moved(state: TwinState, alert: Alert) -> None:
    """Count an alert's new status and publish it."""
    state.metrics.alert(alert.app, alert.status.value)
    publish_alert(state.bus, alert)


@dataclass(frozen=True)
class AlertAction:
    """A life-cycle action: ``POST /api/alerts/{alert_id}/{path}`` moves the alert to
    `status`; `name` is the route's name (its OpenAPI summary and operation id), `doc` its
    description (which statuses it moves from)."""

    name: str
    path: str
    status: AlertStatus
    doc: str


ACTIONS = (
    AlertAction("acknowledge", "ack", AlertStatus.acknowledged,
                "new → acknowledged (409 from any other status)."),
    AlertAction("resolve", "resolve", AlertStatus.resolved,
                "Any open status → resolved (409 when already closed)."),
    AlertAction("dispatch", "dispatch", AlertStatus.dispatched,
                "new or acknowledged → dispatched (a unit is on its way)."),
    AlertAction("arrive", "arrive", AlertStatus.on_scene,
                "dispatched → on_scene (the unit arrived; dispatch → arrival is the response "
                "time)."),
    AlertAction("false_alarm", "false-alarm", AlertStatus.false_alarm,
                "Any open status → false_alarm (closed)."),
)  # fmt: skip


def add_action_route(router: APIRouter, action: AlertAction) -> None:
    """Register `action`'s route on `router` (alerts permission; 404 for an unknown alert,
    409 when its status does not allow the move)."""

    async def act(alert_id: str, who: Actor, state: TwinState = Depends(get_state)) -> Alert:
        alert = await run_in_threadpool(state.live.act, alert_id, action.status, by=who.label)
        _moved(state, alert)
        return alert

    router.add_api_route(
        f"/{{alert_id}}/{action.path}", act, methods=["POST"], name=action.name,
        description=action.doc, response_model=Alert, responses=ACTION_ERRORS,
    )  # fmt: skip


for _action in ACTIONS:
    add_action_route(router, _action)


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
        _moved(state, alert)
    failed = [
        BulkRefusal(id=alert_id, status=404 if isinstance(exc, AlertNotFound) else 409,
                    detail=str(exc))
        for alert_id, exc in refused.items()
    ]  # fmt: skip
    return BulkResult(items=moved, failed=failed)
