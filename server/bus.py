"""In-process publish/subscribe bus: topic → subscribers, each with a bounded asyncio queue.

A slow subscriber never slows a publisher: when its queue is full the oldest message is dropped
and counted. `EventBus` is the small interface a Redis Streams bus would implement to replace it.
Publish and subscribe from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
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


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue. ``dropped`` counts messages lost to a full queue (oldest first)."""

    topics: frozenset[str]
    maxsize: int
    queue: asyncio.Queue[Message] = field(init=False)
    dropped: int = 0

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.maxsize)

    def offer(self, message: Message) -> None:
        """Queue a message, dropping the oldest one when full."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)

    async def get(self) -> Message:
        return await self.queue.get()


class EventBus(Protocol):
    def publish(self, topic: str, payload: Any) -> int: ...

    def subscribe(self, topics: Iterable[str], maxsize: int = ...) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


class LocalBus:
    """The single-process `EventBus`."""

    def __init__(self, default_maxsize: int = 1000) -> None:
        self.default_maxsize = default_maxsize
        self._subs: set[Subscription] = set()
        self.published = 0

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
        self._subs.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
