"""Alert evidence crops: the observed box cut from the source camera's recent frame, stored with
the alert and served at ``evidence.crop``, through a real server and on the parts alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import ultralytics
from conftest import LiveServer, start_server

from scenes.crops import crop_jpeg
from scenes.models import Observation
from server.crops import FrameCrops
from server.frames import FrameStore
from twin.catalog import Catalog
from twin.workspace import open_workspace

BUS_JPG = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"  # 810 × 1080 px
CAMERA = "camera:cam-bund-road"  # its catalog image is 810 × 1080 px too


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not an image"
    return image


def _observe(server: LiveServer, track: str, attributes: dict[str, object]) -> dict:
    """Post a car in the sample's Bund road zone; the one alert it raises."""
    with server.client("viewer") as c:
        camera = c.get(f"/api/elements/{CAMERA}").json()
    lon, lat = camera["lon"], camera["lat"] + 0.0006  # ~65 m in front of the camera, in the zone
    with server.client("ingest") as c:
        body = c.post("/api/observations", json={"observations": [
            {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": track,
             "lon": lon, "lat": lat, "attributes": attributes}]})  # fmt: skip
    assert body.status_code == 200, body.text
    [alert_id] = body.json()["alerts"]
    with server.client("viewer") as c:
        alerts = c.get("/api/alerts").json()["items"]
    return next(a for a in alerts if a["id"] == alert_id)


def test_an_alert_keeps_a_crop_of_the_box_in_the_cameras_recent_frame(
    live_server: LiveServer,
) -> None:
    bus = BUS_JPG.read_bytes()
    box = [100, 200, 500, 800]  # px of the 810 × 1080 frame the detector saw

    no_frame = _observe(live_server, "1", {"bbox": box})
    assert no_frame["evidence"]["crop"] is None
    with live_server.client("viewer") as c:
        assert c.get(f"/api/alerts/{no_frame['id']}/crop.jpg").status_code == 404

    # The worker publishes frames halved; the box stays in the detector's (catalog) pixels.
    half = cv2.imencode(".jpg", cv2.resize(_decode(bus), (405, 540)))[1].tobytes()
    with live_server.client("ingest") as c:
        assert c.put(f"/api/cameras/{CAMERA}/frame", content=half).status_code == 204
    alert = _observe(live_server, "2", {"bbox": box})
    assert alert["evidence"]["crop"] == f"/api/alerts/{alert['id']}/crop.jpg"
    with live_server.client("viewer") as c:
        got = c.get(alert["evidence"]["crop"])
        assert c.get(f"/api/alerts/{alert['id']}/crop.jpg").status_code == 200
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    crop = _decode(got.content)
    # Box halved → 50, 100, 250, 400; 20 % margin each side → 10..290 × 40..460.
    assert crop.shape[:2] == (420, 280)
    expected = _decode(half)[40:460, 10:290].astype(float)
    assert np.abs(crop.astype(float) - expected).mean() < 8.0

    # A frame_size attribute overrides the catalog size; large crops shrink to 640 px.
    with live_server.client("ingest") as c:
        assert c.put(f"/api/cameras/{CAMERA}/frame", content=bus).status_code == 204
    big = _observe(live_server, "3", {"bbox": [200, 400, 1000, 1600], "frame_size": [1620, 2160]})
    with live_server.client("viewer") as c:
        got = c.get(big["evidence"]["crop"])
        assert c.get(big["evidence"]["crop"]).status_code == 200
    crop = _decode(got.content)
    assert crop.shape[:2] == (640, 427)  # 20..580 × 80..920 = 560 × 840, scaled by 640 / 840
    expected = cv2.resize(_decode(bus)[80:920, 20:580], (427, 640), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(float) - expected.astype(float)).mean() < 8.0

    # Durable: the crop survives a restart of the server on the same workspace.
    live_server.stop()
    again = start_server(live_server.ws)
    try:
        with again.client("viewer") as c:
            assert _decode(c.get(big["evidence"]["crop"]).content).shape[:2] == (640, 427)
            assert c.get("/api/alerts/nope/crop.jpg").status_code == 404
            assert c.get(big["evidence"]["crop"], headers={"Authorization": ""}).status_code in (
                401,
                403,
            )
    finally:
        again.stop()


def test_stale_frames_sensors_and_bad_boxes_give_no_crop(sample_ws: Path) -> None:
    paths, _ = open_workspace(sample_ws)
    frames = FrameStore()
    frames.put(CAMERA, BUS_JPG.read_bytes(), "image/jpeg")
    now = datetime.now(UTC)

    def obs(**attributes: object) -> Observation:
        return Observation(kind="vehicle", cls="car", source=CAMERA, lon=121.4859, lat=31.239,
                           time=now, attributes=attributes)  # fmt: skip

    fresh = FrameCrops(frames, Catalog(paths.catalog))
    assert fresh.crop(obs(bbox=[100, 200, 500, 800])) is not None
    assert fresh.crop(obs()) is None
    assert fresh.crop(obs(bbox=[500, 200, 100, 800])) is None  # x2 < x1
    assert fresh.crop(obs(bbox=[5000, 5000, 6000, 6000])) is None  # outside the frame
    assert fresh.crop(obs(bbox="1,2,3,4")) is None
    stale = FrameCrops(frames, Catalog(paths.catalog), fresh_s=0.0)
    assert stale.crop(obs(bbox=[100, 200, 500, 800])) is None
    assert crop_jpeg(b"not an image", (0, 0, 10, 10)) is None
