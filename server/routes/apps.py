"""Scenario apps and boards: list apps and board figures (read), retune an app (admin)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from scenes.boards import DEFAULT_TZ
from server.auth import Principal, require
from server.deps import get_state
from server.errors import invalid
from server.jsonbody import StrictJSONRoute
from server.schemas import errors
from server.state import TwinState

router = APIRouter(
    prefix="/api", tags=["apps"], route_class=StrictJSONRoute, responses=errors(401, 403)
)
Reader = Annotated[Principal, Depends(require("read"))]


class AppUpdate(BaseModel):
    """PUT body: turn the app on or off and/or change some of its parameters."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, title="Run the app's rules")
    parameters: dict[str, Any] | None = Field(default=None, title="Parameters to change")


@router.get("/apps")
def list_apps(_: Reader, state: TwinState = Depends(get_state)) -> dict[str, Any]:
    """Every app with its board, settings and rule ids: ``{"items": [...], "total": N}``."""
    state.live.sync_apps()
    items = [app.to_dict() for app in state.live.apps.values()]
    return {"items": items, "total": len(items)}


@router.get("/apps/{app_id}", responses=errors(404))
def get_app(app_id: str, _: Reader, state: TwinState = Depends(get_state)) -> dict[str, Any]:
    """One app; 404 when unknown."""
    state.live.sync_apps()
    return state.live.app(app_id).to_dict()


@router.put("/apps/{app_id}", responses=errors(404, 413))
async def put_app(
    app_id: str,
    body: AppUpdate,
    _: Annotated[Principal, Depends(require("admin"))],
    state: TwinState = Depends(get_state),
) -> dict[str, Any]:
    """Apply now (its rules restart) and keep across restarts; 422 naming an unknown parameter
    or a value the rules refuse."""
    config = await run_in_threadpool(
        state.live.configure_app, app_id, enabled=body.enabled, parameters=body.parameters
    )
    return config.to_dict()


@router.get("/boards")
async def boards(
    _: Reader,
    state: TwinState = Depends(get_state),
    tz: Annotated[str, Query(max_length=64, description="IANA zone of 'today'")] = DEFAULT_TZ,
) -> dict[str, Any]:
    """Per board, app and unit: alerts today and over 7 days, handled ratio, median response
    time (dispatch → on scene, s)."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid("tz", "unknown time zone (an IANA name, e.g. 'Asia/Shanghai')", tz) from None
    return await run_in_threadpool(state.live.boards, tz)
