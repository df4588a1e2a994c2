"""Live entities: GET /api/live, and the WebSocket /ws/live fed by the bus.

On connect the socket sends the current state as ordinary ``entity`` and ``alert`` messages
(live entities, then open alerts), then ``{"topic": "ready", "payload": {"entities": n,
"alerts": m}}``, then every ``entity`` and ``alert`` published. Without a valid token (and no
public reads) it is closed with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.bus import Subscription
from server.deps import get_state
from server.schemas import EntityList
from server.state import TwinState

router = APIRouter(tags=["live"])
log = logging.getLogger("twin.server")
TOPICS = ("entity", "alert", "camera", "drone")
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


@router.get("/api/live", response_model=EntityList)
async def live_entities(
    _: Annotated[Principal, Depends(require("read"))], state: TwinState = Depends(get_state)
) -> EntityList:
    """Entities seen within the last ``live_ttl_s`` seconds."""
    items = await run_in_threadpool(state.live.live_entities)
    return EntityList(items=items, total=len(items))


async def _send_snapshot(websocket: WebSocket, state: TwinState) -> None:
    entities = await run_in_threadpool(state.live.live_entities)
    alerts = await run_in_threadpool(state.live.store.open_alerts)
    for entity in entities:
        await websocket.send_json({"topic": "entity", "payload": entity.model_dump(mode="json")})
    for alert in alerts:
        await websocket.send_json({"topic": "alert", "payload": alert.model_dump(mode="json")})
    await websocket.send_json(
        {"topic": "ready", "payload": {"entities": len(entities), "alerts": len(alerts)}}
    )


async def _pump(websocket: WebSocket, sub: Subscription) -> None:
    while True:
        message = await sub.get()
        await websocket.send_text(message.text)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


@router.websocket("/ws/live")
async def live_socket(websocket: WebSocket, token: str | None = None) -> None:
    state: TwinState = websocket.app.state.twin
    await websocket.accept()
    try:
        state.tokens.resolve(token, "read")
    except HTTPException as exc:
        code = CLOSE_UNAUTHORIZED if exc.status_code == 401 else CLOSE_FORBIDDEN
        await websocket.close(code=code, reason=str(exc.detail))
        return
    sub = state.bus.subscribe(TOPICS)
    try:
        await _send_snapshot(websocket, state)
        tasks = [asyncio.create_task(_pump(websocket, sub)), asyncio.create_task(_drain(websocket))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("live socket ended: %r", task.exception())
    except WebSocketDisconnect:
        pass
    finally:
        state.bus.unsubscribe(sub)
        if sub.dropped:
            log.info("live socket dropped %d message(s) to a slow client", sub.dropped)
