"""The detection worker: real YOLO on real images, pixels → ground, and `twin detect` against a
real server."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import ultralytics
import yaml
from paths import REPO, TWIN
from pyproj import Geod
from servers import TOKENS, TOKENS_ENV, LiveServer
from waiting import wait_for

from bench.common import free_port
from twin.cameras.camera import Camera
from twin.cameras.ptz import PtzStatus, SimulatedPtz
from twin.catalog import Catalog
from twin.errors import TwinError
from twin.live.client import ObservationSender
from twin.live.detect import Detection, Detector, detections_to_observations
from twin.live.ground import Ground
from twin.live.ptz_follow import follow_ptz
from twin.live.sources import open_source
from twin.live.stream import RECONNECT_BACKOFF_S, StreamSource

ASSETS = Path(ultralytics.__file__).parent / "assets"
MODEL = REPO / "models" / "yolov8n_int8.tflite"
GEOD = Geod(ellps="WGS84")
SAMPLE_CAMERA = "camera:cam-bund-road"

# Placed like the sample's road camera: on the Bund, looking north along the road.
ROAD_CAMERA = Camera(
    "camera:test-road", lon=121.4903, lat=31.2400, ground_height=8.0, mount_height=6.0,
    heading=0.0, pitch=-12.0, roll=0.0, hfov=60.0, image_width=810, image_height=1080,
)  # fmt: skip


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(MODEL)


@pytest.fixture(scope="module")
def bus_detections(detector: Detector) -> list[Detection]:
    image = cv2.imread(str(ASSETS / "bus.jpg"))
    assert image is not None
    return detector.detect(image)


@pytest.mark.slow
def test_yolo_finds_the_bus_and_people(bus_detections: list[Detection]) -> None:
    classes = [d.cls for d in bus_detections]
    assert classes.count("bus") == 1
    assert classes.count("person") >= 3
    bus = next(d for d in bus_detections if d.cls == "bus")
    assert bus.kind == "vehicle" and bus.confidence > 0.5
    assert {d.kind for d in bus_detections if d.cls == "person"} == {"person"}
    assert all(d.track_id is not None for d in bus_detections)
    assert len({d.track_id for d in bus_detections}) == len(bus_detections)
    x1, y1, x2, y2 = bus.bbox
    assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080 and (x2 - x1) > 400  # the bus is wide


@pytest.mark.slow
def test_observations_land_in_front_of_the_camera(bus_detections: list[Detection]) -> None:
    observations = detections_to_observations(
        bus_detections, ROAD_CAMERA, frame_index=7, frame_size=(810, 1080)
    )
    assert len(observations) == len(bus_detections)  # every foot point is below the horizon
    by_foot: list[tuple[float, float]] = []
    for obs, det in zip(observations, bus_detections, strict=True):
        azimuth, _, dist = GEOD.inv(ROAD_CAMERA.lon, ROAD_CAMERA.lat, obs["lon"], obs["lat"])
        assert 5.0 <= dist <= 80.0, (det.cls, dist)
        assert abs(azimuth) < 35.0  # north of the camera, inside the 60° view
        assert obs["height"] == pytest.approx(ROAD_CAMERA.ground_height, abs=0.01)
        assert obs["source"] == ROAD_CAMERA.id and obs["kind"] == det.kind
        assert obs["track_id"] == str(det.track_id)
        assert obs["attributes"]["frame"] == 7
        assert obs["attributes"]["bbox"] == pytest.approx(list(det.bbox), abs=0.06)
        by_foot.append((det.bbox[3], dist * math.cos(math.radians(azimuth))))
    by_foot.sort()
    ahead = [north for _, north in by_foot]
    assert ahead == sorted(ahead, reverse=True)  # lower in the image = nearer


def test_frame_size_is_scaled_to_the_calibrated_image() -> None:
    det = Detection("car", "vehicle", 0.9, (800.0, 1000.0, 820.0, 2000.0), 3)
    big = detections_to_observations([det], ROAD_CAMERA, 0, frame_size=(1620, 2160))
    small = detections_to_observations(
        [Detection("car", "vehicle", 0.9, (400.0, 500.0, 410.0, 1000.0), 3)], ROAD_CAMERA, 0
    )
    assert (big[0]["lon"], big[0]["lat"]) == pytest.approx((small[0]["lon"], small[0]["lat"]))


def test_boxes_above_the_horizon_are_left_out() -> None:
    sky = Detection("person", "person", 0.9, (400.0, 100.0, 420.0, 200.0), 1)
    assert detections_to_observations([sky], ROAD_CAMERA, 0) == []


def test_observations_land_on_roofs_with_workspace_meshes(sample_ws: Path) -> None:
    ground = Ground.from_workspace(sample_ws)
    catalog = Catalog(sample_ws / "catalog.sqlite")
    building = next(
        el for el in catalog.all("building")
        if 20.0 < el.height < 100.0 and len(catalog.containing(el.lon, el.lat, "building")) == 1
    )  # fmt: skip
    above = replace(
        ROAD_CAMERA, lon=building.lon, lat=building.lat, ground_height=building.base_height,
        mount_height=building.height + 30.0, pitch=-90.0,
    )  # fmt: skip
    foot = Detection("person", "person", 0.9, (395.0, 500.0, 415.0, 540.0), 1)  # foot at centre
    (on_roof,) = detections_to_observations([foot], above, 0, ground=ground)
    assert on_roof["attributes"]["on"] == building.id
    # 30 m range, 1 px / 0.5° / 1 m camera σ: about 1.1 m
    assert 0.5 < on_roof["attributes"]["uncertainty_m"] < 2.0
    assert on_roof["height"] == pytest.approx(building.base_height + building.height, abs=0.05)
    _, _, dist = GEOD.inv(building.lon, building.lat, on_roof["lon"], on_roof["lat"])
    assert dist < 0.01
    (flat,) = detections_to_observations([foot], above, 0)
    assert flat["height"] == pytest.approx(building.base_height, abs=0.01)
    assert "on" not in flat["attributes"]
    far_sigma = flat["attributes"]["uncertainty_m"]  # the flat ground is farther than the roof
    assert far_sigma > on_roof["attributes"]["uncertainty_m"]


def test_rays_pass_through_the_building_the_camera_is_mounted_on(sample_ws: Path) -> None:
    ground = Ground.from_workspace(sample_ws)
    catalog = Catalog(sample_ws / "catalog.sqlite")
    host = next(
        el for el in catalog.all("building")
        if el.height > 30.0 and len(catalog.containing(el.lon, el.lat, "building")) == 1
    )  # fmt: skip
    inside = replace(  # mounted at mid-height in the building, looking down at 45°
        ROAD_CAMERA, lon=host.lon, lat=host.lat, ground_height=host.base_height,
        mount_height=host.height / 2.0, pitch=-45.0,
    )  # fmt: skip
    foot = Detection("person", "person", 0.9, (395.0, 520.0, 415.0, 540.0), 1)
    (through,) = detections_to_observations([foot], inside, 0, ground=ground)
    assert through["attributes"].get("on") != host.id
    (blocked,) = detections_to_observations([foot], inside, 0, ground=Ground(ground.world))
    assert blocked["attributes"]["on"] == host.id  # without the host skip: its own floor/wall


def test_image_folder_source_plays_in_order_and_loops(tmp_path: Path) -> None:
    for name in ("zidane.jpg", "bus.jpg"):
        shutil.copy(ASSETS / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path), fps=50.0, loop=2)
    frames = list(source.frames())
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert [f.size for f in frames] == [(810, 1080), (1280, 720)] * 2  # bus.jpg sorts first
    assert source.dropped == 0


@pytest.mark.slow
def test_video_source_drops_frames_when_processing_lags(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 20.0, (64, 48))
    for i in range(40):  # 2 s of video
        writer.write(np.full((48, 64, 3), i * 5, np.uint8))
    writer.release()
    source = open_source(str(video), fps=1.0, loop=1)
    seen = 0
    for _ in source.frames():
        seen += 1
        time.sleep(0.15)  # three frames' worth of work per frame
    assert seen + source.dropped == 40
    assert source.dropped >= 20


class _MjpegServer:
    """An HTTP MJPEG (multipart/x-mixed-replace) camera on loopback that closes each
    connection after `per_connection` frames, like a flaky IP camera."""

    def __init__(self, per_connection: int) -> None:
        served = self.connections = []  # type: list[int]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.append(1)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for k in range(per_connection):
                    _, jpg = cv2.imencode(".jpg", np.full((48, 64, 3), k * 20, np.uint8))
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    try:
                        self.wfile.write(part % len(jpg) + jpg.tobytes() + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.04)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_a_dropped_http_stream_is_reconnected() -> None:
    camera = _MjpegServer(per_connection=10)
    try:
        source = open_source(camera.url, fps=0, loop=1)
        frames = []
        for frame in source.frames():
            frames.append(frame)
            if len(frames) == 25:
                break
    finally:
        camera.close()
    assert len(camera.connections) >= 3 and source.reconnects >= 2
    assert [f.index for f in frames] == list(range(25))
    assert all(f.size == (64, 48) for f in frames)


def test_a_stream_that_stays_down_fails_after_its_tries() -> None:
    url = f"http://127.0.0.1:{free_port()}/video.mjpg"
    source = open_source(url, fps=0, loop=1)
    assert isinstance(source, StreamSource)
    source.max_tries = 2
    start = time.monotonic()
    with pytest.raises(TwinError, match="cannot open video source"):
        next(iter(source.frames()))
    assert time.monotonic() - start >= RECONNECT_BACKOFF_S  # it waited before the second try


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_detect_reports_an_unreachable_server_in_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [TWIN, "detect", str(ASSETS / "bus.jpg"), "--camera", SAMPLE_CAMERA, "--server", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "cannot reach the twin server" in _error_line(result)


def test_sender_buffers_while_the_server_is_down_and_resends(
    sample_ws: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sender = ObservationSender(url, TOKENS["ingest"], max_buffer=3)
    obs = detections_to_observations(
        [Detection("person", "person", 0.9, (400.0, 900.0, 420.0, 1000.0), i) for i in range(4)],
        replace(ROAD_CAMERA, id=SAMPLE_CAMERA),
        0,
    )
    assert sender.send(obs) == 0  # nobody listens yet
    assert sender.pending == 3 and sender.lost == 1  # bounded: the oldest went
    with _serve(sample_ws, tmp_path, port) as live:
        assert sender.flush(timeout=20.0)
        assert sender.sent == 3
        with live.client("viewer") as client:
            entities = _live_entities(client, SAMPLE_CAMERA)
    sender.close()
    assert {e["track_id"] for e in entities} == {"1", "2", "3"}


def _live_entities(client: httpx.Client, source: str) -> list[dict[str, Any]]:
    response = client.get("/api/live")
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [e for e in items if e.get("source") == source]


class _serve:
    """`twin serve` on a given port (a copy of the workspace), stopped on exit."""

    def __init__(self, ws: Path, tmp: Path, port: int) -> None:
        self.ws = tmp / "ws"
        shutil.copytree(ws, self.ws)
        self.port = port

    def __enter__(self) -> LiveServer:
        env = {**os.environ, "TWIN_TOKENS": TOKENS_ENV}
        process = subprocess.Popen(
            [TWIN, "serve", str(self.ws), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.live = LiveServer(f"http://127.0.0.1:{self.port}", self.ws, process)
        return self.live

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


@pytest.fixture
def image_folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(ASSETS / name, folder / name)
    yield folder


def _detect(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWIN, "detect", *args], capture_output=True, text=True, timeout=300)


def test_twin_detect_end_to_end(live_server: LiveServer, image_folder: Path) -> None:
    result = _detect(
        [str(image_folder), "--camera", SAMPLE_CAMERA, "--server", live_server.url,
         "--token", TOKENS["ingest"], "--fps", "10", "--workspace", str(live_server.ws)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 frames" in result.stderr
    with live_server.client("viewer") as client:
        entities = _live_entities(client, SAMPLE_CAMERA)
        camera = client.get(f"/api/elements/{SAMPLE_CAMERA}").json()
        frame = client.get(f"/api/cameras/{SAMPLE_CAMERA}/frame")
    # The worker pushed what it saw for the war room's AR view: a JPEG of the first frame.
    assert frame.status_code == 200 and frame.content[:3] == b"\xff\xd8\xff"
    # ByteTrack matches boxes across the two unrelated stills, so a track may change class; the
    # entities are the latest observation of each track.
    kinds = [e["kind"] for e in entities]
    assert set(kinds) <= {"person", "vehicle"} and kinds.count("person") >= 3
    found = re.search(r"(\d+) observations sent", result.stderr)
    assert found is not None, result.stderr
    sent = int(found.group(1))
    # bus.jpg: a bus and 4 people; zidane.jpg: at least the person matched to an old track
    # (ByteTrack confirms new tracks on their second frame only).
    assert sent >= 6
    for entity in entities:
        _, _, dist = GEOD.inv(camera["lon"], camera["lat"], entity["lon"], entity["lat"])
        assert dist < 200.0


def _ignore_sigint() -> None:
    """Start a child as a non-interactive shell starts a background job: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
