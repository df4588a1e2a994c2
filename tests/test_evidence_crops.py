"""Alert evidence crops: the observed box cut from the frame its camera pushed closest to the
observation, stored with the alert and served at ``evidence.crop``, also when the observation
with the box came in an earlier batch than the one that fired the alert; through a real server
and on the parts alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import ultralytics
from servers import LiveServer, start_server

from scenes.crops import crop_jpeg, evidence_crop
from scenes.models import Observation, ObservationKind
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


def _solid(bgr: tuple[int, int, int], size: tuple[int, int] = (810, 1080)) -> bytes:
    """A JPEG of one colour, `size` (width, height) px."""
    return cv2.imencode(".jpg", np.full((size[1], size[0], 3), bgr, np.uint8))[1].tobytes()


def _post(
    server: LiveServer,
    kind: str,
    track: str,
    attributes: dict[str, object],
    at: datetime | None = None,
) -> list[str]:
    """Post one `kind` ("vehicle": a car, "person") in the sample's Bund road zone, seen by
    CAMERA at `at` (default: now); the ids of the alerts it raised."""
    with server.client("viewer") as c:
        camera = c.get(f"/api/elements/{CAMERA}").json()
    lon, lat = camera["lon"], camera["lat"] + 0.0006  # ~65 m in front of the camera, in the zone
    cls = "car" if kind == "vehicle" else kind
    seen = {} if at is None else {"time": at.isoformat()}
    with server.client("ingest") as c:
        body = c.post("/api/observations", json={"observations": [
            {"kind": kind, "cls": cls, "source": CAMERA, "track_id": track,
             "lon": lon, "lat": lat, "attributes": attributes, **seen}]})  # fmt: skip
    assert body.status_code == 200, body.text
    return list(body.json()["alerts"])


def _alert(server: LiveServer, alert_id: str) -> dict:
    with server.client("viewer") as c:
        alerts = c.get("/api/alerts").json()["items"]
    return next(a for a in alerts if a["id"] == alert_id)


def _observe(server: LiveServer, track: str, attributes: dict[str, object]) -> dict:
    """Post a car in the sample's Bund road zone; the one alert it raises."""
    [alert_id] = _post(server, "vehicle", track, attributes)
    return _alert(server, alert_id)


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
        return Observation(kind=ObservationKind.vehicle, cls="car", source=CAMERA, lon=121.4859,
                           lat=31.239, time=now, attributes=attributes)  # fmt: skip

    fresh = FrameCrops(frames, Catalog(paths.catalog))
    assert fresh.crop(obs(bbox=[100, 200, 500, 800])) is not None
    assert fresh.crop(obs()) is None
    assert fresh.crop(obs(bbox=[500, 200, 100, 800])) is None  # x2 < x1
    assert fresh.crop(obs(bbox=[5000, 5000, 6000, 6000])) is None  # outside the frame
    assert fresh.crop(obs(bbox="1,2,3,4")) is None
    stale = FrameCrops(frames, Catalog(paths.catalog), fresh_s=0.0)
    assert stale.crop(obs(bbox=[100, 200, 500, 800])) is None
    assert crop_jpeg(b"not an image", (0, 0, 10, 10)) is None


def test_a_crowd_alert_crops_the_earlier_observation_in_the_frame_nearest_its_time(
    live_server: LiveServer,
) -> None:
    """Three people within 10 s fire the sample's count rule on the third; only the first, in an
    earlier batch, has a box. Each moment has its own solid colour frame: the crop is red, the
    frame captured with the boxed observation, not the newer green or blue ones. Frames and
    observations carry their capture times, half a second apart."""
    red, green, blue = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR
    box = [100, 200, 500, 800]
    start = datetime.now(UTC) - timedelta(seconds=2)

    def push(bgr: tuple[int, int, int], after_s: float) -> None:
        at = {"X-Frame-Time": (start + timedelta(seconds=after_s)).isoformat()}
        with live_server.client("ingest") as c:
            put = c.put(f"/api/cameras/{CAMERA}/frame", content=_solid(bgr), headers=at)
            assert put.status_code == 204

    def seen(after_s: float) -> datetime:
        return start + timedelta(seconds=after_s)

    push(red, 0.0)
    assert _post(live_server, "person", "p1", {"bbox": box}, seen(0.0)) == []
    push(green, 0.5)
    assert _post(live_server, "person", "p2", {}, seen(1.0)) == []
    push(blue, 1.0)
    [alert_id] = _post(live_server, "person", "p3", {}, seen(1.0))
    alert = _alert(live_server, alert_id)
    assert alert["rule"] == "bund-road-pedestrians"
    assert alert["evidence"]["details"]["count"] == 3 and len(alert["observation_ids"]) == 3
    assert alert["evidence"]["crop"] == f"/api/alerts/{alert_id}/crop.jpg"
    with live_server.client("viewer") as c:
        got = c.get(alert["evidence"]["crop"])
    assert got.status_code == 200, got.text
    crop = _decode(got.content)
    # Box 100..500 × 200..800 with 20 % margin: 20..580 × 80..920 px, scaled to 640 px high.
    assert crop.shape[:2] == (640, 427)
    assert np.abs(crop.reshape(-1, 3).mean(axis=0) - red).max() < 6.0


