"""Scenario apps end to end through the real server (`twin serve` on loopback): observations
in → alert out, routed to the right unit with evidence; watchlists (keyed hashes only, live
updates, audit log); cooldowns; the alert life cycle; boards; app settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apps_workspace as aws
import httpx
import pytest
import tiny_workspace as tiny
from servers import LiveServer, start_server

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
PLATE = "沪A·123-45"  # stored normalised as 沪A12345
TOKEN = "310101199001011234"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return aws.build(tmp_path_factory.mktemp("apps") / "ws")


@pytest.fixture(scope="module")
def srv(ws: Path) -> Iterator[LiveServer]:
    server = start_server(ws)
    yield server
    server.stop()


def obs(
    kind: str,
    where: tuple[float, float],
    track: str,
    at: datetime = T0,
    source: str = tiny.CAMERA_ID,
    cls: str = "",
    **attributes: Any,
) -> dict[str, Any]:
    return {"kind": kind, "cls": cls or {"vehicle": "car", "person": "person"}.get(kind, ""),
            "source": source, "track_id": track, "lon": where[0], "lat": where[1],
            "time": at.isoformat(), "attributes": attributes}  # fmt: skip


def post(server: LiveServer, *items: dict[str, Any]) -> list[dict[str, Any]]:
    """Ingest `items`; the alerts they raised (full records)."""
    r = server.client("ingest").post("/api/observations", json={"observations": list(items)})
    assert r.status_code == 200, r.text
    raised = r.json()["alerts"]
    if not raised:
        return []
    listed = server.client("viewer").get("/api/alerts", params={"limit": 1000}).json()["items"]
    by_id = {alert["id"]: alert for alert in listed}
    return [by_id[alert_id] for alert_id in raised]


def set_app(server: LiveServer, app: str, **body: Any) -> httpx.Response:
    return server.client("admin").put(f"/api/apps/{app}", json=body)


# -- watchlist apps --------------------------------------------------------------------------


def test_suspended_licence_driver_goes_to_the_traffic_squad(srv: LiveServer, ws: Path) -> None:
    admin = srv.client("admin")
    assert srv.client("operator").post("/api/watchlists/suspended-licences/entries",
                                       json={"value": PLATE}).status_code == 403  # fmt: skip
    added = admin.post("/api/watchlists/suspended-licences/entries",
                       json={"value": PLATE, "reason": "licence revoked"})  # fmt: skip
    assert added.status_code == 201 and added.json()["masked"] == "沪A·***45"
    listed = admin.get("/api/watchlists/suspended-licences").json()
    assert listed["count"] == 1 and listed["entries"][0]["hash"] == added.json()["hash"]
    assert "12345" not in str(listed)

    # The camera reads the plate in another spelling: same normalised plate → alert.
    [alert] = post(srv, obs("vehicle", tiny.INSIDE, "plate-1", plate="沪a 12345"))
    assert alert["app"] == "suspended-licence" and alert["board"] == "public-order"
    assert alert["unit"] == aws.TRAFFIC_UNIT and alert["severity"] == "critical"
    evidence = alert["evidence"]
    assert evidence["details"]["masked"] == "沪A·***45"
    assert evidence["details"]["reason"] == "licence revoked"
    assert evidence["cameras"][0]["id"] == tiny.CAMERA_ID and evidence["cameras"][0]["source"]
    assert evidence["cameras"][0]["u"] is not None  # the camera model sees the place too
    assert len(evidence["observation_ids"]) == 1
    assert {u["unit"] for u in alert["nearby_units"]} >= {tiny.SMALL_UNIT, aws.CITY_UNIT}

    # A flood of sightings of the same track within the cooldown: no second alert.
    flood = [obs("vehicle", tiny.INSIDE, "plate-1", T0 + timedelta(seconds=i), plate="沪A12345")
             for i in range(1, 40)]  # fmt: skip
    assert post(srv, *flood) == []
    assert post(srv, obs("vehicle", tiny.INSIDE, "plate-2", plate="沪B99999")) == []

    # Taken off the list: effective at once, no restart.
    assert admin.delete("/api/watchlists/suspended-licences/entries/沪A12345").status_code == 204
    assert admin.delete("/api/watchlists/suspended-licences/entries/沪A12345").status_code == 404
    assert post(srv, obs("vehicle", tiny.INSIDE, "plate-3", plate=PLATE)) == []
    assert admin.get("/api/watchlists/nope").status_code == 404

    # The clear plate is nowhere in the stored bytes; the audit log holds every hit (40).
    live = srv.client("viewer").get("/api/live").json()["items"]
    assert all("plate" not in e["attributes"] for e in live)
    assert any(e["attributes"].get("plate_masked") == "沪A·***45" for e in live)
    for path in ws.glob("*.sqlite*"):
        data = path.read_bytes()
        for clear in ("沪A12345", "沪a 12345", PLATE, "A12345", "B99999"):
            assert clear.encode() not in data, (path.name, clear)
    with sqlite3.connect(ws / "live.sqlite") as db:  # the audit log sits with the alerts
        hits = db.execute("SELECT COUNT(*), COUNT(alert_id) FROM watchlist_hits").fetchone()
    assert hits == (40, 1)
    assert (ws / "secret.key").stat().st_mode & 0o777 == 0o600


def test_wanted_person_at_a_dormitory_gate_goes_to_the_police(srv: LiveServer) -> None:
    admin = srv.client("admin")
    admin.post("/api/watchlists/wanted-persons/entries", json={"value": TOKEN}).raise_for_status()
    away = obs("person", tiny.OUTSIDE, "id-1", source=aws.GATE_READER, identity_token=TOKEN)
    assert post(srv, away) == []  # listed, but not at a gate
    [alert] = post(srv, obs("person", aws.GATE, "id-2", source=aws.GATE_READER,
                            identity_token=TOKEN))  # fmt: skip
    assert alert["app"] == "wanted-person" and alert["unit"] == tiny.SMALL_UNIT
    assert alert["element_id"] == "site:dorm-gate"
    assert alert["evidence"]["details"]["masked"] == "***34"


# -- zone, count, dwell, threshold apps ------------------------------------------------------


def test_uncovered_muck_truck_goes_to_city_management(srv: LiveServer) -> None:
    [alert] = post(srv, obs("vehicle", tiny.OUTSIDE, "t1", cls="truck", covered=False))
    assert alert["app"] == "muck-truck" and alert["unit"] == aws.CITY_UNIT
    assert alert["board"] == "joint-governance"
    assert post(srv, obs("vehicle", tiny.OUTSIDE, "t2", cls="truck", covered=True)) == []
    assert post(srv, obs("vehicle", tiny.OUTSIDE, "t3", cls="car", covered=False)) == []
    assert post(srv, obs("vehicle", tiny.OUTSIDE, "t4", cls="truck", covered="false")) == []


def test_crowd_in_a_zone(srv: LiveServer) -> None:
    assert set_app(srv, "crowd", parameters={"min_count": 5, "for_s": 4}).status_code == 200
    people = [obs("person", aws.PLAZA, f"c{i}", T0 + timedelta(seconds=i / 10)) for i in range(5)]
    assert post(srv, *people) == []  # five now, not yet for 4 s
    later = [obs("person", aws.PLAZA, f"c{i}", T0 + timedelta(seconds=5)) for i in range(5)]
    [alert] = post(srv, *later)
    assert alert["app"] == "crowd" and alert["unit"] == tiny.BIG_UNIT
    assert alert["element_id"] == "site:plaza" and alert["evidence"]["details"]["count"] == 5
    assert len(alert["evidence"]["observation_ids"]) == 5
    still = [obs("person", aws.PLAZA, f"c{i}", T0 + timedelta(seconds=8)) for i in range(6)]
    assert post(srv, *still) == []  # the same episode alerts once


def test_intrusion_into_a_closed_area(srv: LiveServer) -> None:
    [alert] = post(srv, obs("person", aws.CLOSED, "intruder"))
    assert alert["app"] == "closed-zone" and alert["element_id"] == "site:substation"
    assert post(srv, obs("person", tiny.OUTSIDE, "passer-by")) == []


def test_loitering(srv: LiveServer) -> None:
    assert set_app(srv, "loitering", parameters={"dwell_s": 60}).status_code == 200
    steps = [obs("person", aws.LOITER, "l1", T0 + timedelta(seconds=s)) for s in (0, 25, 50)]
    assert post(srv, *steps) == []
    [alert] = post(srv, obs("person", aws.LOITER, "l1", T0 + timedelta(seconds=70)))
    assert alert["app"] == "loitering" and alert["evidence"]["details"]["dwell_s"] == 70
    # A gap longer than gap_s (30 s) restarts the clock.
    gap = [obs("person", aws.LOITER, "l2", T0 + timedelta(seconds=s)) for s in (0, 40, 80)]
    assert post(srv, *gap) == []


def test_environment_sensor_over_its_limit_with_hysteresis(srv: LiveServer) -> None:
    def reading(value: float, minute: int) -> dict[str, Any]:
        return obs("environment", tiny.INSIDE, "pm", T0 + timedelta(minutes=minute),
                   source=tiny.SENSOR_ID, cls="pm25", pm25=value)  # fmt: skip

    [alert] = post(srv, reading(80, 0))  # the sensor's own limit: 75
    assert alert["app"] == "environment" and alert["unit"] == aws.CITY_UNIT
    details = alert["evidence"]["details"]
    assert details["reading"] == 80 and details["limit"] == 75
    assert details["unit_of_measure"] == "ug/m3"
    assert post(srv, reading(90, 2), reading(70, 4), reading(80, 6)) == []  # not re-armed
    assert post(srv, reading(60, 8)) == []  # below 75 − 10 %: re-armed
    assert len(post(srv, reading(81, 10))) == 1


# -- life cycle, boards, apps ----------------------------------------------------------------


def test_alert_life_cycle_and_boards(srv: LiveServer) -> None:
    [alert] = post(srv, obs("person", aws.CLOSED, "life-1"))
    operator = srv.client("operator")
    assert srv.client("viewer").post(f"/api/alerts/{alert['id']}/dispatch").status_code == 403
    assert operator.post(f"/api/alerts/{alert['id']}/arrive").status_code == 409  # not sent yet
    steps = {}
    for action, status in (("ack", "acknowledged"), ("dispatch", "dispatched"),
                           ("arrive", "on_scene"), ("resolve", "resolved")):  # fmt: skip
        r = operator.post(f"/api/alerts/{alert['id']}/{action}")
        assert r.status_code == 200 and r.json()["status"] == status, r.text
        steps[status] = r.json()
    done = steps["resolved"]
    # Another intruder in the same area after the incident was resolved: a new incident.
    [other] = post(srv, obs("person", aws.CLOSED, "life-2"))
    assert other["id"] != alert["id"] and other["count"] == 1
    assert done["dispatched_by"].startswith("operator#") and done["on_scene_at"]
    response = (datetime.fromisoformat(done["on_scene_at"])
                - datetime.fromisoformat(done["dispatched_at"])).total_seconds()  # fmt: skip
    false = operator.post(f"/api/alerts/{other['id']}/false-alarm")
    assert false.json()["status"] == "false_alarm"
    assert operator.post(f"/api/alerts/{other['id']}/resolve").status_code == 409

    viewer = srv.client("viewer")
    mine = viewer.get("/api/alerts", params={"app": "closed-zone", "board": "public-order"})
    assert {a["id"] for a in mine.json()["items"]} >= {alert["id"], other["id"]}
    assert viewer.get("/api/alerts", params={"app": "closed-zone", "board": "basic"}).json()[
        "total"] == 0  # fmt: skip
    boards = viewer.get("/api/boards").json()
    assert [b["id"] for b in boards["boards"]] == [
        "basic", "public-order", "joint-governance", "public-service"]  # fmt: skip
    order = next(b for b in boards["boards"] if b["id"] == "public-order")
    app = next(a for a in order["apps"] if a["id"] == "closed-zone")
    closed = viewer.get("/api/alerts", params={"app": "closed-zone"}).json()["items"]
    handled = sum(a["status"] in ("resolved", "false_alarm") for a in closed)
    assert app["week"] == app["today"] == len(closed)
    assert app["handled_ratio"] == round(handled / len(closed), 4)
    assert app["median_response_s"] == pytest.approx(response, abs=1e-3)
    assert order["title"] == {"zh": "治安管理", "en": "Public order"}
    assert viewer.get("/api/boards", params={"tz": "Mars/Base"}).status_code == 422


def test_app_settings_apply_now_and_survive_a_restart(ws: Path, tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(ws, tmp_path / "ws")
    for name in copy.glob("live.sqlite*"):
        name.unlink()
    server = start_server(copy)
    try:
        apps = server.client("viewer").get("/api/apps").json()
        assert apps["total"] == 7 and all(a["title"]["zh"] for a in apps["items"])
        assert set_app(server, "crowd", parameters={"min_cont": 3}).status_code == 422
        bad = set_app(server, "crowd", parameters={"min_count": "many"})
        [problem] = bad.json()["detail"]  # the documented 422 array
        assert bad.status_code == 422 and "min_count" in problem["msg"]
        assert problem["loc"] == ["body", "parameters"]
        assert server.client("operator").put("/api/apps/crowd", json={}).status_code == 403
        assert server.client("viewer").get("/api/apps/nope").status_code == 404
        off = set_app(server, "muck-truck", enabled=False)
        assert off.status_code == 200 and off.json()["enabled"] is False
        assert post(server, obs("vehicle", tiny.OUTSIDE, "t9", cls="truck", covered=False)) == []
    finally:
        server.stop()
    again = start_server(copy)
    try:
        muck = again.client("viewer").get("/api/apps/muck-truck").json()
        assert muck["enabled"] is False and muck["parameters"]["cooldown_s"] == 900
        assert set_app(again, "muck-truck", enabled=True).status_code == 200
        assert len(post(again, obs("vehicle", tiny.OUTSIDE, "t10", cls="truck",
                                   covered=False))) == 1  # fmt: skip
    finally:
        again.stop()