def test_twin_detect_stops_cleanly_on_ctrl_c_and_a_service_stop(
    live_server: LiveServer, image_folder: Path, stop: signal.Signals
) -> None:
    """Ctrl+C and systemd's SIGTERM both end a run after sending what is left (exit 0, a
    summary), even when `twin detect` was started with SIGINT ignored."""
    process = subprocess.Popen(
        [TWIN, "detect", str(image_folder), "--camera", SAMPLE_CAMERA, "--server",
         live_server.url, "--token", TOKENS["ingest"], "--fps", "5", "--loop", "0"],
        stderr=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint,
    )  # fmt: skip
    try:
        with live_server.client("viewer") as client:
            wait_for(lambda: bool(_live_entities(client, SAMPLE_CAMERA)), timeout_s=120)
        process.send_signal(stop)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "interrupted" in err and "observations sent" in err, err


def test_twin_detect_unknown_camera_fails_in_one_line(
    live_server: LiveServer, image_folder: Path
) -> None:
    result = _detect(
        [str(image_folder), "--camera", "camera:nope", "--server", live_server.url,
         "--token", TOKENS["ingest"]]
    )  # fmt: skip
    assert result.returncode != 0
    line = _error_line(result)
    assert "camera:nope" in line and "not" in line


def test_detector_rejects_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="does not exist"):
        Detector(tmp_path / "nope.tflite")


