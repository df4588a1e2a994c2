"""Live entities: GET /api/live, GET /api/live/stats, and the WebSocket /ws/live fed by the bus.

On connect the socket sends the current state as ordinary ``entity`` and ``alert`` messages
(live entities, then open alerts), then ``{"topic": "ready", "payload": {"entities": n,
"alerts": m}}``, then every ``entity`` and ``alert`` published. Without a valid token (and no
public reads) it is closed with code 4401.

``?topics=`` (comma-separated) picks what a socket gets; the default is
``entity,alert,camera,drone`` (every entity update as its own message, in publish order).
``entities`` instead takes entity updates coalesced: the latest state per entity at most every
``flush_s`` (0.15 s), as ``{"topic": "entities", "payload": [entity, ...]}``, with the snapshot's
entities as one such batch; queued alerts (and camera/drone messages) always go out before a
pending batch. ``alerts`` is a synonym of ``alert``: ``?topics=alerts`` gets alerts only.
Unknown topics close the socket with code 4400. A socket that falls behind (its bounded queue
full) loses the oldest entity, camera or drone message first, and an alert only when it holds
nothing but alerts; drops are counted per topic at GET /api/live/stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.bus import ENTITIES, Subscription
from server.deps import get_state
from server.schemas import EntityList
from server.state import TwinState

router = APIRouter(tags=["live"])
log = logging.getLogger("twin.server")
TOPICS = ("entity", "alert", "camera", "drone")
KNOWN_TOPICS = frozenset((*TOPICS, ENTITIES))
ALIASES = {"alerts": "alert"}
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


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


def parse_topics(raw: str | None) -> frozenset[str]:
    """The topics of a ``?topics=`` value (default: TOPICS); ValueError naming an unknown one.
    ``entities`` replaces ``entity`` when both are asked."""
    if raw is None:
        return frozenset(TOPICS)
    topics = {ALIASES.get(t.strip(), t.strip()) for t in raw.split(",") if t.strip()}
    unknown = sorted(topics - KNOWN_TOPICS)
    if unknown or not topics:
        raise ValueError(f"unknown topic(s) {unknown}; choose from {sorted(KNOWN_TOPICS)}")
    if ENTITIES in topics:
        topics.discard("entity")
    return frozenset(topics)


async def _send_snapshot(websocket: WebSocket, state: TwinState, topics: frozenset[str]) -> None:
    entities = []
    if "entity" in topics or ENTITIES in topics:
        entities = await run_in_threadpool(state.live.live_entities)
    alerts = []
    if "alert" in topics:
        alerts = await run_in_threadpool(state.live.store.open_alerts)
    if ENTITIES in topics:
        body = ",".join(entity.model_dump_json() for entity in entities)
        await websocket.send_text(f'{{"topic":"{ENTITIES}","payload":[{body}]}}')
    for entity in entities if "entity" in topics else []:
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
async def live_socket(
    websocket: WebSocket, token: str | None = None, topics: str | None = None
) -> None:
    state: TwinState = websocket.app.state.twin
    await websocket.accept()
    try:
        state.tokens.resolve(token, "read")
    except HTTPException as exc:
        code = CLOSE_UNAUTHORIZED if exc.status_code == 401 else CLOSE_FORBIDDEN
        await websocket.close(code=code, reason=str(exc.detail))
        return
    try:
        wanted = parse_topics(topics)
    except ValueError as exc:
        await websocket.close(code=CLOSE_BAD_REQUEST, reason=str(exc)[:120])
        return
    sub = state.bus.subscribe(wanted)
    try:
        await _send_snapshot(websocket, state, wanted)
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
            log.warning(
                "live socket dropped %d message(s) to a slow client: %s",
                sub.dropped, dict(sub.dropped_by_topic),
            )  # fmt: skip
