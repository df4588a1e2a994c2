"""In-process publish/subscribe bus: topic → subscribers, each with a bounded asyncio queue.

A slow subscriber never slows a publisher: when its queue is full a message is dropped and
counted per topic, the oldest of the stale kinds first (`STALE_TOPICS`: entity positions,
camera poses, drone telemetry, which a newer message of the same kind supersedes); an alert (or
any other topic) is dropped, oldest first, only when the queue holds nothing else. `EventBus` is
the small interface a Redis Streams bus would implement to replace it. Publish and subscribe
from the event loop's thread.

Entity updates can also be taken coalesced (topic ``entities``): the bus gathers the latest
state per entity id and, at most every ``flush_s`` seconds (longer under load: the pause after
a batch of n entities is n / ``entity_rate`` seconds, at most ``max_flush_s``, so each
subscriber gets at most about ``entity_rate`` entity records a second however many
observations arrive — more than a wall display can draw), offers each such subscriber one
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
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from server.topics import STALE_TOPICS, Topic


@dataclass(frozen=True)
class Message:
    """One message on the bus: ``{"topic": ..., "payload": ...}`` on the wire, plus ``"id"``
    (the stream id a client may resume from) when it came through a shared stream; `remote`
    when another process published it."""

    topic: str
    payload: Any
    id: str | None = None
    remote: bool = False

    def data(self) -> Any:
        """The payload as Python data (a `RawMessage` parses its JSON text)."""
        return self.payload

    def to_dict(self) -> dict[str, Any]:
        data = {"topic": self.topic, "payload": self.payload}
        if self.id is not None:
            data["id"] = self.id
        return data

    @cached_property
    def text(self) -> str:
        """The wire form as compact JSON, serialised once however many subscribers send it."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


_ids = itertools.count(1)


class RawMessage(Message):
    """A message built from its payload's JSON text (``payload`` is None: it is never parsed
    back); ``text`` is the wire form."""

    def __init__(
        self, topic: str, payload_json: str, *, id: str | None = None, remote: bool = False
    ) -> None:
        super().__init__(topic, None, id, remote)
        tail = "" if id is None else f',"id":{json.dumps(id)}'
        self.__dict__["text"] = f'{{"topic":{json.dumps(topic)},"payload":{payload_json}{tail}}}'
        self.__dict__["payload_json"] = payload_json

    def data(self) -> Any:
        return json.loads(self.__dict__["payload_json"])