def _feeds_config(tmp_path: Path, image_folder: Path, feeds: list[dict[str, object]]) -> Path:
    config = tmp_path / "feeds.yaml"
    config.write_text(yaml.safe_dump(feeds))
    return config


def test_twin_detect_runs_several_feeds_from_a_config(
    live_server: LiveServer, image_folder: Path, tmp_path: Path
) -> None:
    ptz = "camera:cam-lujiazui-ptz"
    config = _feeds_config(
        tmp_path, image_folder,
        [{"source": "frames", "camera": SAMPLE_CAMERA}, {"source": "frames", "camera": ptz}],
    )  # fmt: skip
    result = _detect(
        ["--config", str(config), "--server", live_server.url, "--token", TOKENS["ingest"],
         "--fps", "10", "--workspace", str(live_server.ws)]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("worker started") == 2
    assert result.stderr.count("worker finished") == 2
    pids = set(re.findall(r"worker started \(pid (\d+)\)", result.stderr))
    assert len(pids) == 2  # one process per feed
    with live_server.client("viewer") as client:
        road = _live_entities(client, SAMPLE_CAMERA)
        turning = _live_entities(client, ptz)
    assert road and turning
    for entity in road + turning:
        assert entity["attributes"]["uncertainty_m"] > 0


def _start_one_feed(
    live_server: LiveServer, image_folder: Path, tmp_path: Path
) -> subprocess.Popen[str]:
    """`twin detect --config` with one feed of `image_folder` looping forever (stderr piped)."""
    config = _feeds_config(tmp_path, image_folder, [{"source": "frames", "camera": SAMPLE_CAMERA}])
    return subprocess.Popen(
        [TWIN, "detect", "--config", str(config), "--server", live_server.url,
         "--token", TOKENS["ingest"], "--fps", "5", "--loop", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_killed_worker_is_restarted_and_ctrl_c_stops_cleanly(
    live_server: LiveServer, image_folder: Path, tmp_path: Path
) -> None:
    process = _start_one_feed(live_server, image_folder, tmp_path)
    lines: list[str] = []
    stderr = process.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")))
    reader.start()

    def wait_for(pattern: str, count: int = 1, timeout: float = 90.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for line in list(lines) if (m := re.search(pattern, line))]
            if len(found) >= count:
                return [m.group(1) if m.groups() else m.group(0) for m in found]
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in {''.join(lines)}")

    try:
        (pid,) = wait_for(r"worker started \(pid (\d+)\)")
        with live_server.client("viewer") as client:
            deadline = time.monotonic() + 90
            while not _live_entities(client, SAMPLE_CAMERA) and time.monotonic() < deadline:
                time.sleep(0.5)
        os.kill(int(pid), signal.SIGKILL)
        wait_for(r"exited with code -9; restarting")
        second = wait_for(r"worker started \(pid (\d+)\)", count=2)[1]
        assert second != pid
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
    assert any("stopping the workers" in line for line in lines)
    with pytest.raises(ProcessLookupError):  # the worker went with the supervisor
        os.kill(int(second), 0)


def test_workers_stop_when_their_supervisor_is_killed(
    live_server: LiveServer, image_folder: Path, tmp_path: Path
) -> None:
    """A supervisor killed outright cannot stop its workers: they notice and stop themselves
    instead of running on unsupervised."""
    process = _start_one_feed(live_server, image_folder, tmp_path)
    assert process.stderr is not None
    worker = 0
    try:
        for line in process.stderr:
            if found := re.search(r"worker started \(pid (\d+)\)", line):
                worker = int(found.group(1))
                break
        assert worker, "no worker started"
        with live_server.client("viewer") as client:
            wait_for(lambda: bool(_live_entities(client, SAMPLE_CAMERA)), timeout_s=120)
        process.kill()
        process.wait()
        wait_for(lambda: not _alive(worker), timeout_s=30)
    finally:
        if process.poll() is None:
            process.kill()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie left for init to reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_bad_feeds_config_fails_in_one_line(tmp_path: Path, image_folder: Path) -> None:
    config = _feeds_config(
        tmp_path, image_folder, [{"source": "frames", "camera": SAMPLE_CAMERA, "fsp": 3}]
    )
    line = _error_line(_detect(["--config", str(config)]))
    assert "row 1" in line and "fsp" in line
    assert "--config" in _error_line(_detect([]))


def test_follow_ptz_moves_the_camera_on_the_server(live_server: LiveServer) -> None:
    camera_id = "camera:cam-lujiazui-ptz"
    seconds = [0.0]
    head = SimulatedPtz(135.0, -15.0, sweep_deg=60.0, speed_dps=5.0, clock=lambda: seconds[0])
    stop = threading.Event()
    seen: list[float] = []

    class Steps:  # advance the simulated clock 4 s per read; stop after three moves
        def status(self) -> PtzStatus:
            seconds[0] += 4.0
            if len(seen) == 2:
                stop.set()
            status = head.status()
            seen.append(status.pan)
            return status

    moves = follow_ptz(live_server.url, TOKENS["operator"], camera_id, Steps(), stop=stop,
                       period_s=0.01)  # fmt: skip
    assert moves == 3 and seen == [125.0, 145.0, 165.0]  # 20° a read from 105°
    with live_server.client("viewer") as client:
        described = client.get(f"/api/cameras/{camera_id}").json()
    assert described["ptz"]["pan"] == pytest.approx(165.0)
    assert described["heading"] == pytest.approx(165.0) and described["pitch"] == -15.0
    with pytest.raises(TwinError, match="refused"):
        follow_ptz(live_server.url, TOKENS["viewer"], camera_id, head, stop=threading.Event())
