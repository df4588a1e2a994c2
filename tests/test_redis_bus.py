"""The Redis Streams bus between server processes, against a real redis-server: two buses (as
two processes) on one stream — messages reach subscribers of both, in one order, with stream
ids; entity batches cross as batches; `own` subscribers see only their process's messages;
a client resumes from the last id it saw; Redis restarted mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bench.engines import Redis, redis_available
from server.bus import LocalBus, Subscription
from server.redisbus import RedisBus
from server.topics import Topic

pytestmark = pytest.mark.skipif(not redis_available(), reason="needs Debian redis-server")


async def take(sub: Subscription, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next `count` messages of `sub` as parsed wire JSON."""

    async def go() -> list[dict[str, Any]]:
        return [json.loads((await sub.get()).text) for _ in range(count)]

    return await asyncio.wait_for(go(), timeout)


@asynccontextmanager
async def two_buses(redis: Redis) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    """Two buses on one stream, as two server processes would have."""
    a = RedisBus(redis.url, replay=100, local=LocalBus(flush_s=0.01))
    b = RedisBus(redis.url, replay=100, local=LocalBus(flush_s=0.01))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


def run_with_two(redis: Redis, scenario: Callable[[RedisBus, RedisBus], Awaitable[None]]) -> None:
    async def main() -> None:
        async with two_buses(redis) as (a, b):
            await scenario(a, b)

    asyncio.run(main())


def test_messages_cross_processes_in_one_order(redis: Redis) -> None:
    async def scenario(a: RedisBus, b: RedisBus) -> None:
        on_a, on_b = (
            a.subscribe([Topic.ALERT, Topic.CAMERA]),
            b.subscribe([Topic.ALERT, Topic.CAMERA]),
        )
        a.publish(Topic.ALERT, {"id": "a1", "title": "告警"})
        b.publish(Topic.CAMERA, {"id": "camera:x", "heading": 12.5})
        a.publish(Topic.ALERT, {"id": "a2"})
        got_a, got_b = await take(on_a, 3), await take(on_b, 3)
        assert got_a == got_b  # the same messages, the same order, the same ids
        assert sorted(m["topic"] for m in got_a) == ["alert", "alert", "camera"]
        assert {"id": "a1", "title": "告警"} in [m["payload"] for m in got_a]
        ids = [m["id"] for m in got_a]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        stats = a.stats()["stream"]
        assert stats["sent"] == 2 and stats["received"] >= 3 and stats["connected"]

    run_with_two(redis, scenario)


def test_entity_batches_and_own_subscribers(redis: Redis) -> None:
    async def scenario(a: RedisBus, b: RedisBus) -> None:
        batches, singles = b.subscribe([Topic.ENTITIES]), b.subscribe([Topic.ENTITY])
        own = a.subscribe([Topic.ALERT], own=True)
        records = [(f"camera:x/{i}", json.dumps({"id": f"camera:x/{i}", "lon": 121.0 + i}))
                   for i in range(3)]  # fmt: skip
        a.publish_entities(records)
        [batch] = await take(batches, 1)
        assert batch["topic"] == "entities"
        assert [e["lon"] for e in batch["payload"]] == [121, 122, 123]
        assert [m["payload"]["id"] for m in await take(singles, 3)] == [r[0] for r in records]
        b.publish(Topic.ALERT, {"id": "from-b"})
        a.publish(Topic.ALERT, {"id": "from-a"})
        [mine] = await take(own, 1)
        assert mine["payload"]["id"] == "from-a"  # b's alert is not a's to forward
        await asyncio.sleep(0.3)
        assert own.queue.empty()

    run_with_two(redis, scenario)


def test_a_client_resumes_from_the_last_id_it_saw(redis: Redis) -> None:
    async def scenario(a: RedisBus, b: RedisBus) -> None:
        sub = b.subscribe([Topic.ALERT])
        a.publish(Topic.ALERT, {"id": "seen"})
        [seen] = await take(sub, 1)
        for n in range(3):
            a.publish(Topic.ALERT, {"id": f"missed-{n}"})
        a.publish_entities([("camera:x/1", '{"id":"camera:x/1"}')])
        await take(sub, 3)
        missed, gap = await b.replay_since(seen["id"], [Topic.ALERT])
        payloads = [json.loads(m.text)["payload"]["id"] for m in missed]
        assert payloads == ["missed-0", "missed-1", "missed-2"]
        assert not gap and all(m.id for m in missed)
        _, gap = await b.replay_since("1-0", [Topic.ALERT])
        assert gap  # older than anything kept: the client is told some may be missing
        with pytest.raises(ValueError):
            await b.replay_since("yesterday", [Topic.ALERT])

    run_with_two(redis, scenario)


def test_redis_restarted_mid_stream_loses_nothing(redis: Redis) -> None:
    async def scenario() -> None:
        bus = RedisBus(redis.url, replay=100)
        await bus.start()
        sub = bus.subscribe([Topic.ALERT])
        try:
            bus.publish(Topic.ALERT, {"id": "before"})
            await take(sub, 1)
            redis.stop()
            for n in range(5):
                bus.publish(Topic.ALERT, {"id": f"while-down-{n}"})
            await asyncio.sleep(1.0)
            assert bus.stats()["stream"]["outbox"] == 5 and not bus.connected
            redis.start()
            got = await take(sub, 5, timeout=30)
            assert [m["payload"]["id"] for m in got] == [f"while-down-{n}" for n in range(5)]
        finally:
            await bus.stop()

    asyncio.run(scenario())
