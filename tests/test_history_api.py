"""The history API on the real server (`twin serve` on loopback, tiny workspace) with a hot
window of a few seconds, so the real mover moves while the test watches: observations paged
across the store/archive boundary, tracks, closed alerts and their figures, replay, access
(401 / every role reads / 422 naming the parameter), and two servers on one workspace."""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiny_workspace as tiny
from paths import TWIN
from servers import TOKENS, TOKENS_ENV, LiveServer, start_server
from waiting import wait_for

from bench.common import free_port

FAST = {"TWIN_HOT_MINUTES": "0.05", "TWIN_HISTORY_INTERVAL_S": "0.2"}  # a 3 s hot window


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose hot window is 3 s (its own workspace)."""
    server = start_server(tiny.build(tmp_path_factory.mktemp("tiny-history") / "ws"), FAST)
    yield server
    server.stop()


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def vehicle(track: str, at: datetime, lon: float, lat: float = tiny.INSIDE[1]) -> dict[str, Any]:
    return {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": track,
            "lon": lon, "lat": lat, "time": iso(at)}  # fmt: skip


def archived_files(server: LiveServer) -> int:
    return int(httpx.get(server.url + "/healthz").json()["disk"]["archive_files"])


def page_all(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert body.status_code == 200, body.text
        items += body.json()["items"]
        cursor = body.json()["next"]
        if cursor is None:
            return items


def test_observations_tracks_and_replay_across_the_archive(fast: LiveServer) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(seconds=120)
    # Track 'w' crosses 60 s (one observation a second) heading east; half of it is old
    # enough to be archived at once, the other half arrives a minute later.
    walk = [vehicle("w", start + timedelta(seconds=i), 121.4850 + i * 1e-5, tiny.OUTSIDE[1])
            for i in range(60)]  # fmt: skip
    with fast.client("ingest") as c:
        posted = c.post("/api/observations", json={"observations": walk[:30]}).json()["ids"]
        wait_for(lambda: archived_files(fast) >= 1)
        posted += c.post("/api/observations", json={"observations": walk[30:]}).json()["ids"]
    with fast.client("viewer") as c:
        params = {"from": iso(start - timedelta(seconds=1)), "to": iso(now + timedelta(seconds=5))}
        items = page_all(c, "/api/history/observations", limit=7, **params)
        assert [o["id"] for o in items] == posted  # each once, in (time, id) order
        wait_for(lambda: archived_files(fast) >= 2)  # the second half moved too
        again = page_all(c, "/api/history/observations", limit=1000, **params)
        assert [o["id"] for o in again] == posted and again[5]["lon"] == walk[5]["lon"]
        box = {"bbox": f"121.4850,{tiny.OUTSIDE[1] - 1e-4},121.48509,{tiny.OUTSIDE[1] + 1e-4}"}
        boxed = page_all(c, "/api/history/observations", **params, **box)
        assert [o["id"] for o in boxed] == posted[:10]
        none = c.get("/api/history/observations", params={**params, "kind": "person"}).json()
        assert none == {"items": [], "next": None}
        by_layer_id = page_all(c, "/api/history/observations", **params, source="cam-bund-road")
        assert len(by_layer_id) == 60  # the layer's own camera id works as well

        track = c.get(f"/api/history/tracks/{tiny.CAMERA_ID}/w", params=params).json()
        assert track["entity_id"] == f"{tiny.CAMERA_ID}/w" and not track["truncated"]
        assert [p["lon"] for p in track["items"]] == [o["lon"] for o in walk]
        short = c.get(f"/api/history/tracks/{tiny.CAMERA_ID}/w", params={**params, "limit": 3})
        assert short.json()["truncated"] and len(short.json()["items"]) == 3

        replay = c.get("/api/history/replay", params={
            "from": iso(start), "to": iso(start + timedelta(seconds=60)), "step_s": 10,
        }).json()  # fmt: skip
        [entity] = [e for e in replay["entities"] if e["id"] == f"{tiny.CAMERA_ID}/w"]
        assert entity["kind"] == "vehicle" and len(entity["samples"]) == 6
        assert [s[1] for s in entity["samples"]] == pytest.approx(
            [walk[10 * k + 9]["lon"] for k in range(6)]
        )


def test_closed_alerts_move_to_history_with_their_figures(fast: LiveServer) -> None:
    with fast.client("ingest") as c:
        reply = c.post("/api/observations", json={"observations": [
            vehicle("a1", datetime.now(UTC), *tiny.INSIDE)]}).json()  # fmt: skip
    [alert_id] = reply["alerts"]
    with fast.client("operator") as c:
        assert c.post(f"/api/alerts/{alert_id}/dispatch").status_code == 200
        assert c.post(f"/api/alerts/{alert_id}/arrive").status_code == 200
        assert c.post(f"/api/alerts/{alert_id}/resolve").status_code == 200
    with fast.client("viewer") as c:

        def gone_from_live() -> bool:
            listed = c.get("/api/alerts", params={"limit": 1000}).json()["items"]
            return all(a["id"] != alert_id for a in listed)

        wait_for(gone_from_live)  # closed longer than the hot window: archived
        found = c.get("/api/history/alerts", params={"status": "resolved"}).json()["items"]
        [alert] = [a for a in found if a["id"] == alert_id]
        assert alert["unit"] == tiny.SMALL_UNIT and alert["resolved_at"] and alert["on_scene_at"]
        assert c.get("/api/history/alerts", params={"status": "new", "unit": "nobody"}).json() == {
            "items": [], "next": None}  # fmt: skip
        stats = c.get("/api/history/stats", params={"by": "unit"}).json()
        [unit] = [g for g in stats["groups"] if g["key"] == tiny.SMALL_UNIT]
        assert unit["count"] >= 1 and unit["handled"] >= 1 and unit["responses"] >= 1
        assert unit["median_response_s"] is not None and unit["median_response_s"] >= 0
        hours = c.get("/api/history/stats", params={"by": "hour"}).json()["groups"]
        assert hours and all(g["key"].endswith(":00:00Z") for g in hours)
        boards = c.get("/api/boards").json()
        [small] = [u for u in boards["units"] if u["unit"] == tiny.SMALL_UNIT]
        assert small["week"] >= 1  # the week's figures still count archived alerts


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "2026-12-04T10:00:00"}, "from"),
        ({"to": "2026-12-04T10:00:00"}, "to"),
        ({"from": "2026-12-04T11:00:00Z", "to": "2026-12-04T10:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "10,20,5,30"}, "bbox"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"kind": "dragon"}, "kind"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    fast: LiveServer, params: dict[str, str], name: str
) -> None:
    with fast.client("viewer") as c:
        reply = c.get("/api/history/observations", params=params)
    assert reply.status_code == 422, reply.text
    assert any(err["loc"][-1] == name for err in reply.json()["detail"]), reply.text


def test_other_bad_parameters(fast: LiveServer) -> None:
    with fast.client("viewer") as c:
        for path, params, name in (
            ("/api/history/stats", {"by": "week"}, "by"),
            ("/api/history/alerts", {"status": "sleeping"}, "status"),
            ("/api/history/replay", {"from": "2026-12-04T08:00:00Z",
                                     "to": "2026-12-04T10:00:00Z"}, "from"),
            ("/api/history/replay", {"step_s": "0"}, "step_s"),
            ("/api/history/tracks/x/1", {"to": "2026-12-04T08:00:00"}, "to"),
        ):  # fmt: skip
            reply = c.get(path, params=params)
            assert reply.status_code == 422, (path, reply.text)
            assert [err["loc"][-1] for err in reply.json()["detail"]] == [name]


def test_history_needs_a_reader(fast: LiveServer) -> None:
    paths = ["/api/history/observations", "/api/history/tracks/x/1", "/api/history/alerts",
             "/api/history/stats", "/api/history/replay"]  # fmt: skip
    for path in paths:
        assert httpx.get(fast.url + path).status_code == 401
        bad = httpx.get(fast.url + path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        for role in TOKENS:  # every role may read
            assert fast.client(role).get(path).status_code == 200, (path, role)


def test_two_servers_on_one_workspace(tmp_path: Path) -> None:
    """Both start at once (migrating the same new live store), both ingest, one moves."""
    ws = tiny.build(tmp_path / "ws")
    ports = [free_port(), free_port()]
    env = {**os.environ, "TWIN_TOKENS": TOKENS_ENV, **FAST}
    logs = [open(tmp_path / f"server-{p}.log", "wb") for p in ports]  # noqa: SIM115
    procs = [
        subprocess.Popen([TWIN, "serve", str(ws), "--port", str(port)], stdout=log,
                         stderr=subprocess.STDOUT, env=env)
        for port, log in zip(ports, logs, strict=True)
    ]  # fmt: skip
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    servers = [LiveServer(url, ws, proc) for url, proc in zip(urls, procs, strict=True)]
    try:
        for server in servers:
            wait_for(functools.partial(_healthy, server), timeout_s=60)
        start = datetime.now(UTC) - timedelta(seconds=30)
        ids = []
        for k, server in enumerate(servers):
            batch = [vehicle(f"s{k}", start + timedelta(seconds=i), 121.49 + i * 1e-5,
                             tiny.OUTSIDE[1]) for i in range(10)]  # fmt: skip
            with server.client("ingest") as c:
                ids += c.post("/api/observations", json={"observations": batch}).json()["ids"]
        wait_for(lambda: archived_files(servers[0]) + archived_files(servers[1]) >= 1)
        for server in servers:
            with server.client("viewer") as c:
                got = page_all(c, "/api/history/observations", **{"from": iso(start)})
                assert sorted(o["id"] for o in got) == sorted(ids)
        for server in servers:
            assert server.process.poll() is None
    finally:
        for server in servers:
            server.stop()
        for log in logs:
            log.close()
    text = "".join((tmp_path / f"server-{p}.log").read_text() for p in ports)
    assert "Traceback" not in text, text


def _healthy(server: LiveServer) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"server exited {server.process.returncode}")
    try:
        return httpx.get(server.url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_history_endpoints_are_documented(fast: LiveServer) -> None:
    paths = httpx.get(fast.url + "/openapi.json").json()["paths"]
    for path in (
        "/api/history/observations",
        "/api/history/tracks/{entity_id}",
        "/api/history/alerts",
        "/api/history/stats",
        "/api/history/replay",
    ):
        assert path in paths, sorted(paths)  # fmt: skip
    assert json.dumps(paths["/api/history/observations"]).count('"from"') >= 1


def test_healthz_warns_near_the_disk_budget(tmp_path: Path) -> None:
    """A budget just above what the tiny workspace holds: past 90 % of it, /healthz warns."""
    ws = tiny.build(tmp_path / "ws")
    server = start_server(ws, {**FAST, "TWIN_DISK_BUDGET_GB": "0.0000005"})  # 500 bytes
    try:
        wait_for(lambda: httpx.get(server.url + "/healthz").json()["status"] == "warning")
        health = httpx.get(server.url + "/healthz").json()
        assert health["disk"]["budget_bytes"] == 500
        assert health["disk"]["workspace_bytes"] > 500
        [warning] = health["warnings"]
        assert "disk budget" in warning
    finally:
        server.stop()
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "disk budget" in log


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_the_server_and_its_mover_stop_together(tmp_path: Path, signal_name: str) -> None:
    """Ctrl+C (SIGINT to the whole process group, as a terminal sends it) or a SIGTERM to the
    group (systemd, timeout): the server and its history mover child both end promptly."""
    import signal

    import psutil

    ws = tiny.build(tmp_path / "ws")
    port = free_port()
    env = {**os.environ, "TWIN_TOKENS": TOKENS_ENV}
    with open(tmp_path / "server.log", "wb") as log:
        command = [TWIN, "serve", str(ws), "--port", str(port)]
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        server = LiveServer(f"http://127.0.0.1:{port}", ws, proc)
        try:
            wait_for(lambda: _healthy(server), timeout_s=60)
            wait_for(lambda: (ws / "history" / ".status.json").exists())
            children = psutil.Process(proc.pid).children(recursive=True)
            assert children, "the history mover runs in a child process"
            os.killpg(proc.pid, getattr(signal, signal_name))
            proc.wait(timeout=30)
            _, alive = psutil.wait_procs(children, timeout=10)
            assert alive == []
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
