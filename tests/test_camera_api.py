"""Camera HTTP API and `twin camera calibrate` on the sample district, against a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from paths import TWIN
from servers import TOKENS, LiveServer

from twin.cameras.camera import Camera
from twin.cameras.rig import CameraRig
from twin.catalog import Catalog
from twin.live.client import PoseFollower, fetch_camera

EAGLE = "camera:cam-pearl-eagle"
ROAD = "camera:cam-bund-road"
PTZ = "camera:cam-lujiazui-ptz"


def test_list_and_describe_cameras(live_server: LiveServer) -> None:
    with live_server.client("viewer") as c:
        body = c.get("/api/cameras").json()
        ids = [item["id"] for item in body["items"]]
        assert {EAGLE, ROAD, PTZ} <= set(ids) and body["total"] == len(ids)
        eagle = c.get(f"/api/cameras/{EAGLE}").json()
        keys = ("lon", "lat", "height", "heading", "pitch", "roll", "hfov", "fx", "fy", "cx",
                "cy", "distortion", "image_width", "image_height", "footprint")  # fmt: skip
        assert set(keys) <= set(eagle)
        assert eagle["camera_kind"] == "eagle-eye" and eagle["fx"] == pytest.approx(
            960 / np.tan(np.radians(25))
        )
        assert eagle["footprint"]["type"] == "Polygon"
        assert c.get("/api/cameras/camera:nope").status_code == 404
    with live_server.client() as anonymous:
        assert anonymous.get("/api/cameras").status_code == 401


def test_ray_from_the_eagle_eye_lands_on_the_city(live_server: LiveServer) -> None:
    with live_server.client("operator") as c:  # the PTZ camera looks up into the sky
        c.put(f"/api/cameras/{PTZ}/ptz", json={"pan": 0, "tilt": 30}).raise_for_status()
    with live_server.client("viewer") as c:
        hit = c.get(f"/api/cameras/{EAGLE}/ray", params={"u": 960, "v": 800}).json()
        sky = c.get(f"/api/cameras/{PTZ}/ray", params={"u": 960, "v": 5}).json()
        outside = c.get(f"/api/cameras/{EAGLE}/ray", params={"u": 5000, "v": 5})
    assert hit["hit"] and 50 < hit["distance_m"] < 5000 and hit["uncertainty_m"] > 0
    # Independent check: the ray's point lies on the pixel's ray from the camera.
    camera = Camera.from_record(_record(live_server, EAGLE))
    assert camera.project(hit["lon"], hit["lat"], hit["height"]) == pytest.approx(
        (960, 800), abs=0.01
    )
    assert sky["hit"] is False and sky["lon"] is None
    assert outside.status_code == 422


def _record(srv: LiveServer, element_id: str) -> dict[str, object]:
    with srv.client("viewer") as c:
        record: dict[str, object] = c.get(f"/api/elements/{element_id}").json()
    return record


def test_labels_of_the_eagle_eye(live_server: LiveServer) -> None:
    with live_server.client("viewer") as c:
        body = c.get(f"/api/cameras/{EAGLE}/labels", params={"limit": 400}).json()
    items = body["items"]
    assert 0 < len(items) <= 400
    assert {"element_id", "name", "kind", "u", "v", "visible"} <= set(items[0])
    visible = [i for i in items if i["visible"]]
    assert len(visible) > 20 and {i["kind"] for i in visible} >= {"building", "road"}
    assert all(0 <= i["u"] <= 1920 and 0 <= i["v"] <= 1080 for i in items)
    # A visible building's label pixel casts a ray back onto that building.
    building = next(i for i in visible if i["kind"] == "building")
    with live_server.client("viewer") as c:
        hit = c.get(
            f"/api/cameras/{EAGLE}/ray", params={"u": building["u"], "v": building["v"]}
        ).json()
    assert hit["element_id"] == building["element_id"]


def test_ptz_needs_operator_moves_the_camera_and_is_published(live_server: LiveServer) -> None:
    body = {"pan": 250.0, "tilt": -30.0, "zoom": 0.5}
    with live_server.client("viewer") as c:
        assert c.put(f"/api/cameras/{PTZ}/ptz", json=body).status_code == 403
    with live_server.client("ingest") as c:
        assert c.put(f"/api/cameras/{PTZ}/ptz", json=body).status_code == 403

    async def move_and_listen() -> dict[str, Any]:
        url = live_server.url.replace("http", "ws") + f"/ws/live?token={TOKENS['viewer']}"
        async with websockets.connect(url) as ws:
            while json.loads(await ws.recv())["topic"] != "ready":
                pass
            with live_server.client("operator") as c:
                moved = c.put(f"/api/cameras/{PTZ}/ptz", json=body)
                assert moved.status_code == 200, moved.text
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["topic"] == "camera":
                    payload: dict[str, Any] = message["payload"]
                    return payload

    payload = asyncio.run(move_and_listen())
    assert payload["id"] == PTZ and payload["heading"] == 250.0 and payload["pitch"] == -30.0
    assert payload["ptz"] == body
    assert float(payload["hfov"]) < 60.0 / 1.5  # zoomed in
    with live_server.client("viewer") as c:
        assert c.get(f"/api/cameras/{PTZ}").json()["heading"] == 250.0
    with live_server.client("admin") as c:
        fixed = c.put(f"/api/cameras/{ROAD}/ptz", json=body)
        assert fixed.status_code == 422 and "not a PTZ" in fixed.json()["detail"][0]["msg"]
        assert c.put(f"/api/cameras/{PTZ}/ptz", json={**body, "tilt": -95}).status_code == 422


def test_drone_telemetry_makes_a_live_camera(live_server: LiveServer) -> None:
    sample = {"lon": 121.4995, "lat": 31.2385, "altitude": 150.0, "yaw": 80.0,
              "gimbal": {"yaw": 10.0, "pitch": -45.0}, "hfov": 70.0,
              "time": "2024-05-01T10:00:00Z"}  # fmt: skip
    with live_server.client("viewer") as c:
        assert c.post("/api/drones/d1/telemetry", json=sample).status_code == 403
    with live_server.client("ingest") as c:
        r = c.post("/api/drones/d1/telemetry", json=sample)
        assert r.status_code == 200, r.text
        assert c.post("/api/drones/d1/telemetry", json={**sample, "bogus": 1}).status_code == 422
    drone = r.json()
    assert (drone["heading"], drone["pitch"], drone["height"]) == pytest.approx((90, -45, 150))
    assert drone["camera_kind"] == "drone" and drone["footprint"]["type"] == "Polygon"
    assert drone["time"].startswith("2024-05-01T10:00:00")
    with live_server.client("viewer") as c:
        assert "d1" in [i["id"] for i in c.get("/api/cameras").json()["items"]]
        assert c.get("/api/cameras/d1/ray", params={"u": 960, "v": 540}).json()["hit"]


def test_element_record_lists_cameras_with_visibility(live_server: LiveServer) -> None:
    with live_server.client("viewer") as c:
        labels = c.get(f"/api/cameras/{EAGLE}/labels", params={"limit": 1000}).json()["items"]
        shown = [i for i in labels if i["kind"] == "building" and i["visible"]][:15]
        hidden = [i for i in labels if i["kind"] == "building" and not i["visible"]][:5]
        records = {i["element_id"]: c.get(f"/api/elements/{i['element_id']}").json()
                   for i in shown + hidden}  # fmt: skip
    agree = 0
    for label in shown:
        seen = {cam["id"]: cam for cam in records[label["element_id"]]["cameras"]}
        # Both use the roof-centre anchor when it shows: the same pixel.
        pixel = (seen[EAGLE]["u"], seen[EAGLE]["v"]) if EAGLE in seen else None
        if pixel == pytest.approx((label["u"], label["v"])) and seen[EAGLE]["visible"]:
            agree += 1
    assert agree >= 5
    for label in hidden:  # hidden in the labels → listed as not visible (or not at all)
        seen = {cam["id"]: cam for cam in records[label["element_id"]]["cameras"]}
        assert EAGLE not in seen or seen[EAGLE]["visible"] is False


def _synthetic_pairs(camera: Camera, n: int) -> list[tuple[float, float, float, float, float]]:
    rng = np.random.default_rng(4)
    pairs: list[tuple[float, float, float, float, float]] = []
    while len(pairs) < n:
        w, h = camera.image_width, camera.image_height
        u, v = rng.uniform(0.05 * w, 0.95 * w), rng.uniform(0.5 * h, 0.97 * h)
        ground = camera.ground_point(u, v, ground_height=camera.ground_height + rng.uniform(0, 60))
        if ground is not None:
            pairs.append((u + rng.normal(0, 0.5), v + rng.normal(0, 0.5), *ground))
    return pairs


def test_calibrate_over_http_saves_the_pose(live_server: LiveServer) -> None:
    camera = Camera.from_record(_record(live_server, PTZ))
    # The true camera is turned 4° and 2 m higher than the catalog says.
    truth = replace(camera, heading=camera.heading + 4.0, mount_height=camera.mount_height + 2.0)
    pairs = [dict(zip(("u", "v", "lon", "lat", "height"), p, strict=True))
             for p in _synthetic_pairs(truth, 10)]  # fmt: skip
    with live_server.client("operator") as c:
        assert c.post(f"/api/cameras/{PTZ}/calibrate", json={"pairs": pairs}).status_code == 403
    with live_server.client("admin") as c:
        r = c.post(f"/api/cameras/{PTZ}/calibrate", json={"pairs": pairs})
        assert r.status_code == 200, r.text
        few = c.post(f"/api/cameras/{PTZ}/calibrate", json={"pairs": pairs[:3]})
        assert few.status_code == 422
        now = c.get(f"/api/cameras/{PTZ}").json()
    report = r.json()["calibration"]
    assert report["rms_px"] < 1.5 and report["pairs"] == 10
    assert now["heading"] == pytest.approx(truth.heading, abs=0.2)
    assert now["height"] == pytest.approx(truth.ground_height + truth.mount_height, abs=0.5)
    saved = json.loads((live_server.ws / "cameras.json").read_text())
    assert saved["cameras"][PTZ]["attributes"]["heading"] == pytest.approx(now["heading"])


def test_cli_calibrate(sample_ws: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    rig = CameraRig(ws, Catalog(ws / "catalog.sqlite"))
    camera = rig.camera(ROAD)
    truth = replace(camera, pitch=camera.pitch - 3.0, roll=1.0)
    csv = tmp_path / "pairs.csv"
    rows = [",".join(f"{x:.9f}" for x in pair) for pair in _synthetic_pairs(truth, 8)]
    lines = ["u,v,lon,lat,height", *rows]
    csv.write_text("\n".join(lines) + "\n")
    result = subprocess.run([TWIN, "camera", "calibrate", str(ws), ROAD, str(csv)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "calibrated camera:cam-bund-road from 8 pairs" in result.stderr
    solved = CameraRig(ws, Catalog(ws / "catalog.sqlite")).camera(ROAD)
    assert (solved.pitch, solved.roll) == pytest.approx((truth.pitch, truth.roll), abs=0.2)
    missing = subprocess.run([TWIN, "camera", "calibrate", str(ws), "camera:nope", str(csv)],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode != 0 and "camera:nope" in missing.stderr


def test_the_detection_worker_follows_ptz_moves_and_keeps_fixed_poses(
    live_server: LiveServer,
) -> None:
    """`twin detect` projects with the camera's current pose: a PTZ move reaches the worker's
    PoseFollower; the road camera (fixed) is read once."""
    token = TOKENS["ingest"]
    ptz = fetch_camera(live_server.url, PTZ, token)
    follower = PoseFollower(live_server.url, ptz, token, interval_s=0.0)
    road = PoseFollower(live_server.url, fetch_camera(live_server.url, ROAD, token), token)
    assert follower.moving and not road.moving
    with live_server.client("operator") as c:
        c.put(f"/api/cameras/{PTZ}/ptz", json={"pan": 123.0, "tilt": 25.0}).raise_for_status()
        expected = c.get(f"/api/cameras/{PTZ}").json()
    moved = follower.current()
    assert follower.updates == 1
    assert moved.heading == pytest.approx(expected["heading"])
    assert moved.pitch == pytest.approx(expected["pitch"])
    assert moved.heading != pytest.approx(ptz.heading)
