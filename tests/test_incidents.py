"""Incidents (scenes/incidents.py) through the real server on the tiny workspace: a rule's repeats
in one area, or for one entity, within the rule's `incident_s` are one alert with a count, first
and last seen and the latest evidence, in GET /api/alerts and in the webhook deliveries alike; a
closed incident or one seen too long ago is not joined; bulk acknowledge."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tiny_workspace as tiny
from servers import LiveServer, ingest, start_server
from waiting import wait_for
from webhook_receiver import Receiver

from scenes.migrations import VERSION
from scenes.store import LiveStore

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
RULES = f"""
rules:
  - id: lane
    title: Vehicle in the closed lane
    kinds: [vehicle]
    zone: {{element: "{tiny.LANE_ID}"}}
    cooldown_s: 5
    incident_s: 120
  - id: speeding-anywhere
    title: Vehicle seen anywhere
    type: match
    kinds: [vehicle]
    classes: [bus]
    cooldown_s: 5
    incident_s: 120
"""


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    receiver = Receiver(fail_first=0)
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hooks: Receiver) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("incidents")
    ws = tiny.build(root / "ws")
    (root / "rules.yaml").write_text(RULES)
    env = {"TWIN_RULES": str(root / "rules.yaml"), "TWIN_WEBHOOKS": json.dumps({"*": hooks.url})}
    srv = start_server(ws, env)
    yield srv
    srv.stop()


def car(track: str, seconds: float, where: tuple[float, float] = tiny.INSIDE) -> dict[str, Any]:
    """A car of `track` seen `seconds` after T0 at `where` (lon, lat deg)."""
    when = (T0 + timedelta(seconds=seconds)).isoformat()
    return {"kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": track,
            "lon": where[0], "lat": where[1], "time": when}  # fmt: skip


def listed(server: LiveServer, rule: str) -> list[dict[str, Any]]:
    with server.client("viewer") as client:
        items: list[dict[str, Any]] = client.get("/api/alerts", params={"rule": rule}).json()[
            "items"
        ]
    return items


def test_repeats_in_one_area_are_one_incident(server: LiveServer, hooks: Receiver) -> None:
    first = ingest(server, car("a", 0))
    [incident] = first["alerts"]
    # Another car in the same lane, then the first again after its cooldown: the same incident.
    assert ingest(server, car("b", 2))["alerts"] == [incident]
    last = ingest(server, car("a", 30))
    assert last["alerts"] == [incident]
    [alert] = listed(server, "lane")
    assert alert["id"] == incident and alert["count"] == 3
    assert alert["incident_key"] == tiny.LANE_ID
    assert datetime.fromisoformat(alert["first_seen_at"]) == T0
    assert datetime.fromisoformat(alert["last_seen_at"]) == T0 + timedelta(seconds=30)
    assert alert["evidence"]["observation_ids"] == last["ids"], "the latest evidence"
    assert (
        last["ids"][0] in alert["observation_ids"] and first["ids"][0] in alert["observation_ids"]
    )
    # Within the cooldown the same car is not a repeat.
    assert ingest(server, car("a", 31))["alerts"] == []
    # Webhooks get every version of the incident; the last one equals the API's record.
    wait_for(lambda: [r["count"] for r in hooks.delivered() if r["id"] == incident] == [1, 2, 3])
    delivered = [r for r in hooks.delivered() if r["id"] == incident][-1]
    assert delivered == alert


def test_a_closed_or_old_incident_is_not_joined(server: LiveServer) -> None:
    with server.client("viewer") as client:
        [open_one] = client.get("/api/alerts", params={"rule": "lane", "status": "new"}).json()[
            "items"
        ]
    with server.client("operator") as client:
        assert client.post(f"/api/alerts/{open_one['id']}/resolve").status_code == 200
    [reopened] = ingest(server, car("c", 100))["alerts"]
    assert reopened != open_one["id"]
    # 200 s later (observation time) is past the rule's 120 s: a new incident again.
    [later] = ingest(server, car("d", 300))["alerts"]
    assert later != reopened
    counts = {a["id"]: a["count"] for a in listed(server, "lane")}
    assert counts[reopened] == 1 and counts[later] == 1


def test_an_entity_repeats_without_a_zone(server: LiveServer) -> None:
    bus = {**car("bus-1", 400, tiny.OUTSIDE), "cls": "bus"}
    [incident] = ingest(server, bus)["alerts"]
    again = {**bus, "time": (T0 + timedelta(seconds=410)).isoformat()}
    assert ingest(server, again)["alerts"] == [incident]
    other = {**bus, "track_id": "bus-2", "time": (T0 + timedelta(seconds=411)).isoformat()}
    [second] = ingest(server, other)["alerts"]
    assert second != incident, "another entity is another incident without a zone"
    counts = {a["id"]: a["count"] for a in listed(server, "speeding-anywhere")}
    assert counts == {incident: 2, second: 1}


def test_bulk_acknowledge(server: LiveServer) -> None:
    [one] = ingest(server, {**car("e", 600, tiny.OUTSIDE), "cls": "bus"})["alerts"]
    [two] = ingest(server, {**car("f", 601, tiny.OUTSIDE), "cls": "bus"})["alerts"]
    with server.client("operator") as client:
        assert client.post(f"/api/alerts/{two}/ack").status_code == 200
        response = client.post("/api/alerts/ack", json={"ids": [one, two, "nope", one]})
        assert client.post("/api/alerts/ack", json={"ids": []}).status_code == 422
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["id"] for a in body["items"]] == [one]
    assert body["items"][0]["status"] == "acknowledged" and body["items"][0]["acknowledged_by"]
    assert {(f["id"], f["status"]) for f in body["failed"]} == {(two, 409), ("nope", 404)}
    with server.client("viewer") as client:
        assert client.post("/api/alerts/ack", json={"ids": [one]}).status_code == 403


def test_the_store_keeps_incident_columns(tmp_path: Path) -> None:
    store = LiveStore(tmp_path / "live.sqlite", checkpoints=False)
    store.close()
    with sqlite3.connect(tmp_path / "live.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION >= 3
        columns = {row[1] for row in db.execute("PRAGMA table_info(alerts)")}
    assert {"incident_key", "last_s"} <= columns
