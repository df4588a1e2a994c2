"""Coalesced entity updates on the bus and on /ws/live: latest state per entity at a capped
rate, alerts before entity batches, bounded pending entities with a drop counter, per-socket
topics (``?topics=alerts``), a full legacy queue dropping stale kinds before alerts, the
counters at GET /api/live/stats, and the in-memory picker agreeing with the catalog's pick."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_workspace as tiny
from servers import TOKENS, LiveServer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from scenes.routing import Picker, element_at
from server.bus import LocalBus
from server.topics import Topic
from twin.catalog import Catalog


def records(**states: int) -> list[tuple[str, str]]:
    return [(key, json.dumps({"id": key, "n": n})) for key, n in states.items()]


def test_entities_are_coalesced_rate_capped_and_come_after_alerts() -> None:
    async def scenario() -> None:
        bus = LocalBus(flush_s=0.1)
        sub = bus.subscribe([Topic.ENTITIES, Topic.ALERT])
        legacy = bus.subscribe([Topic.ENTITY])
        bus.publish_entities(records(a=1, b=1))  # first batch goes out at once
        bus.publish_entities(records(a=2))
        bus.publish_entities(records(a=3))  # within flush_s: held, a=2 superseded
        assert bus.publish(Topic.ALERT, {"id": "x"}) == 1
        assert (await sub.get()).topic == "alert"  # alerts first
        first = await sub.get()
        assert first.topic == "entities" and json.loads(first.text)["payload"] == [
            {"id": "a", "n": 1}, {"id": "b", "n": 1}]  # fmt: skip
        loop = asyncio.get_running_loop()
        start = loop.time()
        second = json.loads((await asyncio.wait_for(sub.get(), 1.0)).text)
        assert loop.time() - start >= 0.05  # waited for the next flush
        assert second == {"topic": "entities", "payload": [{"id": "a", "n": 3}]}
        assert sub.coalesced == 1 and sub.dropped == 0 and sub.sent == 3
        assert legacy.queue.empty()  # `entity` subscribers get only what publish() sends

    asyncio.run(scenario())


def test_big_entity_batches_stretch_the_pause_before_the_next() -> None:
    """Under load the pause after a batch of n entities is n / entity_rate seconds (capped), so
    a subscriber gets about entity_rate records a second however fast observations come."""

    async def scenario() -> None:
        bus = LocalBus(flush_s=0.01, entity_rate=100.0, max_flush_s=0.5)
        sub = bus.subscribe([Topic.ENTITIES])
        loop = asyncio.get_running_loop()
        bus.publish_entities(records(**{f"e{i}": 1 for i in range(30)}))  # out at once
        assert len(json.loads((await sub.get()).text)["payload"]) == 30
        start = loop.time()
        bus.publish_entities(records(e0=2))
        await asyncio.wait_for(sub.get(), 2.0)
        assert loop.time() - start >= 0.25  # 30 / 100 s, not flush_s
        start = loop.time()
        bus.publish_entities(records(**{f"e{i}": 3 for i in range(500)}))
        assert len(json.loads((await asyncio.wait_for(sub.get(), 2.0)).text)["payload"]) == 500
        assert 0.0 <= loop.time() - start < 0.1  # after a 1-entity batch: flush_s
        start = loop.time()
        bus.publish_entities(records(e0=4))
        await asyncio.wait_for(sub.get(), 2.0)
        assert 0.45 <= loop.time() - start < 1.0  # 500 / 100 s capped at max_flush_s

    asyncio.run(scenario())


def test_a_slow_subscriber_merges_batches_and_drops_beyond_its_bound() -> None:
    async def scenario() -> None:
        bus = LocalBus(flush_s=0.0, max_flush_s=0.0)
        fast, slow = bus.subscribe([Topic.ENTITIES]), bus.subscribe([Topic.ENTITIES])
        slow.max_entities = 3
        bus.publish_entities(records(a=1, b=1))
        shared = await fast.get()
        bus.publish_entities(records(a=2, c=1, d=1))
        assert (await fast.get()).payload is None
        # The slow one never read: one pending batch, latest per id, oldest (a... b) dropped.
        assert slow.pending_entities == 3 and slow.coalesced == 1 and slow.dropped == 1
        payload = json.loads((await slow.get()).text)["payload"]
        assert payload == [{"id": "a", "n": 2}, {"id": "c", "n": 1}, {"id": "d", "n": 1}]
        assert shared.text.startswith('{"topic":"entities"')
        stats = bus.stats()
        assert stats["totals"]["dropped"] == 1 and len(stats["clients"]) == 2
        bus.unsubscribe(slow)
        assert bus.stats()["totals"]["dropped"] == 1 and bus.stats()["departed"] == 1

    asyncio.run(scenario())


def test_alerts_are_never_dropped_for_entities() -> None:
    async def scenario() -> None:
        bus = LocalBus(flush_s=0.0, max_flush_s=0.0)
        sub = bus.subscribe([Topic.ENTITIES, Topic.ALERT], maxsize=5)
        for i in range(5):
            bus.publish(Topic.ALERT, {"n": i})
            bus.publish_entities(records(**{f"e{i}": i}))
        assert sub.dropped == 0 and sub.queue.qsize() == 5 and sub.pending_entities == 5
        assert [(await sub.get()).payload["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
        assert (await sub.get()).topic == "entities"

    asyncio.run(scenario())


def test_a_full_legacy_queue_drops_stale_kinds_before_alerts() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        legacy = bus.subscribe([Topic.ENTITY, Topic.ALERT, Topic.CAMERA, Topic.DRONE], maxsize=4)
        for n, topic in enumerate(
            [Topic.ALERT, Topic.ENTITY, Topic.CAMERA, Topic.ALERT, Topic.DRONE, Topic.ALERT]
        ):
            bus.publish(topic, {"n": n})  # full at n=4: drops entity 1, then camera 2
        bus.publish(Topic.ALERT, {"n": 6})  # drops drone 4, the last stale one
        bus.publish(Topic.ALERT, {"n": 7})  # nothing but alerts: the oldest alert goes
        assert legacy.dropped == 4 and legacy.queue.qsize() == 4
        assert legacy.dropped_by_topic == {"entity": 1, "camera": 1, "drone": 1, "alert": 1}
        assert [(await legacy.get()).payload["n"] for _ in range(4)] == [3, 5, 6, 7]
        bus.unsubscribe(legacy)
        totals = bus.stats()["totals"]
        assert totals["dropped"] == 4 and totals["dropped_by_topic"]["alert"] == 1

    asyncio.run(scenario())


def test_picker_matches_catalog_pick(tiny_ws_path: Path) -> None:
    catalog = Catalog(tiny_ws_path / "catalog.sqlite")
    picker = Picker(catalog)
    rng = random.Random(7)
    lon0, lat0 = tiny.INSIDE
    places = [tiny.INSIDE, tiny.OUTSIDE] + [
        (lon0 + rng.uniform(-0.003, 0.003), lat0 + rng.uniform(-0.003, 0.003)) for _ in range(200)
    ]
    found = [picker.element_at(lon, lat) for lon, lat in places]
    assert found == [element_at(catalog, lon, lat) for lon, lat in places]
    assert found[0] == tiny.LANE_ID and len(set(found)) >= 3


@pytest.fixture(scope="module")
def tiny_ws_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny-bus") / "ws")


def ws(server: LiveServer, topics: str) -> ClientConnection:
    base = server.url.replace("http://", "ws://")
    return connect(f"{base}/ws/live?token={TOKENS['viewer']}&topics={topics}")


def messages_until(conn: ClientConnection, topic: str) -> list[dict]:
    seen: list[dict] = []
    while not seen or seen[-1]["topic"] != topic:
        seen.append(json.loads(conn.recv(timeout=10)))
    return seen


def test_socket_topics_and_stats(
    tiny_ws_path: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws_path)
    ingest, viewer = server.client("ingest"), server.client("viewer")
    obs = {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": "7",
           "lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1]}  # fmt: skip
    with ws(server, "alerts") as alerts_only, ws(server, "entities,alert") as batched:
        assert messages_until(alerts_only, "ready")[-1]["payload"] == {
            "entities": 0,
            "alerts": 0,
            "truncated": False,
        }
        assert [m["topic"] for m in messages_until(batched, "ready")] == ["entities", "ready"]
        far = {**obs, "track_id": "far", "lon": tiny.OUTSIDE[0], "lat": tiny.OUTSIDE[1]}
        body = ingest.post("/api/observations", json={"observations": [obs, far]}).json()
        [alert_id] = body["alerts"]
        assert messages_until(alerts_only, "alert")[-1]["payload"]["id"] == alert_id
        got = messages_until(batched, "entities")
        assert got[0]["topic"] == "alert"  # the alert went out before the entity batch
        ids = {e["id"] for e in got[-1]["payload"]}
        assert ids == {f"{tiny.CAMERA_ID}/7", f"{tiny.CAMERA_ID}/far"}
        stats = viewer.get("/api/live/stats")
        assert stats.status_code == 200
        clients = stats.json()["clients"]
        assert sorted(c["topics"] for c in clients) == [["alert"], ["alert", "entities"]]
        assert all(c["dropped"] == 0 for c in clients)
    assert server.client().get("/api/live/stats").status_code == 401
    with ws(server, "nope") as bad, pytest.raises(ConnectionClosed) as closed:
        bad.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


def slow_legacy_socket(server: LiveServer) -> ClientConnection:
    """A default-topics socket that reads only when asked: a 4 KiB receive window, one frame
    buffered by the client, no compression, no pings (it would not answer them in time)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    uri = f"ws://{host}:{port}/ws/live?token={TOKENS['viewer']}"
    return connect(uri, sock=sock, max_queue=1, compression=None, ping_interval=None)


