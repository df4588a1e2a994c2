"""Several server processes on real engines (bench/engines.py: PostgreSQL 15 + PostGIS and
Redis, started here): two `twin serve` processes on one workspace share the catalog, the live
store and the bus — an alert raised through one reaches a WebSocket client of the other and is
stored once; a crowd rule counts people whichever process took them; a client resumes from the
last stream id on the other process; kill -9 of one loses nothing acknowledged while the other
keeps serving; PostgreSQL restarted under load gives 503s, then recovers with nothing lost;
`twin serve --workers 2` serves, and more than one worker without the engines is refused."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import tiny_workspace as tiny
from paths import TWIN
from servers import TOKENS, TOKENS_ENV, LiveServer, ingest
from webhook_receiver import Receiver
from websockets.sync.client import ClientConnection, connect

from bench.common import free_port
from bench.engines import Postgres, Redis

CROWD_RULE = """
rules:
  - id: crowd-here
    title: Crowd in the lane
    type: count
    kinds: [person]
    zone: {element: "site:bund-lane"}
    min_count: 4
    window_s: 120
    cooldown_s: 600
"""


def start(ws: Path, env: dict[str, str], *args: str) -> LiveServer:
    port = free_port()
    log = open(ws.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - the process holds it
    process = subprocess.Popen(
        [TWIN, "serve", str(ws), "--port", str(port), *args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TWIN_TOKENS": TOKENS_ENV, **env},
    )  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", ws, process)
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, (ws.parent / f"server-{port}.log").read_text()
        try:
            if httpx.get(server.url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)


@pytest.fixture
def pair(
    tmp_path: Path, database: str, redis: Redis
) -> Iterator[tuple[LiveServer, LiveServer, dict[str, str]]]:
    """Two server processes on one workspace, one PostgreSQL database and one Redis."""
    ws = tiny.build(tmp_path / "ws")
    (tmp_path / "rules.yaml").write_text(CROWD_RULE)
    env = {"TWIN_DATABASE_URL": database, "TWIN_BUS_URL": redis.url,
           "TWIN_RULES": str(tmp_path / "rules.yaml")}  # fmt: skip
    a = start(ws, env)
    b = start(ws, env)
    yield a, b, env
    for server in (a, b):
        server.stop()


def person(track: str) -> dict[str, Any]:
    return {"kind": "person", "cls": "person", "source": tiny.CAMERA_ID, "track_id": track,
            "lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1]}  # fmt: skip


def receive(socket: ClientConnection, topic: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["topic"] == topic:
            return dict(message)


def ws_url(server: LiveServer, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"token": TOKENS["viewer"], **params}.items())
    return server.url.replace("http://", "ws://") + f"/ws/live?{query}"


def test_one_crowd_across_two_processes_reaches_both(
    pair: tuple[LiveServer, LiveServer, dict[str, str]], database: str
) -> None:
    a, b, _ = pair
    with connect(ws_url(b, topics="alert")) as socket:
        receive(socket, "ready")
        first = ingest(a, person("p1"), person("p2"))  # A alone sees two people
        second = ingest(b, person("p3"))  # B alone sees one
        assert first["alerts"] == [] and second["alerts"] == []
        third = ingest(a, person("p4"))  # four in all: the crowd, once
        [alert_id] = third["alerts"]
        pushed = receive(socket, "alert")  # a client of B gets the alert A's batch raised
        assert pushed["payload"]["id"] == alert_id and pushed["payload"]["rule"] == "crowd-here"
        assert pushed["payload"]["evidence"]["details"]["count"] == 4
        assert ingest(b, person("p5"))["alerts"] in ([], [alert_id])  # no second crowd
    with psycopg.connect(database) as db:
        rows = db.execute("SELECT id FROM alerts WHERE rule = 'crowd-here'").fetchall()
        stored = db.execute("SELECT count(*) FROM observations").fetchone()
    assert rows == [(alert_id,)] and stored == (5,)
    with b.client("viewer") as c:
        assert c.get(f"/api/elements/{tiny.BUILDING_ID}").status_code == 200  # catalog in PG
        stats = c.get("/api/live/stats").json()["stream"]
    assert stats["connected"] and stats["received"] >= 1


def test_a_client_resumes_on_the_other_process(
    pair: tuple[LiveServer, LiveServer, dict[str, str]],
) -> None:
    a, b, _ = pair
    with connect(ws_url(a, topics="alert,camera")) as socket:
        receive(socket, "ready")
        ingest(a, *(person(f"q{i}") for i in range(4)))
        seen = receive(socket, "alert")
        last_id = seen["id"]
    # While the client is away (its process could have died) the alert is acknowledged.
    with b.client("operator") as c:
        assert c.post(f"/api/alerts/{seen['payload']['id']}/ack").status_code == 200
    with connect(ws_url(b, topics="alert", since=last_id)) as socket:
        missed = receive(socket, "alert")
    assert missed["payload"]["status"] == "acknowledged" and missed["id"] > last_id


def test_app_settings_saved_through_one_process_apply_on_both(
    pair: tuple[LiveServer, LiveServer, dict[str, str]], database: str
) -> None:
    a, b, _ = pair
    settings = {
        "enabled": True,
        "parameters": {
            "zone": {"element": "site:bund-lane"},
            "min_count": 3,
            "for_s": 0,
            "window_s": 120,
        },
    }
    with a.client("admin") as c:
        assert c.put("/api/apps/crowd", json=settings).status_code == 200
    deadline = time.monotonic() + 10
    with b.client("viewer") as c:  # B reloads what A saved, whichever process leads the rules
        while c.get("/api/apps/crowd").json()["parameters"]["min_count"] != 3:
            assert time.monotonic() < deadline, "B kept the old settings"
            time.sleep(0.2)
    ingest(b, person("r1"))
    ingest(a, person("r2"))
    [alert_id] = ingest(b, person("r3"))["alerts"]  # three people: the retuned app, not the rule
    with psycopg.connect(database) as db:
        rows = db.execute("SELECT id, rule FROM alerts").fetchall()
    assert rows == [(alert_id, "crowd-gathering")]


def test_webhooks_post_each_alert_once_from_either_process(
    tmp_path: Path, database: str, redis: Redis
) -> None:
    """The rules leader publishes the alert, the process an operator acknowledges it on
    publishes the change: each record reaches the webhook once."""
    receiver = Receiver(fail_first=0)
    ws = tiny.build(tmp_path / "ws")
    (tmp_path / "rules.yaml").write_text(CROWD_RULE)
    env = {"TWIN_DATABASE_URL": database, "TWIN_BUS_URL": redis.url,
           "TWIN_RULES": str(tmp_path / "rules.yaml"),
           "TWIN_WEBHOOKS": json.dumps({"*": receiver.url}),
           "TWIN_WEBHOOK_SECRET": "s"}  # fmt: skip
    a, b = start(ws, env), start(ws, env)
    try:
        ingest(a, person("w1"), person("w2"))
        [alert_id] = ingest(b, person("w3"), person("w4"))["alerts"]
        with a.client("operator") as c:
            assert c.post(f"/api/alerts/{alert_id}/ack").status_code == 200
        deadline = time.monotonic() + 20
        while len(receiver.delivered()) < 2:
            assert time.monotonic() < deadline, receiver.delivered()
            time.sleep(0.1)
        time.sleep(1.0)
        records = receiver.delivered()
        assert [(r["id"], r["status"]) for r in records] == [
            (alert_id, "new"), (alert_id, "acknowledged")]  # fmt: skip
        assert records[0]["rule"] == "crowd-here"
    finally:
        a.stop()
        b.stop()
        receiver.close()


def test_kill_9_of_one_process_loses_nothing_acknowledged(
    pair: tuple[LiveServer, LiveServer, dict[str, str]], database: str
) -> None:
    a, b, _ = pair
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(server: LiveServer, prefix: str) -> None:
        n = 0
        with server.client("ingest") as c:
            while not stop.is_set():
                n += 1
                batch = [{**person(f"{prefix}{n}-{i}"), "lon": tiny.OUTSIDE[0],
                          "lat": tiny.OUTSIDE[1]} for i in range(20)]  # fmt: skip
                try:
                    reply = c.post("/api/observations", json={"observations": batch}, timeout=5)
                except httpx.HTTPError:
                    continue
                if reply.status_code == 200:
                    acknowledged.extend(reply.json()["ids"])

    threads = [threading.Thread(target=send, args=(s, p)) for s, p in ((a, "a"), (b, "b"))]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    a.stop(kill=True)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(20)
    assert httpx.get(b.url + "/healthz").status_code == 200  # the other keeps serving
    assert len(acknowledged) > 100
    with psycopg.connect(database) as db:
        stored = {r[0] for r in db.execute("SELECT id FROM observations").fetchall()}
    assert set(acknowledged) <= stored


def test_both_processes_updating_the_same_entities_never_fail(
    pair: tuple[LiveServer, LiveServer, dict[str, str]], database: str
) -> None:
    """Posters on both processes move the same 60 people, in opposite orders, back to back: the
    upserts of one entity from two transactions lock in one order (no deadlock, no 500)."""
    a, b, _ = pair
    statuses: list[int] = []
    tracks = [f"shared-{i}" for i in range(60)]

    def send(server: LiveServer, order: list[str]) -> None:
        with server.client("ingest") as c:
            for _ in range(15):
                batch = [{**person(track), "lon": tiny.OUTSIDE[0], "lat": tiny.OUTSIDE[1]}
                         for track in order]  # fmt: skip
                statuses.append(c.post("/api/observations", json={"observations": batch},
                                       timeout=30).status_code)  # fmt: skip

    orders = [tracks, tracks[::-1]]
    threads = [threading.Thread(target=send, args=(server, order))
               for server in (a, b) for order in orders]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 60, sorted(set(statuses))
    with psycopg.connect(database) as db:
        rows = db.execute("SELECT count(*) FROM entities WHERE id LIKE %s",
                          (f"{tiny.CAMERA_ID}/shared-%",)).fetchone()  # fmt: skip
    assert rows is not None and rows[0] == 60


def test_postgres_restarted_under_load(
    pair: tuple[LiveServer, LiveServer, dict[str, str]], database: str, postgres: Postgres
) -> None:
    a, _, _ = pair
    acknowledged: list[str] = []
    statuses: list[int] = []
    details: list[str] = []
    stop = threading.Event()

    def send() -> None:
        n = 0
        with a.client("ingest") as c:
            while not stop.is_set():
                n += 1
                try:
                    reply = c.post("/api/observations", json={"observations": [
                        {**person(f"r{n}"), "lon": tiny.OUTSIDE[0], "lat": tiny.OUTSIDE[1]}]},
                        timeout=10)  # fmt: skip
                except httpx.HTTPError:
                    continue
                statuses.append(reply.status_code)
                if reply.status_code == 200:
                    acknowledged.extend(reply.json()["ids"])
                elif reply.status_code == 503:
                    details.append(reply.text)
                time.sleep(0.02)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.0)
    postgres.restart()
    deadline = time.monotonic() + 30
    while not (503 in statuses and statuses[-1] == 200) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the server answered 503 and then recovered
    stop.set()
    sender.join(30)
    assert 503 in statuses and statuses[-1] == 200, statuses[-20:]
    assert 500 not in statuses
    assert any("database" in d for d in details)
    with psycopg.connect(database) as db:
        stored = {r[0] for r in db.execute("SELECT id FROM observations").fetchall()}
    assert set(acknowledged) <= stored


def test_workers_share_one_port(tmp_path: Path, database: str, redis: Redis) -> None:
    ws = tiny.build(tmp_path / "ws")
    env = {"TWIN_DATABASE_URL": database, "TWIN_BUS_URL": redis.url}
    server = start(ws, env, "--workers", "2")
    try:
        ids = []
        for i in range(6):
            ids += ingest(server, {**person(f"w{i}"), "lon": tiny.OUTSIDE[0],
                                 "lat": tiny.OUTSIDE[1]})["ids"]  # fmt: skip
        with psycopg.connect(database) as db:
            stored = {r[0] for r in db.execute("SELECT id FROM observations").fetchall()}
        assert set(ids) <= stored
        workers = wait_for_children(server, 2)
        assert workers >= 2
    finally:
        server.stop()


def wait_for_children(server: LiveServer, count: int) -> int:
    import psutil

    deadline = time.monotonic() + 30
    while True:
        children = []
        for child in psutil.Process(server.process.pid).children():
            with contextlib.suppress(psutil.Error):  # one that just exited
                if "multiprocessing" in " ".join(child.cmdline()):
                    children.append(child)
        if len(children) >= count or time.monotonic() > deadline:
            return len(children)
        time.sleep(0.5)


def test_more_workers_need_both_engines(tmp_path: Path) -> None:
    ws = tiny.build(tmp_path / "ws")
    result = subprocess.run([TWIN, "serve", str(ws), "--workers", "2"], capture_output=True,
                            text=True, env={**os.environ, "TWIN_TOKENS": TOKENS_ENV})  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "TWIN_DATABASE_URL" in line and "TWIN_BUS_URL" in line
