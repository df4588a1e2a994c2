"""Live entities over HTTP: GET /api/live and GET /api/live/stats (the WebSocket /ws/live is
`server.routes.websocket`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.deps import get_state
from server.schemas import EntityList, errors
from server.state import TwinState

router = APIRouter(tags=["live"], responses=errors(401, 403))


@router.get("/api/live", response_model=EntityList)
async def live_entities(
    _: Annotated[Principal, Depends(require("read"))], state: TwinState = Depends(get_state)
) -> EntityList:
    """Entities seen within the last ``live_ttl_s`` seconds."""
    items = await run_in_threadpool(state.live.live_entities)
    return EntityList(items=items, total=len(items))


@router.get("/api/live/stats")
async def live_stats(
    _: Annotated[Principal, Depends(require("read"))], state: TwinState = Depends(get_state)
) -> dict[str, Any]:
    """Bus counters: per connected socket (topics, queued, pending entities, sent, dropped in
    all and per topic, coalesced) and totals including sockets gone (see server.bus)."""
    return state.bus.stats()