def test_a_slow_legacy_client_gets_every_alert_while_entities_are_dropped(
    tiny_ws_path: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws_path)
    # Padded updates (8 KB each) fill the socket buffers (a few MB) and the queue (1000) fast.
    rounds, far_per_round, pad = 6, 400, "x" * 8000
    with slow_legacy_socket(server) as slow, server.client("ingest") as ingest:
        assert messages_until(slow, "ready")[-1]["payload"] == {
            "entities": 0,
            "alerts": 0,
            "truncated": False,
        }
        raised = []
        for i in range(rounds):  # one car in the lane (an alert) and many outside, per round
            lon, lat = tiny.INSIDE
            lane = {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID,
                    "track_id": f"lane-{i}", "lon": lon, "lat": lat}  # fmt: skip
            lon, lat = tiny.OUTSIDE
            far = [{**lane, "track_id": f"far-{i}-{j}", "lon": lon, "lat": lat,
                    "attributes": {"pad": pad}} for j in range(far_per_round)]  # fmt: skip
            body = ingest.post("/api/observations", json={"observations": [lane, *far]})
            assert body.status_code == 200, body.text
            raised += body.json()["alerts"]
        assert len(raised) == rounds
        [client] = server.client("viewer").get("/api/live/stats").json()["clients"]
        assert client["dropped_by_topic"].get("entity", 0) > 0, client
        assert "alert" not in client["dropped_by_topic"]

        received: Counter[str] = Counter()
        alerts: list[dict] = []
        while len(alerts) < rounds:  # the last alert is the last message published
            message = json.loads(slow.recv(timeout=10))
            received[message["topic"]] += 1
            if message["topic"] == "alert":
                alerts.append(message["payload"]["id"])
    assert alerts == raised  # every alert, in order
    stats = server.client("viewer").get("/api/live/stats").json()
    dropped = stats["totals"]["dropped_by_topic"]
    assert set(dropped) == {"entity"} and stats["totals"]["dropped"] == dropped["entity"]
    # Every entity update was either sent or dropped and counted.
    assert received["entity"] + dropped["entity"] == rounds * (far_per_round + 1)
