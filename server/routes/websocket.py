"""The WebSocket /ws/live, fed by the bus.

A browser page may connect from its own origin (``Origin`` naming the ``Host`` it connects
to) or from one listed in ``TWIN_WS_ORIGINS``; any other ``Origin`` is refused with HTTP 403
before the handshake (a page elsewhere cannot ride a user's token). Clients that send no
``Origin`` (not browsers) are let through to the token check.

On connect the socket sends the current state as ordinary ``entity`` and ``alert`` messages
(live entities, the most recently seen first and at most ``TWIN_WS_SNAPSHOT_MAX`` of them,
then open alerts), then ``{"topic": "ready", "payload": {"entities": n, "alerts": m,
"truncated": bool}}``, then every ``entity`` and ``alert`` published. Without a valid token
(and no public reads) it is closed with code 4401.

With a shared stream (``TWIN_BUS_URL``) every message carries its stream ``"id"``; a client
that reconnects (to any server process) with ``?since=<the last id it saw>`` first gets the
alert, camera and drone messages it missed (``TWIN_BUS_REPLAY`` at most), then the snapshot.

``?topics=`` (comma-separated) picks what a socket gets; the default is
``entity,alert,camera,drone`` (every entity update as its own message, in publish order).
``entities`` instead takes entity updates coalesced: the latest state per entity at most every
``flush_s`` (0.15 s), as ``{"topic": "entities", "payload": [entity, ...]}``, with the snapshot's
entities in such batches of at most `SNAPSHOT_BATCH`; queued alerts (and camera/drone messages)
always go out before a pending batch. ``alerts`` is a synonym of ``alert``: ``?topics=alerts``
gets alerts only. Unknown topics close the socket with code 4400. A socket that falls behind
(its bounded queue full) loses the oldest entity, camera or drone message first, and an alert
only when it holds nothing but alerts; drops are counted per topic at GET /api/live/stats. A
client that takes no message for ``TWIN_WS_SEND_TIMEOUT_S`` (it stopped reading) is dropped:
its queue and snapshot are freed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from server.bus import Subscription
from server.redisbus import RedisBus
from server.state import TwinState
from server.topics import Topic

router = APIRouter(tags=["live"])
log = logging.getLogger("twin.server")
TOPICS = (Topic.ENTITY, Topic.ALERT, Topic.CAMERA, Topic.DRONE)
KNOWN_TOPICS = frozenset((*TOPICS, Topic.ENTITIES))
ALIASES = {"alerts": Topic.ALERT}
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
SNAPSHOT_BATCH = 1000
"""Most entities in one snapshot message: a client that stops reading holds one such message
(plus the socket's buffer) in the server, never the whole snapshot."""


class StalledClient(Exception):
    """A client took no message for the send timeout."""


def parse_topics(raw: str | None) -> frozenset[Topic]:
    """The topics of a ``?topics=`` value (default: TOPICS); ValueError naming an unknown one.
    ``entities`` replaces ``entity`` when both are asked."""
    if raw is None:
        return frozenset(TOPICS)
    names = {ALIASES.get(t.strip(), t.strip()) for t in raw.split(",") if t.strip()}
    unknown = sorted(names - KNOWN_TOPICS)
    if unknown or not names:
        known = sorted(str(topic) for topic in KNOWN_TOPICS)
        raise ValueError(f"unknown topic(s) {unknown}; choose from {known}")
    topics = {Topic(name) for name in names}
    if Topic.ENTITIES in topics:
        topics.discard(Topic.ENTITY)
    return frozenset(topics)


def origin_allowed(websocket: WebSocket, allowed: str) -> bool:
    """Whether the handshake's ``Origin`` may connect: none given, the page's own origin (its
    host and port are the ``Host`` connected to), one listed in `allowed` (comma-separated;
    ``*`` for any)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    listed = {item.strip().rstrip("/").lower() for item in allowed.split(",") if item.strip()}
    if "*" in listed or origin.rstrip("/").lower() in listed:
        return True
    host = websocket.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin.lower()).netloc == host


class Sender:
    """Sends text frames, each within `timeout_s` seconds, else raises `StalledClient`."""

    def __init__(self, websocket: WebSocket, timeout_s: float) -> None:
        self.websocket, self.timeout_s = websocket, timeout_s

    async def send(self, text: str) -> None:
        try:
            await asyncio.wait_for(self.websocket.send_text(text), self.timeout_s)
        except TimeoutError:
            raise StalledClient from None


async def _send_snapshot(sender: Sender, state: TwinState, topics: frozenset[Topic]) -> None:
    limit = state.settings.ws_snapshot_max
    records: list[str] = []
    if Topic.ENTITY in topics or Topic.ENTITIES in topics:
        records = await run_in_threadpool(state.live.live_entity_records, limit + 1)
    truncated = len(records) > limit
    del records[limit:]
    alerts = await run_in_threadpool(state.live.store.open_alerts) if Topic.ALERT in topics else []
    if Topic.ENTITIES in topics:
        for start in range(0, max(len(records), 1), SNAPSHOT_BATCH):  # one batch at least
            body = ",".join(records[start : start + SNAPSHOT_BATCH])
            await sender.send(f'{{"topic":"{Topic.ENTITIES}","payload":[{body}]}}')
    else:
        for record in records:
            await sender.send(f'{{"topic":"{Topic.ENTITY}","payload":{record}}}')
    for alert in alerts:
        await sender.send(f'{{"topic":"{Topic.ALERT}","payload":{alert.model_dump_json()}}}')
    ready = f'"entities":{len(records)},"alerts":{len(alerts)},"truncated":{str(truncated).lower()}'
    await sender.send(f'{{"topic":"{Topic.READY}","payload":{{{ready}}}}}')


async def _pump(sender: Sender, sub: Subscription) -> None:
    while True:
        message = await sub.get()
        await sender.send(message.text)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client frames until it disconnects."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()


async def _send_missed(
    sender: Sender, state: TwinState, since: str, topics: frozenset[Topic]
) -> tuple[int, bool]:
    """With a shared stream: the messages of `topics` after stream id `since` (alerts,
    camera and drone poses the client missed while away); how many, and whether some may be
    missing (older than the stream keeps)."""
    if not isinstance(state.bus, RedisBus):
        return 0, False
    missed, gap = await state.bus.replay_since(since, topics)
    for message in missed:
        await sender.send(message.text)
    return len(missed), gap


@router.websocket("/ws/live")
async def live_socket(
    websocket: WebSocket,
    token: str | None = None,
    topics: str | None = None,
    since: str | None = None,
) -> None:
    state: TwinState = websocket.app.state.twin
    if not origin_allowed(websocket, state.settings.ws_origins):
        log.warning("live socket refused: origin %r", websocket.headers.get("origin"))
        await websocket.close(code=CLOSE_FORBIDDEN)  # before accept: HTTP 403
        return
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
    sender = Sender(websocket, state.settings.ws_send_timeout_s)
    try:
        if since is not None:
            try:
                await _send_missed(sender, state, since, wanted)
            except ValueError as exc:
                await websocket.close(code=CLOSE_BAD_REQUEST, reason=str(exc)[:120])
                return
        await _send_snapshot(sender, state, wanted)
        tasks = [asyncio.create_task(_pump(sender, sub)), asyncio.create_task(_drain(websocket))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), StalledClient):
                raise StalledClient
            if not task.cancelled() and task.exception() is not None:
                log.debug("live socket ended: %r", task.exception())
    except StalledClient:
        log.warning("live socket dropped: the client took no message for %.0f s",
                    sender.timeout_s)  # fmt: skip
    except WebSocketDisconnect:
        pass
    finally:
        state.bus.unsubscribe(sub)
        if sub.dropped:
            log.warning(
                "live socket dropped %d message(s) to a slow client: %s",
                sub.dropped, dict(sub.dropped_by_topic),
            )  # fmt: skip