class EntityBatch:
    """Entity records by id (JSON text each), the latest per id; its message is built once."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records
        self._message: RawMessage | None = None

    def __len__(self) -> int:
        return len(self.records)

    def message(self) -> RawMessage:
        if self._message is None:
            self._message = RawMessage(Topic.ENTITIES, "[" + ",".join(self.records.values()) + "]")
        return self._message


class MessageQueue:
    """A bounded FIFO of messages that, when full, makes room by dropping the oldest message of a
    `STALE_TOPICS` kind, else the oldest of all. Every operation is O(1)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[int, Message] = OrderedDict()
        self._stale: deque[int] = deque()  # keys of the stale messages, oldest first
        self._keys = itertools.count()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def put(self, message: Message) -> Message | None:
        """Append `message`; return the message dropped to make room, if any."""
        dropped = None
        if self.full():
            key = self._stale.popleft() if self._stale else next(iter(self._items))
            dropped = self._items.pop(key)
        key = next(self._keys)
        self._items[key] = message
        if message.topic in STALE_TOPICS:
            self._stale.append(key)
        return dropped

    def get_nowait(self) -> Message:
        """Remove and return the oldest message (IndexError when empty)."""
        if not self._items:
            raise IndexError("empty message queue")
        key, message = self._items.popitem(last=False)
        if self._stale and self._stale[0] == key:
            self._stale.popleft()
        return message


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue. ``dropped`` counts messages (and, for ``entities`` subscribers,
    pending entity records) lost to a full queue, ``dropped_by_topic`` the same per topic
    (``entities`` for entity records); ``coalesced`` counts entity updates superseded by a newer
    one of the same entity before they were sent."""

    topics: frozenset[Topic]
    maxsize: int
    max_entities: int = 20_000
    own: bool = False  # only messages this process published (e.g. webhook forwarding)
    queue: MessageQueue = field(init=False)
    dropped: int = 0
    dropped_by_topic: Counter[str] = field(default_factory=Counter)
    coalesced: int = 0
    sent: int = 0
    id: int = field(default_factory=lambda: next(_ids))
    _batch: EntityBatch | None = field(default=None, init=False)
    _shared: bool = field(default=False, init=False)
    _wake: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        self.queue = MessageQueue(self.maxsize)
        self._wake = asyncio.Event()

    @property
    def pending_entities(self) -> int:
        return 0 if self._batch is None else len(self._batch)

    def offer(self, message: Message) -> None:
        """Queue a message; when full, drop one as `MessageQueue` chooses (and count it)."""
        dropped = self.queue.put(message)
        if dropped is not None:
            self.dropped += 1
            self.dropped_by_topic[dropped.topic] += 1
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
                self.dropped_by_topic[Topic.ENTITIES] += excess
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
        """Counters for monitoring: id, topics, queued, pending entities, sent, dropped (in all
        and per topic), coalesced."""
        return {
            "id": self.id, "topics": sorted(self.topics), "queued": self.queue.qsize(),
            "pending_entities": self.pending_entities, "sent": self.sent,
            "dropped": self.dropped, "dropped_by_topic": dict(self.dropped_by_topic),
            "coalesced": self.coalesced,
        }  # fmt: skip


class EventBus(Protocol):
    def publish(self, topic: Topic, payload: Any) -> int: ...

    def publish_entities(self, records: Iterable[tuple[str, str]]) -> None: ...

    def wants(self, topic: Topic) -> bool: ...

    def subscribe(
        self, topics: Iterable[Topic], maxsize: int | None = ..., *, own: bool = ...
    ) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


class LocalBus:
    """The single-process `EventBus`. Entity batches for ``entities`` subscribers go out at
    most every `flush_s` seconds (needs a running event loop; without one, at once)."""

    def __init__(
        self,
        default_maxsize: int = 1000,
        flush_s: float = 0.15,
        *,
        entity_rate: float = 2_000.0,
        max_flush_s: float = 1.0,
    ) -> None:
        self.default_maxsize = default_maxsize
        self.flush_s, self.entity_rate, self.max_flush_s = flush_s, entity_rate, max_flush_s
        self._pause = flush_s  # seconds from the last flush to the next
        self._subs: set[Subscription] = set()
        self.published = 0
        self._pending: dict[str, str] = {}
        self._coalesced = 0
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.gone = {"dropped": 0, "coalesced": 0, "sent": 0, "subscribers": 0}
        self.gone_dropped_by_topic: Counter[str] = Counter()

    def publish_entities(self, records: Iterable[tuple[str, str]]) -> None:
        """Offer entity records (id, JSON text of the ``entity`` payload) to ``entities``
        subscribers, coalesced and rate-capped (see the module docstring)."""
        if not self.wants(Topic.ENTITIES):
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
        wait = self._last_flush + self._pause - time.monotonic()
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
        self._pause = min(max(self.flush_s, len(batch) / self.entity_rate), self.max_flush_s)
        receivers = [sub for sub in self._subs if Topic.ENTITIES in sub.topics]
        for sub in receivers:
            sub.offer_entities(batch)
            sub.coalesced += self._coalesced
        self._coalesced = 0
        self.published += 1
        return len(receivers)

    def publish(self, topic: Topic, payload: Any) -> int:
        """Offer a message to every subscriber of `topic`; return how many got it."""
        return self.deliver(Message(topic, payload))

    def deliver(self, message: Message) -> int:
        """Offer a built message to every subscriber of its topic (a remote one not to those
        that take only their own process's); return how many got it."""
        receivers = [sub for sub in self._subs if message.topic in sub.topics
                     and not (sub.own and message.remote)]  # fmt: skip
        for sub in receivers:
            sub.offer(message)
        self.published += 1
        return len(receivers)

    def subscribe(
        self, topics: Iterable[Topic], maxsize: int | None = None, *, own: bool = False
    ) -> Subscription:
        """A new subscriber of `topics` (queue of `maxsize`); `own`: only messages published
        by this process (with a shared stream, every process sees every message)."""
        sub = Subscription(frozenset(topics), maxsize or self.default_maxsize, own=own)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subs:
            self._subs.discard(subscription)
            for key in ("dropped", "coalesced", "sent"):
                self.gone[key] += getattr(subscription, key)
            self.gone_dropped_by_topic.update(subscription.dropped_by_topic)
            self.gone["subscribers"] += 1

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def wants(self, topic: Topic) -> bool:
        """Whether any subscriber takes `topic` (to skip building unwanted payloads)."""
        return any(topic in sub.topics for sub in self._subs)

    def stats(self) -> dict[str, Any]:
        """Bus counters: messages published, each current subscriber's counters, totals over
        current and departed subscribers (drops also per topic)."""
        clients = sorted((sub.stats() for sub in self._subs), key=lambda c: c["id"])
        totals: dict[str, Any] = {key: self.gone[key] + sum(c[key] for c in clients)
                                  for key in ("dropped", "coalesced", "sent")}  # fmt: skip
        by_topic = Counter(self.gone_dropped_by_topic)
        for sub in self._subs:
            by_topic.update(sub.dropped_by_topic)
        totals["dropped_by_topic"] = dict(by_topic)
        return {
            "published": self.published, "subscribers": len(clients),
            "departed": self.gone["subscribers"], "flush_s": self.flush_s,
            "totals": totals, "clients": clients,
        }  # fmt: skip
