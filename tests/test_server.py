"""The real server on loopback (`twin serve`): tiles, elements, pick, ingest → rules → alerts
→ WebSocket, the alert lifecycle, and durability across kill -9. Mostly on the tiny workspace
(tests/tiny_workspace.py); a few checks on the bundled sample."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tiny_workspace as tiny
from paths import TWIN
from servers import TOKENS, LiveServer, raw_get, start_server
from websockets.sync.client import ClientConnection, connect

from scenes.store import LiveStore
from server.bus import LocalBus
from server.topics import Topic
from twin.workspace import WorkspacePaths


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny") / "ws")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for read-only checks (its own workspace: tests here add no observations)."""
    server = start_server(tiny.build(tmp_path_factory.mktemp("tiny-ro") / "ws"))
    yield server
    server.stop()


def observation(track: str = "7", where: tuple[float, float] = tiny.INSIDE, **kw: Any) -> dict:
    return {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": track,
            "lon": where[0], "lat": where[1], **kw}  # fmt: skip


def ws_url(server: LiveServer, token: str | None) -> str:
    base = server.url.replace("http://", "ws://") + "/ws/live"
    return f"{base}?token={token}" if token else base


def receive_until(conn: ClientConnection, topic: str, timeout: float = 10) -> dict[str, Any]:
    """The payload of the next message on `topic` (others are skipped)."""
    while True:
        message = json.loads(conn.recv(timeout=timeout))
        assert set(message) == {"topic", "payload"}
        if message["topic"] == topic:
            return dict(message["payload"])


# -- the bus ---------------------------------------------------------------------------------


def test_bus_drops_oldest_for_a_slow_subscriber() -> None:
    async def scenario() -> None:
        bus = LocalBus()
        slow = bus.subscribe([Topic.ENTITY], maxsize=3)
        alerts_only = bus.subscribe([Topic.ALERT])
        for i in range(5):
            assert bus.publish(Topic.ENTITY, {"n": i}) == 1
        assert slow.dropped == 2
        assert [(await slow.get()).payload["n"] for _ in range(3)] == [2, 3, 4]
        assert alerts_only.queue.empty()
        bus.unsubscribe(slow)
        assert bus.publish(Topic.ENTITY, {"n": 5}) == 0 and bus.subscribers == 1

    asyncio.run(scenario())


# -- open endpoints --------------------------------------------------------------------------


def test_healthz_is_open(srv: LiveServer) -> None:
    body = srv.client().get("/healthz").json()
    assert body["status"] == "ok" and body["name"] == "Tiny Bund" and body["elements"] == 7
    assert body["warnings"] == [] and body["disk"]["budget_bytes"] is None


def test_openapi_docs(srv: LiveServer) -> None:
    with srv.client() as c:
        assert c.get("/docs").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
    for path in (
        "/api/elements",
        "/api/elements/{element_id}",
        "/api/pick",
        "/api/observations",
        "/api/alerts",
        "/api/alerts/{alert_id}/ack",
        "/tiles/{path}",
        "/healthz",
    ):
        assert path in paths  # fmt: skip


