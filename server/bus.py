"""In-process publish/subscribe bus: topic → subscribers, each with a bounded asyncio queue.

A slow subscriber never slows a publisher: when its queue is full the oldest message is dropped
and counted. `EventBus` is the small interface a Redis Streams bus would implement to replace it.
Publish and subscribe from the event loop's thread.

Entity updates can also be taken coalesced (topic ``entities``): the bus gathers the latest
state per entity id and, at most every ``flush_s`` seconds, offers each such subscriber one
``{"topic": "entities", "payload": [entity, ...]}`` message (serialised once for all who keep
up). A subscriber still holding an unsent batch gets the new one merged into it (latest state
per id wins; superseded updates are counted as ``coalesced``), so entity batches never take
queue room from alerts, and a slow subscriber holds at most `max_entities` pending entities
(beyond that the oldest are dropped and counted).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """One message on the bus: ``{"topic": ..., "payload": ...}`` on the wire."""

    topic: str
    payload: Any

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "payload": self.payload}

    @cached_property
    def text(self) -> str:
        """The wire form as compact JSON, serialised once however many subscribers send it."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


ENTITIES = "entities"
_ids = itertools.count(1)


class RawMessage(Message):
    """A message built from its payload's JSON text (``payload`` is None: it is never parsed
    back); ``text`` is the wire form."""

    def __init__(self, topic: str, payload_json: str) -> None:
        super().__init__(topic, None)
        self.__dict__["text"] = f'{{"topic":{json.dumps(topic)},"payload":{payload_json}}}'


class EntityBatch:
    """Entity records by id (JSON text each), the latest per id; its message is built once."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records
        self._message: RawMessage | None = None

    def __len__(self) -> int:
        return len(self.records)

    def message(self) -> RawMessage:
        if self._message is None:
            self._message = RawMessage(ENTITIES, "[" + ",".join(self.records.values()) + "]")
        return self._message


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue. ``dropped`` counts messages (and, for ``entities`` subscribers,
    pending entity records) lost to a full queue, oldest first; ``coalesced`` counts entity
    updates superseded by a newer one of the same entity before they were sent."""

    topics: frozenset[str]
    maxsize: int
    max_entities: int = 20_000
    queue: asyncio.Queue[Message] = field(init=False)
    dropped: int = 0
    coalesced: int = 0
    sent: int = 0
    id: int = field(default_factory=lambda: next(_ids))
    _batch: EntityBatch | None = field(default=None, init=False)
    _shared: bool = field(default=False, init=False)
    _wake: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.maxsize)
        self._wake = asyncio.Event()

    @property
    def pending_entities(self) -> int:
        return 0 if self._batch is None else len(self._batch)

    def offer(self, message: Message) -> None:
        """Queue a message, dropping the oldest one when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)
        self._wake.set()

    def offer_entities(self, batch: EntityBatch) -> None:
        """Take a batch of entity records: kept as is (shared with other subscribers) when
        nothing is pending, else merged into the pending one."""
        if self._batch is None:
            self._batch, self._shared = batch, True
        else:
            records = dict(self._batch.records) if self._shared else self._batch.records
            superseded = records.keys() & batch.records.keys()
            for key in superseded:  # updated entities move to the newest end
                del records[key]
            records.update(batch.records)
            self.coalesced += len(superseded)
            excess = len(records) - self.max_entities
            if excess > 0:
                for key in list(itertools.islice(records, excess)):
                    del records[key]
                self.dropped += excess
            self._batch, self._shared = EntityBatch(records), False
        self._wake.set()

    async def get(self) -> Message:
        """The next message: queued ones (alerts and others) first, then the entity batch."""
        while True:
            if not self.queue.empty():
                message = self.queue.get_nowait()
                break
            if self._batch is not None:
                message = self._batch.message()
                self._batch = None
                break
            self._wake.clear()
            await self._wake.wait()
        self.sent += 1
        return message

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: id, topics, queued, pending entities, sent, dropped,
        coalesced."""
        return {
            "id": self.id, "topics": sorted(self.topics), "queued": self.queue.qsize(),
            "pending_entities": self.pending_entities, "sent": self.sent,
            "dropped": self.dropped, "coalesced": self.coalesced,
        }  # fmt: skip


class EventBus(Protocol):
    def publish(self, topic: str, payload: Any) -> int: ...

    def subscribe(self, topics: Iterable[str], maxsize: int = ...) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


class LocalBus:
    """The single-process `EventBus`. Entity batches for ``entities`` subscribers go out at
    most every `flush_s` seconds (needs a running event loop; without one, at once)."""

    def __init__(self, default_maxsize: int = 1000, flush_s: float = 0.15) -> None:
        self.default_maxsize = default_maxsize
        self.flush_s = flush_s
        self._subs: set[Subscription] = set()
        self.published = 0
        self._pending: dict[str, str] = {}
        self._coalesced = 0
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.gone = {"dropped": 0, "coalesced": 0, "sent": 0, "subscribers": 0}

    def publish_entities(self, records: Iterable[tuple[str, str]]) -> None:
        """Offer entity records (id, JSON text of the ``entity`` payload) to ``entities``
        subscribers, coalesced and rate-capped (see the module docstring)."""
        if not self.wants(ENTITIES):
            return
        pending = self._pending
        before = len(pending)
        count = 0
        for entity_id, text in records:
            pending[entity_id] = text
            count += 1
        self._coalesced += before + count - len(pending)
        if not pending or self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        wait = self._last_flush + self.flush_s - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._timer = loop.call_later(wait, self.flush)

    def flush(self) -> int:
        """Offer the entity records gathered so far to every ``entities`` subscriber now;
        return how many subscribers got them."""
        self._timer = None
        self._last_flush = time.monotonic()
        if not self._pending:
            return 0
        batch = EntityBatch(self._pending)
        self._pending = {}
        receivers = [sub for sub in self._subs if ENTITIES in sub.topics]
        for sub in receivers:
            sub.offer_entities(batch)
            sub.coalesced += self._coalesced
        self._coalesced = 0
        self.published += 1
        return len(receivers)

    def publish(self, topic: str, payload: Any) -> int:
        """Offer a message to every subscriber of `topic`; return how many got it."""
        message = Message(topic, payload)
        receivers = [sub for sub in self._subs if topic in sub.topics]
        for sub in receivers:
            sub.offer(message)
        self.published += 1
        return len(receivers)

    def subscribe(self, topics: Iterable[str], maxsize: int | None = None) -> Subscription:
        sub = Subscription(frozenset(topics), maxsize or self.default_maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subs:
            self._subs.discard(subscription)
            for key in ("dropped", "coalesced", "sent"):
                self.gone[key] += getattr(subscription, key)
            self.gone["subscribers"] += 1

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def wants(self, topic: str) -> bool:
        """Whether any subscriber takes `topic` (to skip building unwanted payloads)."""
        return any(topic in sub.topics for sub in self._subs)

    def stats(self) -> dict[str, Any]:
        """Bus counters: messages published, each current subscriber's counters, totals over
        current and departed subscribers."""
        clients = sorted((sub.stats() for sub in self._subs), key=lambda c: c["id"])
        totals = {key: self.gone[key] + sum(c[key] for c in clients)
                  for key in ("dropped", "coalesced", "sent")}  # fmt: skip
        return {
            "published": self.published, "subscribers": len(clients),
            "departed": self.gone["subscribers"], "flush_s": self.flush_s,
            "totals": totals, "clients": clients,
        }  # fmt: skip
