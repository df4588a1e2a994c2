"""Rules shared by several server processes (``TWIN_BUS_URL`` and ``TWIN_DATABASE_URL``): every
alert is raised once, whichever process took the observation, and the stateful rules (dwell,
crowd, speed, cooldowns, incidents) see every observation of their entity or zone.

How: the process that takes a batch stores it (`LiveService.accept`, committed: its 2xx means
stored) and adds it to one Redis stream of batches. One process at a time is the rules leader
(a Redis lock it renews; another takes over when it lapses): it reads the stream in order
through a consumer group, evaluates each batch (`LiveService.evaluate`, which stores the
alerts with the batch's stream id, so a batch is never evaluated twice), publishes the alerts
on the bus and answers the taking process, which waits for that answer (a few ms) to put the
alert ids in its reply. When no leader answers in time the reply carries no alerts; the batch
waits in the stream and its alerts are raised and published when a leader takes it.

A new leader first takes the batches its predecessor read but did not acknowledge, then warms
its rules up on the batches of the last `WARM_UP_S` seconds of the stream (without raising
anything), so timers and crowds continue where they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from starlette.concurrency import run_in_threadpool

from scenes.crops import CropSource
from scenes.live import IngestResult, LiveService
from scenes.models import Alert, Observation
from server.bus import EventBus
from server.lease import RENEW_S, Lease
from server.publish import publish_alert
from server.redisbus import stream_key

log = logging.getLogger("twin.server")
STREAM = "twin:rules"
GROUP = "rules"
LEADER_KEY = "twin:rules:leader"
ANSWER_WAIT_S = 3.0  # how long a taking process waits for the leader's answer
ANSWER_KEPT_S = 60
WARM_UP_S = 120.0
STREAM_MAX = 1_000_000  # batches kept in the rules stream (trimmed, approximately)
READ_COUNT = 50


@dataclass
class RulesStats:
    """What this process did for the shared rules."""

    leader: bool = False
    submitted: int = 0
    answered: int = 0
    unanswered: int = 0
    evaluated: int = 0
    claimed: int = 0
    warmed_up: int = 0
    errors: int = 0
    leaderships: int = 0
    last_error: str | None = field(default=None, repr=False)


def _encode(batch: Sequence[Observation]) -> str:
    return "[" + ",".join(obs.model_dump_json() for obs in batch) + "]"


def _decode(text: bytes | str) -> list[Observation]:
    return [Observation.model_validate(item) for item in json.loads(text)]


class SharedRules:
    """The rules of `live` evaluated once for every server process on the Redis at `url`;
    alerts go out on `bus` (see the module docstring). `crops`: the evidence crops of this
    process's frames, if any."""

    def __init__(
        self,
        url: str,
        live: LiveService,
        bus: EventBus,
        crops: CropSource | None = None,
    ) -> None:
        self.url, self.live, self.bus, self.crops = url, live, bus, crops
        self.origin = uuid.uuid4().hex[:12]
        self.stats = RulesStats()
        self._sync = redis.Redis.from_url(url, socket_timeout=ANSWER_WAIT_S + 2,
                                          socket_connect_timeout=5)  # fmt: skip
        self._task: asyncio.Task[None] | None = None

    # -- the taking side (any process, in a worker thread) ---------------------------------

    def ingest(self, observations: Sequence[Observation]) -> IngestResult:
        """Store the batch (committed), hand it to the rules leader and wait briefly for the
        alerts it raised (empty when no leader answered in time)."""
        result = self.live.accept(observations)
        reply = f"twin:rules:answer:{uuid.uuid4().hex}"
        try:
            self._sync.xadd(
                STREAM, {"b": _encode(result.observations), "r": reply},
                maxlen=STREAM_MAX, approximate=True,
            )  # fmt: skip
            self.stats.submitted += 1
            answer = self._sync.blpop([reply], timeout=ANSWER_WAIT_S)
        except RedisError as exc:  # stored already: the batch is lost for the rules only
            self._failed(exc)
            log.error("rules: cannot hand a stored batch to the leader (%s)", exc)
            return result
        if answer is None:
            self.stats.unanswered += 1
            return result
        self.stats.answered += 1
        alerts = [Alert.model_validate(a) for a in json.loads(answer[1])]
        return IngestResult(result.observations, result.entities, alerts, result.entity_json)

    # -- the leader side (an asyncio task in every process; one of them leads) -------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rules-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._sync.close()

    async def _run(self) -> None:
        client = aioredis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
        lease = Lease(client, LEADER_KEY)
        try:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: made already
                await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
            while True:
                try:
                    if await lease.take():
                        self.stats.leaderships += 1
                        log.info("rules: this process leads the rules")
                        await self._serve(client, lease)
                    await asyncio.sleep(RENEW_S)
                except (RedisError, OSError) as exc:
                    self._failed(exc)
                    self.stats.leader = False
                    log.warning("rules: Redis unreachable (%s); trying again", exc)
                    await asyncio.sleep(RENEW_S)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await lease.release()
                await client.aclose()

    async def _serve(self, client: Any, lease: Lease) -> None:
        """Evaluate the stream while the lease is renewed; returns when it is lost."""
        self.stats.leader = True
        await self._warm_up(client)
        renewed = time.monotonic()
        pending = True  # first the batches a lapsed leader read but did not acknowledge
        while True:
            if time.monotonic() - renewed >= RENEW_S:
                if not await lease.renew():
                    log.warning("rules: the leadership lapsed")
                    self.stats.leader = False
                    return
                renewed = time.monotonic()
            if pending:
                _, entries, *_ = await client.xautoclaim(
                    STREAM, GROUP, self.origin, min_idle_time=0, start_id="0-0", count=READ_COUNT
                )
                pending = bool(entries)
                self.stats.claimed += len(entries)
            else:
                answer = await client.xreadgroup(GROUP, self.origin, {STREAM: ">"},
                                                 count=READ_COUNT, block=500)  # fmt: skip
                entries = answer[0][1] if answer else []
            for entry_id, fields in entries:
                await self._evaluate(client, entry_id, fields)

    async def _evaluate(self, client: Any, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        key = entry_id.decode()
        if b"b" not in fields:  # trimmed away meanwhile: nothing to do
            await client.xack(STREAM, GROUP, entry_id)
            return
        batch = _decode(fields[b"b"])
        alerts = await run_in_threadpool(self.live.evaluate, batch, self.crops, key=key)
        self.stats.evaluated += 1
        for alert in alerts:
            publish_alert(self.bus, alert)
        if b"r" in fields:
            reply = fields[b"r"].decode()
            payload = "[" + ",".join(a.model_dump_json() for a in alerts) + "]"
            async with client.pipeline(transaction=False) as pipe:
                pipe.rpush(reply, payload)
                pipe.expire(reply, ANSWER_KEPT_S)
                await pipe.execute()
        await client.xack(STREAM, GROUP, entry_id)

    async def _warm_up(self, client: Any) -> None:
        """Run the rules over the batches of the last `WARM_UP_S` seconds already evaluated,
        raising nothing."""
        since = f"{int((time.time() - WARM_UP_S) * 1000)}-0"
        entries = await client.xrange(STREAM, min=since, count=100_000)
        delivered: bytes | str = b"0-0"
        for group in await client.xinfo_groups(STREAM):
            info = {_text(k): v for k, v in group.items()}
            if _text(info["name"]) == GROUP:
                delivered = info["last-delivered-id"]

        def done_batches() -> Iterator[list[Observation]]:
            last = stream_key(_text(delivered))
            for entry_id, fields in entries:
                if stream_key(_text(entry_id)) <= last and b"b" in fields:
                    yield _decode(fields[b"b"])

        count = await run_in_threadpool(self.live.warm_up, list(done_batches()))
        self.stats.warmed_up += count
        log.info("rules: warmed up on %d observation(s) of the last %.0f s", count, WARM_UP_S)

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