@pytest.mark.parametrize(
    ("path", "content_type", "magic"),
    [
        ("tileset.json", "application/json", b"{"),
        ("buildings/0.glb", "model/gltf-binary", b"glTF"),
        ("buildings/0.subtree", "application/octet-stream", b"subt"),
        ("buildings/0.pnts", "application/octet-stream", b"pnts"),
        ("ortho.png", "image/png", b"\x89PNG"),
    ],
)
def test_tile_content_types(srv: LiveServer, path: str, content_type: str, magic: bytes) -> None:
    with srv.client() as c:
        r = c.get(f"/tiles/{path}", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == content_type
    assert r.content.startswith(magic) and "content-encoding" not in r.headers
    assert r.headers["cache-control"].startswith("public")
    assert (srv.ws / "tiles" / path).read_bytes() == r.content


def test_tile_etag_304_gzip_and_cors(srv: LiveServer) -> None:
    original = (srv.ws / "tiles" / "tileset.json").read_bytes()
    with srv.client() as c:
        plain = c.get("/tiles/tileset.json", headers={"Accept-Encoding": "identity"})
        etag = plain.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = c.get("/tiles/tileset.json", headers={"If-None-Match": etag,
                                                      "Accept-Encoding": "identity"})  # fmt: skip
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        zipped = c.get("/tiles/tileset.json", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in zipped.headers["vary"].lower()
        assert zipped.headers["etag"] != etag  # one strong tag per representation
        assert int(zipped.headers["content-length"]) < len(original)
        assert zipped.content == original  # httpx decodes the gzip body
        cors = c.get("/tiles/buildings/0.glb", headers={"Origin": "https://wall.example"})
        assert cors.headers["access-control-allow-origin"] in ("*", "https://wall.example")
        assert "content-encoding" not in cors.headers  # binary content is never gzipped
        assert c.get("/tiles/buildings/missing.glb").status_code == 404
        assert c.get("/tiles/buildings").status_code == 404  # a folder is not a file


def test_tile_gzip_bytes_on_the_wire(srv: LiveServer) -> None:
    with (
        srv.client() as c,
        c.stream("GET", "/tiles/tileset.json", headers={"Accept-Encoding": "gzip"}) as r,
    ):
        wire = b"".join(r.iter_raw())
    assert gzip.decompress(wire) == (srv.ws / "tiles" / "tileset.json").read_bytes()


@pytest.mark.parametrize(
    "target",
    [
        "/tiles/../twin.json",
        "/tiles/%2e%2e/twin.json",
        "/tiles/%2E%2E/catalog.sqlite",
        "/tiles/..%2fcatalog.sqlite",
        "/tiles/buildings/..%2F..%2Ftwin.json",
        "/tiles/buildings/../../twin.json",
        "/tiles//etc/passwd",
        "/tiles/%2fetc%2fpasswd",
        "/tiles/..%5ctwin.json",
        "/tiles/./tileset.json",
    ],
)
def test_tile_path_traversal_is_refused(srv: LiveServer, target: str) -> None:
    status, body = raw_get(srv.url, target)
    assert status in (400, 404)
    for secret in (srv.ws / "twin.json", srv.ws / "catalog.sqlite", Path("/etc/passwd")):
        if secret.exists():
            assert secret.read_bytes()[:64] not in body


def test_tile_symlink_escape_is_refused(srv: LiveServer) -> None:
    tiles = srv.ws / "tiles"
    (tiles / "manifest.json").symlink_to(srv.ws / "twin.json")
    (tiles / "outside").symlink_to(srv.ws, target_is_directory=True)
    (tiles / "inside.json").symlink_to(tiles / "tileset.json")
    with srv.client() as c:
        for path in ("manifest.json", "outside/twin.json", "outside/catalog.sqlite"):
            r = c.get(f"/tiles/{path}")
            assert r.status_code == 404 and b"Tiny Bund" not in r.content
        assert c.get("/tiles/inside.json").status_code == 200  # links inside the folder work


def test_web_page_routes(srv: LiveServer) -> None:
    """The page is served open when web/ is installed, else a 503 page says what to run."""
    web = Path(__file__).resolve().parent.parent / "web"
    installed = (web / "index.html").is_file() and (
        web / "node_modules/cesium/Build/Cesium/Cesium.js"
    ).is_file()
    with srv.client() as c:
        page = c.get("/")
        if installed:
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert c.get("/cesium/Cesium.js").status_code == 200
        else:
            assert page.status_code == 503 and "make install" in page.text
        if (web / "src" / "main.js").is_file():
            js = c.get("/app/main.js")
            assert js.status_code == 200 and "javascript" in js.headers["content-type"]


# -- elements and pick -----------------------------------------------------------------------


def test_search_elements(srv: LiveServer) -> None:
    with srv.client("viewer") as c:
        body = c.get("/api/elements", params={"kind": "building"}).json()
        assert body["total"] == 2 and {i["id"] for i in body["items"]} == {
            tiny.BUILDING_ID, tiny.FAR_BUILDING_ID}  # fmt: skip
        assert body["items"][0]["geometry"]["type"] == "Polygon"
        assert c.get("/api/elements", params={"q": "customs"}).json()["items"][0]["id"] == (
            tiny.BUILDING_ID
        )
        boxed = c.get("/api/elements", params={"bbox": "121.494,31.234,121.496,31.236"}).json()
        assert {i["id"] for i in boxed["items"]} == {tiny.FAR_BUILDING_ID, "jurisdiction:huangpu"}
        page = c.get("/api/elements", params={"limit": 2, "offset": 1}).json()
        assert page["total"] == 7 and len(page["items"]) == 2
        for bad in ("1,2,3", "a,b,c,d", "121.5,31,121.4,32", "1,2,3,4,5", "0,-91,1,0"):
            r = c.get("/api/elements", params={"bbox": bad})
            assert r.status_code == 422 and "bbox" in r.text
        assert c.get("/api/elements", params={"kind": "dragon"}).status_code == 422
        assert c.get("/api/elements", params={"limit": 0}).status_code == 422


def test_element_record(srv: LiveServer) -> None:
    with srv.client("viewer") as c:
        rec = c.get(f"/api/elements/{tiny.BUILDING_ID}").json()
        for key in (
            "id",
            "kind",
            "name",
            "attributes",
            "lon",
            "lat",
            "height",
            "base_height",
            "geometry",
            "unit",
            "site",
            "jurisdiction",
            "cameras",
            "recent_events",
            "nearby",
        ):
            assert key in rec  # fmt: skip
        assert rec["jurisdiction"] == {"id": "jurisdiction:bund-ps", "name": "Bund",
                                       "unit": tiny.SMALL_UNIT}  # fmt: skip
        assert rec["site"] == {"id": tiny.LANE_ID, "name": "Bund closed lane"}
        [cam] = rec["cameras"]
        assert cam["id"] == tiny.CAMERA_ID and 0 <= cam["u"] <= 1280 and 0 <= cam["v"] <= 720
        far = c.get(f"/api/elements/{tiny.FAR_BUILDING_ID}").json()
        assert far["cameras"] == []  # behind / outside the camera's view
        missing = c.get("/api/elements/building:nope")
        assert missing.status_code == 404 and "building:nope" in missing.json()["detail"]


def test_pick(srv: LiveServer) -> None:
    with srv.client("viewer") as c:
        hit = c.get("/api/pick", params={"lon": 121.4903, "lat": 31.23925})
        assert hit.status_code == 200 and hit.json()["id"] == tiny.BUILDING_ID
        assert "cameras" in hit.json()
        assert c.get("/api/pick", params={"lon": 10.0, "lat": 10.0}).status_code == 404
        assert c.get("/api/pick", params={"lon": 200, "lat": 0}).status_code == 422


# -- ingest, rules, alerts, live -------------------------------------------------------------


def test_ingest_alert_websocket_and_lifecycle(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws)
    ingest, operator, viewer = server.client("ingest"), server.client("operator"), server.client(
        "viewer")  # fmt: skip
    with connect(ws_url(server, TOKENS["viewer"])) as conn:
        assert receive_until(conn, "ready") == {"entities": 0, "alerts": 0, "truncated": False}

        r = ingest.post("/api/observations", json={"observations": [observation()]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["accepted"] == 1 and len(body["ids"][0]) == 32
        [alert_id] = body["alerts"]

        entity = receive_until(conn, "entity")
        assert entity["id"] == f"{tiny.CAMERA_ID}/7" and entity["cls"] == "car"
        pushed = receive_until(conn, "alert")
        assert pushed["id"] == alert_id and pushed["unit"] == tiny.SMALL_UNIT

        listed = viewer.get("/api/alerts", params={"status": "new"}).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == alert_id
        assert listed["items"][0]["element_id"] == tiny.LANE_ID
        by_unit = viewer.get("/api/alerts", params={"unit": tiny.BIG_UNIT}).json()
        assert by_unit["total"] == 0

        # Same track again within the cooldown: stored, no second alert. Outside: no alert.
        again = ingest.post("/api/observations", json={"observations": [
            observation(), observation(track="far", where=tiny.OUTSIDE)]}).json()  # fmt: skip
        assert again["accepted"] == 2 and again["alerts"] == []

        acked = operator.post(f"/api/alerts/{alert_id}/ack")
        assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
        assert acked.json()["acknowledged_by"].startswith("operator#")
        assert TOKENS["operator"] not in acked.text
        assert receive_until(conn, "alert")["status"] == "acknowledged"
        resolved = operator.post(f"/api/alerts/{alert_id}/resolve").json()
        assert resolved["status"] == "resolved" and resolved["resolved_at"]
        assert receive_until(conn, "alert")["status"] == "resolved"
        conflict = operator.post(f"/api/alerts/{alert_id}/ack")
        assert conflict.status_code == 409 and "resolved" in conflict.json()["detail"]
        assert operator.post("/api/alerts/nope/resolve").status_code == 404

    live = viewer.get("/api/live").json()
    assert {e["id"] for e in live["items"]} == {f"{tiny.CAMERA_ID}/7", f"{tiny.CAMERA_ID}/far"}
    record = viewer.get(f"/api/elements/{tiny.BUILDING_ID}").json()
    assert any(ev["type"] == "alert" and ev["id"] == alert_id for ev in record["recent_events"])
    assert [n["id"] for n in record["nearby"]] == [f"{tiny.CAMERA_ID}/7"]
    assert 0 < record["nearby"][0]["distance_m"] < 150
    since = viewer.get("/api/alerts", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert since["total"] == 0


def test_snapshot_on_connect(tiny_ws: Path, server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(tiny_ws)
    server.client("ingest").post("/api/observations", json={"observations": [observation()]})
    with connect(ws_url(server, TOKENS["admin"])) as conn:
        entity = receive_until(conn, "entity")
        alert = receive_until(conn, "alert")
        assert entity["id"] == f"{tiny.CAMERA_ID}/7" and alert["status"] == "new"
        assert receive_until(conn, "ready") == {"entities": 1, "alerts": 1, "truncated": False}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"observations": [{"kind": "vehicle", "source": "x", "lon": 0}]}, "lat"),
        ({"observations": [observation(lat=95)]}, "lat"),
        ({"observations": [observation(kind="ufo")]}, "kind"),
        ({"observations": [observation(confidence=1.5)]}, "confidence"),
        ({"observations": [observation(colour="red")]}, "colour"),
        ({"observations": []}, "observations"),
        ({"observations": [observation()] * 1001}, "observations"),
        ({"obs": []}, "obs"),
    ],
)
def test_malformed_observations_are_422(srv: LiveServer, body: dict, field: str) -> None:
    r = srv.client("ingest").post("/api/observations", json=body)
    assert r.status_code == 422
    locations = [".".join(str(p) for p in err["loc"]) for err in r.json()["detail"]]
    assert any(field in loc for loc in locations), locations


def test_unknown_source_is_422_naming_it(srv: LiveServer) -> None:
    r = srv.client("ingest").post(
        "/api/observations", json={"observations": [observation(source="camera:ghost")]}
    )
    [problem] = r.json()["detail"]  # the documented 422 array, like every validation error
    assert r.status_code == 422 and "camera:ghost" in problem["msg"]
    assert problem["loc"] == ["body", "observations", 0, "source"]
    assert srv.client("viewer").get("/api/live").json()["total"] == 0
    not_json = srv.client("ingest").post(
        "/api/observations", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422


def test_survives_kill_9(tiny_ws: Path, server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(tiny_ws)
    body = (
        server.client("ingest")
        .post("/api/observations", json={"observations": [
            observation(), observation(track="x", kind="person", cls="person")]})
        .json()
    )  # fmt: skip
    assert len(body["alerts"]) == 2  # one per rule: the lane's vehicles and its people
    server.client("operator").post(f"/api/alerts/{body['alerts'][0]}/ack").raise_for_status()
    server.stop(kill=True)

    again = server_factory(server.ws, copy=False)
    with again.client("viewer") as c:
        alerts = {a["id"]: a for a in c.get("/api/alerts").json()["items"]}
        assert set(alerts) == set(body["alerts"])
        assert alerts[body["alerts"][0]]["status"] == "acknowledged"
        one = c.get(f"/api/alerts/{body['alerts'][0]}").json()
        assert one == alerts[body["alerts"][0]]  # one alert by id, as listed
        assert c.get("/api/alerts/0123456789abcdef").status_code == 404
        record = c.get(f"/api/elements/{tiny.BUILDING_ID}").json()
        seen = {ev["id"] for ev in record["recent_events"] if ev["type"] == "observation"}
        assert set(body["ids"]) <= seen
    # The cooldown is remembered across the restart: the same track raises nothing new.
    repeat = again.client("ingest").post("/api/observations", json={"observations": [
        observation()]}).json()  # fmt: skip
    assert repeat["alerts"] == []


def test_concurrent_ingest_killed_mid_stream_loses_nothing_acknowledged(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    """Four posters share group commits; kill -9 lands while requests are in flight. Every
    observation and alert of a 2xx reply is there after the restart; every vehicle in the lane
    is a repeat of one incident, whose count is exactly the observations stored (a repeat is
    counted in the transaction that stores it: nothing half-written, nothing counted twice)."""
    server = server_factory(tiny_ws)
    acked_obs: list[str] = []
    acked_alerts: list[str] = []
    cut_off: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post(poster: int) -> None:
        with server.client("ingest") as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                batch = [observation(track=f"p{poster}-{n}-{i}") for i in range(20)]
                try:
                    r = client.post("/api/observations", json={"observations": batch})
                except httpx.HTTPError:
                    cut_off.append(poster)  # the server went away mid-request: not acknowledged
                    return
                if r.status_code != 200:
                    return
                with lock:
                    acked_obs.extend(r.json()["ids"])
                    acked_alerts.extend(r.json()["alerts"])

    threads = [threading.Thread(target=post, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acked_obs) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop(kill=True)
    stop.set()
    for thread in threads:
        thread.join(15)
    assert len(acked_obs) >= 400 and len(set(acked_alerts)) == 1  # every batch joined one

    assert cut_off, "the kill landed between requests: nothing was in flight"
    store = LiveStore(WorkspacePaths(server.ws).live)
    try:
        assert len(store.observations_by_id(acked_obs)) == len(acked_obs)
        stored = store.count_observations()
        [incident], total = store.alerts(limit=100_000)
        evidence = store.observations_by_id(incident.observation_ids)
    finally:
        store.close()
    assert total == 1 and incident.id == acked_alerts[0]
    assert incident.count == stored >= len(acked_obs)  # each stored track counted once
    assert len(evidence) == len(incident.observation_ids) > 1  # its evidence is all stored
    again = server_factory(server.ws, copy=False)
    with again.client("viewer") as c:
        listed = c.get("/api/alerts", params={"limit": 1000}).json()
    assert listed["total"] == 1 and listed["items"][0]["count"] == incident.count


# -- the bundled sample ----------------------------------------------------------------------


@pytest.mark.slow
def test_sample_workspace_serves(live_server: LiveServer) -> None:
    with live_server.client("viewer") as c:
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["elements"] > 100
        tileset = c.get("/tiles/tileset.json")
        assert tileset.status_code == 200 and tileset.json()["asset"]["version"] == "1.1"
        buildings = c.get("/api/elements", params={"kind": "building", "limit": 1}).json()
        assert buildings["total"] > 50
        el = buildings["items"][0]
        record = c.get(f"/api/elements/{el['id']}").json()
        assert record["id"] == el["id"] and isinstance(record["cameras"], list)
        picked = c.get("/api/pick", params={"lon": el["lon"], "lat": el["lat"]})
        assert picked.status_code == 200


@pytest.mark.slow
def test_sample_rules_raise_a_routed_alert(live_server: LiveServer) -> None:
    """A car in front of the sample's Bund road camera trips the sample's zone rule, and the
    alert goes to the unit of the jurisdiction holding that place."""
    with live_server.client("viewer") as c:
        camera = c.get("/api/elements/camera:cam-bund-road").json()
    lon, lat = camera["lon"], camera["lat"] + 0.0006  # ~65 m in front of the north-facing camera
    body = live_server.client("ingest").post("/api/observations", json={"observations": [
        {"kind": "vehicle", "cls": "car", "source": "camera:cam-bund-road", "track_id": "1",
         "lon": lon, "lat": lat}]})  # fmt: skip
    assert body.status_code == 200, body.text
    [alert_id] = body.json()["alerts"]
    with live_server.client("viewer") as c:
        [alert] = c.get("/api/alerts").json()["items"]
        holding = c.get(
            "/api/elements", params={"kind": "jurisdiction", "bbox": f"{lon},{lat},{lon},{lat}"}
        ).json()
    assert alert["id"] == alert_id and alert["rule"] == "bund-road-vehicles"
    units = {j["unit"] for j in holding["items"]}
    assert alert["unit"] in units and alert["jurisdiction_id"].startswith("jurisdiction:")


def test_serve_refuses_a_non_workspace_and_a_bad_rule_file(tmp_path: Path) -> None:
    not_ws = subprocess.run([TWIN, "serve", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert not_ws.returncode != 0 and "not a workspace" in not_ws.stderr
    ws = tiny.build(tmp_path / "ws")
    (ws / "rules.yaml").write_text(tiny.RULES_YAML.replace("severity: info", "severty: info"))
    bad_rules = subprocess.run([TWIN, "serve", str(ws)], capture_output=True, text=True,
                               timeout=60)  # fmt: skip
    assert bad_rules.returncode != 0 and "unknown key 'rules.1.severty'" in bad_rules.stderr
