"""Operations on the real server: GET /metrics (every metric issue 14 lists, in the Prometheus
text format, open or token-protected per TWIN_METRICS_PUBLIC), structured JSON logs with an
access line per request and never a token, GET /readyz (store, bus, stale feeds), and the
stale feeds shown to an operator in the page's status bar."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import tiny_workspace as tiny
from browser import open_page
from prometheus_client.parser import text_string_to_metric_families
from servers import TOKENS, LiveServer
from websockets.sync.client import connect

from bench.chromium import chromium_available, launch

FAST_FEEDS = {"TWIN_FEED_STALE_S": "1"}


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build(tmp_path_factory.mktemp("tiny-ops") / "ws")


def scrape(server: LiveServer, role: str | None = "viewer") -> dict[str, list[tuple[dict, float]]]:
    """Every sample of GET /metrics by name: [(labels, value)]."""
    with server.client(role) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict, float]]], name: str, **labels: str) -> float:
    matching = [v for got, v in samples[name] if labels.items() <= got.items()]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def test_metrics_cover_what_an_operator_watches(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws)
    assert httpx.get(server.url + "/metrics").status_code == 401  # read permission by default
    lane = {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": "m",
            "lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1]}  # fmt: skip
    url = server.url.replace("http://", "ws://") + f"/ws/live?token={TOKENS['viewer']}"
    with connect(url) as socket, server.client("ingest") as ingest:
        body = ingest.post("/api/observations", json={"observations": [lane]}).json()
        [alert_id] = body["alerts"]
        assert server.client("operator").post(f"/api/alerts/{alert_id}/ack").status_code == 200
        assert ingest.put(f"/api/cameras/{tiny.CAMERA_ID}/frame", content=b"\xff\xd8\xff" + bytes(
            500)).status_code == 204  # fmt: skip
        assert ingest.get("/api/elements", params={"offset": -1}).status_code == 422
        samples = scrape(server)
        assert value(samples, "twin_websocket_clients") == 1
        socket.close()
    post = {"route": "/api/observations", "method": "POST"}
    assert value(samples, "twin_http_requests_total", status="200", **post) == 1
    assert value(samples, "twin_http_requests_total", route="/api/elements", status="422") == 1
    assert value(samples, "twin_http_request_duration_seconds_count", **post) == 1
    assert value(samples, "twin_http_request_duration_seconds_bucket", le="+Inf", **post) == 1
    assert value(samples, "twin_observations_ingested_total") == 1
    assert value(samples, "twin_alerts_total", app="none", status="new") == 1
    assert value(samples, "twin_alerts_total", app="none", status="acknowledged") == 1
    assert value(samples, "twin_store_commit_seconds_count") == 1
    assert value(samples, "twin_bus_queued_messages") >= 0
    assert value(samples, "twin_bus_dropped_total", topic="alert") == 0
    assert {labels["topic"] for labels, _ in samples["twin_bus_dropped_total"]} >= {"entity"}
    assert value(samples, "twin_store_wal_bytes") > 0
    assert "twin_workspace_bytes" in samples and "twin_archive_bytes" in samples
    assert value(samples, "twin_frames_kept") == 1 and value(samples, "twin_frame_bytes") == 503
    camera_age = value(samples, "twin_feed_last_observation_age_seconds", feed=tiny.CAMERA_ID)
    sensor_age = value(samples, "twin_feed_last_observation_age_seconds", feed=tiny.SENSOR_ID)
    assert 0 <= camera_age < sensor_age
    routes = {labels["route"] for labels, _ in samples["twin_http_requests_total"]}
    assert routes >= {"/api/observations", "/api/alerts/{alert_id}/ack", "/api/elements"}
    assert not any("cam-bund-road" in route for route in routes)  # templates, not paths


def test_metrics_may_be_public(tiny_ws: Path, server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(tiny_ws, {"TWIN_METRICS_PUBLIC": "true"})
    assert "twin_websocket_clients" in scrape(server, role=None)


def test_json_logs_have_an_access_line_per_request_and_no_token(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws, {"TWIN_LOG_FORMAT": "json"})
    with server.client("operator") as operator:
        assert operator.get("/api/alerts", params={"token": "secret-in-query"}).status_code == 200
        assert operator.get("/api/alerts/nope/crop.jpg").status_code == 404
    url = server.url.replace("http://", "ws://") + f"/ws/live?token={TOKENS['viewer']}"
    with connect(url) as socket:
        socket.recv(timeout=10)
    assert httpx.post(server.url + "/api/observations", content=b"{}").status_code == 401
    time.sleep(0.5)
    server.stop()
    text = (server.ws.parent / f"server-{server.url.rsplit(':', 1)[1]}.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line JSON
    access = [line for line in lines if line["logger"] == "twin.access"]
    alerts = next(line for line in access if line["route"] == "/api/alerts")
    assert alerts["status"] == 200 and alerts["role"] == "operator" and alerts["method"] == "GET"
    assert alerts["latency_ms"] > 0 and alerts["path"] == "/api/alerts"
    crop = next(line for line in access if line["route"] == "/api/alerts/{alert_id}/crop.jpg")
    assert crop["status"] == 404 and crop["path"] == "/api/alerts/nope/crop.jpg"
    refused = next(line for line in access if line["route"] == "/api/observations")
    assert refused["status"] == 401 and refused["role"] is None
    assert {"time", "level", "logger", "message"} <= set(alerts)
    for token in (*TOKENS.values(), "secret-in-query"):
        assert token not in text


def test_readyz_reports_store_bus_and_stale_feeds(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws, FAST_FEEDS)
    time.sleep(1.2)
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "degraded" and body["store"]["status"] == "ok"
    assert body["bus"]["status"] == "ok" and body["feeds"]["stale_after_s"] == 1
    assert body["feeds"]["stale_count"] == 2 and body["feeds"]["stale"] is None  # no token
    basic = {"Authorization": f"Basic {TOKENS['viewer']}"}  # not a bearer token
    assert httpx.get(server.url + "/readyz", headers=basic).json()["feeds"]["stale"] is None
    lane = {"kind": "person", "source": tiny.CAMERA_ID, "lon": 121.49, "lat": 31.239}
    posted = server.client("ingest").post("/api/observations", json={"observations": [lane]})
    assert posted.status_code == 200
    with server.client("viewer") as viewer:
        feeds = viewer.get("/readyz").json()["feeds"]
    assert feeds["stale"] == [tiny.SENSOR_ID] and feeds["total"] == 2


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")
def test_the_page_shows_stale_feeds_to_an_operator(
    tiny_ws: Path, server_factory: Callable[..., LiveServer]
) -> None:
    server = server_factory(tiny_ws, FAST_FEEDS)
    with launch() as browser:
        page, _ = open_page(browser, f"{server.url}/?token={TOKENS['operator']}")
        note = page.locator("#readiness")
        note.wait_for(state="visible", timeout=60_000)
        assert "2/2" in note.inner_text()
        title = note.get_attribute("title")
        assert title is not None and title.splitlines()[:2] == [tiny.CAMERA_ID, tiny.SENSOR_ID]
