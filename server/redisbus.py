"""The bus between server processes: one Redis stream (``TWIN_BUS_URL``), so a WebSocket client
of any process gets every message, whichever process published it.

Each process keeps its subscribers (its WebSocket clients) on a `LocalBus`. What it publishes
goes out on the stream (``XADD``, trimmed to about `replay` entries); one reader task per
process reads the stream and hands every message, its own included, to its local bus with its
stream id — so all processes deliver the same messages in the same order, and a client that
reconnects (to any process) with the last id it saw gets what it missed (`replay_since`).

Entity updates travel as batches (one entry per published batch, ids and JSON texts joined by
newlines; JSON text holds no raw newline), coalesced again by each local bus; per-entity
``entity`` messages are rebuilt from them for the local clients that ask for them. Publishing
never waits: messages wait in a bounded queue (stale kinds dropped first, counted) while the
writer is cut off from Redis, which it retries with backoff; the reader resumes from the last
id it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.bus import LocalBus, Message, MessageQueue, RawMessage, Subscription
from server.topics import Topic

log = logging.getLogger("twin.server")
STREAM = "twin:bus"
OUTBOX = 20_000  # messages waiting for the stream while Redis is away
BATCH = 500  # most entries one XADD pipeline or XREAD takes
BLOCK_MS = 1000
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Outgoing(Message):
    """A message waiting for the stream: its topic and payload as JSON text (an entity batch:
    the records' texts joined by newlines, with their ids likewise)."""

    payload_text: str
    ids: str | None

    def __init__(self, topic: str, payload_text: str, ids: str | None = None) -> None:
        super().__init__(topic, None)
        self.__dict__.update(payload_text=payload_text, ids=ids)


class RedisBus:
    """The `EventBus` over a Redis stream at `url` (see the module docstring)."""

    def __init__(
        self, url: str, *, replay: int, local: LocalBus | None = None, stream: str = STREAM
    ) -> None:
        self.url, self.replay, self.stream = url, replay, stream
        self.local = local or LocalBus()
        self.origin = uuid.uuid4().hex[:12]
        self._outbox = MessageQueue(OUTBOX)
        self._wake = asyncio.Event()
        self._redis: Any = None  # redis.asyncio.Redis (its stubs type replies loosely)
        self._tasks: list[asyncio.Task[None]] = []
        self.last_id = "0-0"  # of the last entry read (resolved at start)
        self.counters = {"sent": 0, "received": 0, "outbox_dropped": 0, "errors": 0}
        self.connected = False
        self.stream_info: dict[str, Any] = {}
        self._stopping = False

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start the writer and reader; the reader starts at the stream's end."""
        self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        self.last_id = "0-0"  # a stream not made yet: everything in it will be new
        with contextlib.suppress(RedisError, OSError):
            info = await self._redis.xinfo_stream(self.stream)
            self.last_id = _text(info["last-generated-id"])
        self._tasks = [asyncio.create_task(self._write(), name="bus-writer"),
                       asyncio.create_task(self._read(), name="bus-reader")]  # fmt: skip

    async def stop(self) -> None:
        """Send what waits (a second at most), then stop."""
        deadline = time.monotonic() + 1.0
        while not self._outbox.empty() and self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self._stopping = True  # a loop that swallowed the cancel (redis-py may) ends anyway
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=5)
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()

    # -- publishing ------------------------------------------------------------------------

    def _send(self, message: _Outgoing) -> None:
        if self._outbox.put(message) is not None:
            self.counters["outbox_dropped"] += 1
        self._wake.set()

    def publish(self, topic: Topic, payload: Any) -> int:
        """Put a message on the stream; how many local subscribers will get it."""
        self._send(_Outgoing(topic, json.dumps(payload, ensure_ascii=False, separators=(",", ":"))))
        return sum(1 for sub in self.local._subs if topic in sub.topics)

    def publish_entities(self, records: Iterable[tuple[str, str]]) -> None:
        """Put a batch of entity records (id, JSON text) on the stream as one entry."""
        pairs = list(records)
        if pairs:
            texts = "\n".join(t for _, t in pairs)
            self._send(_Outgoing(Topic.ENTITIES, texts, "\n".join(i for i, _ in pairs)))

    async def _write(self) -> None:
        attempt = 0
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            while not self._outbox.empty() and not self._stopping:
                batch = [self._outbox.get_nowait()
                         for _ in range(min(BATCH, self._outbox.qsize()))]  # fmt: skip
                try:
                    await self._xadd(batch)
                    attempt = 0
                    self.connected = True
                except (RedisError, OSError) as exc:
                    for message in batch:  # back in the queue, in order, for the next try
                        self._outbox.put(message)
                    self.counters["errors"] += 1
                    self.connected = False
                    wait = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                    attempt += 1
                    log.warning("bus: cannot reach Redis (%s); retrying in %.1f s", exc, wait)
                    await asyncio.sleep(wait)

    async def _xadd(self, batch: list[Message]) -> None:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for message in batch:
                assert isinstance(message, _Outgoing)
                fields = {"t": message.topic, "o": self.origin, "p": message.payload_text}
                if message.ids is not None:
                    fields["i"] = message.ids
                pipe.xadd(self.stream, fields, maxlen=self.replay, approximate=True)
            await pipe.execute()
        self.counters["sent"] += len(batch)

    # -- reading ---------------------------------------------------------------------------

    async def _read(self) -> None:
        attempt = 0
        last_info = 0.0
        while not self._stopping:
            try:
                assert self._redis is not None
                answer = await self._redis.xread(
                    {self.stream: self.last_id}, count=BATCH, block=BLOCK_MS
                )
                attempt = 0
                for _, entries in answer or []:
                    for entry_id, fields in entries:
                        self.last_id = _text(entry_id)
                        self._deliver(self.last_id, fields)
                if time.monotonic() - last_info > 1.0:
                    last_info = time.monotonic()
                    await self._refresh_info()
            except (RedisError, OSError) as exc:
                self.counters["errors"] += 1
                wait = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("bus: reading the stream failed (%s); again in %.1f s", exc, wait)
                await asyncio.sleep(wait)

    def _deliver(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        topic = _text(fields[b"t"])
        remote = _text(fields.get(b"o", b"")) != self.origin
        payload = _text(fields[b"p"])
        self.counters["received"] += 1
        if topic == Topic.ENTITIES:
            ids = _text(fields.get(b"i", b"")).split("\n")
            texts = payload.split("\n")
            self.local.publish_entities(zip(ids, texts, strict=True))
            if self.local.wants(Topic.ENTITY):
                for text in texts:
                    self.local.deliver(RawMessage(Topic.ENTITY, text, remote=remote))
            return
        self.local.deliver(RawMessage(topic, payload, id=entry_id, remote=remote))

    async def _refresh_info(self) -> None:
        assert self._redis is not None
        with contextlib.suppress(RedisError):
            info = await self._redis.xinfo_stream(self.stream)
            self.stream_info = {
                "length": int(info["length"]),
                "first_id": _text(info["first-entry"][0]) if info.get("first-entry") else None,
                "last_id": _text(info["last-generated-id"]),
            }

    async def replay_since(self, since: str, topics: Iterable[Topic]) -> tuple[list[Message], bool]:
        """The messages of `topics` after stream id `since` (entity batches aside: a client's
        snapshot has the entities), `replay` at most; and whether some may be missing (`since`
        is older than the stream's first entry). Raises ValueError for a malformed id."""
        if not _is_stream_id(since):
            raise ValueError(f"'{since}' is not a stream id")
        assert self._redis is not None
        wanted = set(topics)
        entries = await self._redis.xrange(self.stream, min=f"({since}", count=self.replay)
        first = await self._redis.xrange(self.stream, count=1)
        gap = bool(first) and stream_key(_text(first[0][0])) > stream_key(since)
        found: list[Message] = []
        for entry_id, fields in entries:
            topic = _text(fields[b"t"])
            if topic in wanted and topic != Topic.ENTITIES:
                found.append(RawMessage(topic, _text(fields[b"p"]), id=_text(entry_id)))
        return found, gap

    # -- the local side --------------------------------------------------------------------

    def subscribe(
        self, topics: Iterable[Topic], maxsize: int | None = None, *, own: bool = False
    ) -> Subscription:
        return self.local.subscribe(topics, maxsize, own=own)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.local.unsubscribe(subscription)

    @property
    def subscribers(self) -> int:
        return self.local.subscribers

    def wants(self, topic: Topic) -> bool:
        """Per-entity messages are rebuilt by each reader from the batches: never published
        one by one; other topics always go out (other processes' clients may want them)."""
        return topic != Topic.ENTITY

    def stats(self) -> dict[str, Any]:
        """The local bus's counters plus the stream's: its length and ids, messages sent and
        received, the outbox and what it dropped, errors, whether Redis answers."""
        stats = self.local.stats()
        stats["stream"] = {
            "key": self.stream, "replay": self.replay, "connected": self.connected,
            "outbox": self._outbox.qsize(), "last_read_id": self.last_id,
            **self.counters, **self.stream_info,
        }  # fmt: skip
        return stats


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream id (``ms-seq``) as numbers, in stream order."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _is_stream_id(value: str) -> bool:
    ms, sep, seq = value.partition("-")
    return ms.isdigit() and (not sep or seq.isdigit()) and len(value) <= 41