def test_the_frame_ring_keeps_history_within_its_byte_bound() -> None:
    frames = FrameStore(history_bytes=3000)
    start = datetime.now(UTC)
    arrivals = [frames.put(CAMERA, bytes(1000), "image/jpeg", start + timedelta(seconds=0.05 * n))
                for n in range(6)]  # fmt: skip
    # The newest is always kept; three older ones fit in the history bound, two went.
    assert frames.get(CAMERA) == arrivals[-1] and frames.history_kept == 3000
    assert frames.nearest(CAMERA, arrivals[2].time, within_s=1.0) == arrivals[2]
    assert frames.nearest(CAMERA, arrivals[3].time + timedelta(seconds=0.01), 1.0) == arrivals[3]
    assert frames.nearest(CAMERA, arrivals[1].time, within_s=0.02) is None  # dropped
    assert frames.nearest(CAMERA, arrivals[0].time, within_s=1.0) == arrivals[2]  # oldest kept
    assert frames.nearest(CAMERA, arrivals[-1].time + timedelta(seconds=5), 1.0) is None
    assert frames.nearest("camera:none", arrivals[-1].time, within_s=1.0) is None
    # Another camera's history pushes out this one's oldest, never its newest.
    for _ in range(2):
        frames.put("camera:other", bytes(1000), "image/jpeg")
    assert frames.nearest(CAMERA, arrivals[2].time, within_s=0.02) is None
    assert frames.get(CAMERA) == arrivals[-1] and frames.history_kept == 3000


def test_the_newest_boxed_observation_with_a_near_frame_gives_the_crop(sample_ws: Path) -> None:
    paths, _ = open_workspace(sample_ws)
    frames = FrameStore()
    now = datetime.now(UTC)
    red = frames.put(CAMERA, _solid((0, 0, 255)), "image/jpeg", now)
    green = frames.put(CAMERA, _solid((0, 255, 0)), "image/jpeg", now + timedelta(seconds=0.3))
    crops = FrameCrops(frames, Catalog(paths.catalog))

    def obs(name: str, at: datetime, **attributes: object) -> Observation:
        return Observation(id=name, kind=ObservationKind.person, source=CAMERA, lon=121.4859,
                           lat=31.239, time=at, attributes=attributes)  # fmt: skip

    box = [100, 200, 500, 800]
    early = obs("early", red.time, bbox=box)
    late = obs("late", green.time, bbox=box)
    unboxed = obs("trigger", green.time + timedelta(seconds=0.1))
    asked: list[list[str]] = []

    def stored(ids: list[str]) -> dict[str, Observation]:
        asked.append(ids)
        return {o.id or "": o for o in (early, late) if o.id in ids}

    def mean_colour(image: bytes | None) -> np.ndarray:
        assert image is not None
        return _decode(image).reshape(-1, 3).mean(axis=0)

    ids = ["trigger", "late", "early"]
    # Both boxed ones were stored earlier: the newer wins, in the frame nearest its time (green).
    got = evidence_crop(ids, {"trigger": unboxed}, stored, crops)
    assert asked == [["late", "early"]]
    assert np.abs(mean_colour(got) - (0, 255, 0)).max() < 6.0
    # The batch holds a boxed one: it is cropped (red) and the store is not asked.
    got = evidence_crop(ids, {"early": early}, stored, crops)
    assert len(asked) == 1 and np.abs(mean_colour(got) - (0, 0, 255)).max() < 6.0
    # Observations far from every frame: no crop at all.
    far = obs("far", red.time - timedelta(seconds=60), bbox=box)
    assert evidence_crop(["far"], {"far": far}, stored, crops) is None


@pytest.mark.parametrize(
    ("history_mib", "expected"), [(None, (0, 0, 255)), ("0", (0, 255, 0))], ids=["kept", "none"]
)
def test_frames_carry_their_capture_time_and_crops_follow_it(
    sample_ws: Path,
    server_factory: Callable[..., LiveServer],
    history_mib: str | None,
    expected: tuple[int, int, int],
) -> None:
    """A frame uploaded late with ``X-Frame-Time`` is matched by its capture time: the car seen
    4 s ago is cropped from the red frame captured then, not the green one that arrived after
    — unless ``TWIN_FRAME_HISTORY_MIB=0`` keeps only each camera's newest frame."""
    env = {"TWIN_FRAME_HISTORY_MIB": history_mib} if history_mib is not None else None
    live_server = server_factory(sample_ws, env)
    now = datetime.now(UTC).replace(microsecond=0)
    then = now - timedelta(seconds=4)
    url = f"/api/cameras/{CAMERA}/frame"
    with live_server.client("ingest") as c:
        bad = c.put(url, content=_solid((0, 0, 255)), headers={"X-Frame-Time": "yesterday"})
        assert bad.status_code == 400 and "X-Frame-Time" in bad.text
        naive = c.put(
            url, content=_solid((0, 0, 255)), headers={"X-Frame-Time": "2026-01-01T00:00"}
        )
        assert naive.status_code == 400
        red = c.put(url, content=_solid((0, 0, 255)), headers={"X-Frame-Time": then.isoformat()})
        assert red.status_code == 204
        assert c.put(url, content=_solid((0, 255, 0))).status_code == 204  # green, arrives now
        with live_server.client("viewer") as v:
            newest = v.get(url)
        assert datetime.fromisoformat(newest.headers["X-Frame-Time"]) >= now
    with live_server.client("viewer") as v:
        element = v.get(f"/api/elements/{CAMERA}").json()
    with live_server.client("ingest") as c:
        body = c.post("/api/observations", json={"observations": [
            {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "late",
             "lon": element["lon"], "lat": element["lat"] + 0.0006, "time": then.isoformat(),
             "attributes": {"bbox": [100, 200, 500, 800]}}]})  # fmt: skip
    assert body.status_code == 200, body.text
    [alert_id] = body.json()["alerts"]
    alert = _alert(live_server, alert_id)
    with live_server.client("viewer") as v:
        crop = _decode(v.get(alert["evidence"]["crop"]).content)
    assert np.abs(crop.reshape(-1, 3).mean(axis=0) - expected).max() < 6.0
