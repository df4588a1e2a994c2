"""`twin drone import-srt`: DJI SRT flight logs of four families (published excerpts of each
line format, and flights over the sample district written in those formats), unreadable blocks
counted, the GeoJSON track, and a replay to a real server whose drone pose is checked against
the page's frustum (the camera record the page draws it from)."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from paths import TWIN
from servers import TOKENS, LiveServer
from shapely.geometry import Point, shape
from srt_flights import CLOCK, GEOD, air2s, flight_path, m300, mavic3, mavic_pro, srt_text

from twin.cameras.camera import Camera
from twin.errors import InputError
from twin.flights.pose import PoseOptions, flight_poses, hfov_from_focal, surface_height
from twin.flights.srt import parse_srt, read_srt

SRT = Path(__file__).resolve().parent / "data" / "srt"
SHANGHAI = ZoneInfo("Asia/Shanghai")
DRONE = "drone:srt-test"
VIDEO_SIZE = (320, 180)


# --- published excerpts ------------------------------------------------------------------


def test_air2s_excerpt() -> None:
    log = read_srt(SRT / "air2s.SRT")
    first = log.samples[0]
    assert log.family == "air2s" and len(log.samples) == 3 and log.unreadable == 0
    assert (first.lat, first.lon, first.abs_alt, first.rel_alt) == (
        41.424724,
        2.234156,
        117.0,
        None,
    )
    assert first.time == datetime(2022, 8, 7, 13, 40, 40, 774_808)
    assert first.focal_mm == 24.0  # written as 240
    assert (first.start_s, first.end_s) == (0.0, 0.033)


def test_mavic3_line_format_excerpt() -> None:
    log = read_srt(SRT / "mavic4pro.SRT")
    first = log.samples[0]
    assert log.family == "mavic3" and len(log.samples) == 3
    assert (first.lat, first.lon) == (59.3294, 18.0686)
    assert (first.rel_alt, first.abs_alt, first.focal_mm) == (59.764, 92.67, 28.0)
    assert first.time == datetime(2026, 8, 23, 17, 22, 1, 253_000)
    assert first.gimbal is None


def test_avata360_excerpt_has_gimbal_angles() -> None:
    log = read_srt(SRT / "avata360.SRT")
    first = log.samples[0]
    assert log.family == "mavic3" and len(log.samples) == 2
    assert first.gimbal is not None
    assert (first.gimbal.yaw, first.gimbal.pitch, first.gimbal.roll) == (-162.8, 0.0, 0.0)
    assert (first.rel_alt, first.abs_alt, first.focal_mm) == (5.4, -124.744, 28.0)
    (pose,) = flight_poses(log.samples[:1], PoseOptions(takeoff_height=10.0))
    assert (pose.heading, pose.pitch, pose.altitude) == pytest.approx((197.2, 0.0, 15.4))


def test_mavic_pro_excerpt_reads_longitude_first() -> None:
    log = read_srt(SRT / "mavic-pro.SRT")
    first, last = log.samples[0], log.samples[-1]
    assert log.family == "mavic-pro" and len(log.samples) == 3
    assert (first.lon, first.lat) == (131.166, -25.2088)  # Uluru: GPS(lon,lat,satellites)
    assert (first.rel_alt, last.rel_alt, first.abs_alt) == (0.0, 0.8, None)
    assert first.time == datetime(2017, 7, 29, 15, 18, 50)
    assert first.start_s == 1.0


def test_matrice300_excerpt_reads_latitude_first() -> None:
    log = read_srt(SRT / "matrice300.SRT")
    first = log.samples[0]
    assert log.family == "m300" and len(log.samples) == 3
    assert (first.lat, first.lon) == (36.6146, -6.112)  # Cádiz: GPS(lat,lon,altM)
    assert (first.rel_alt, first.abs_alt) == (0.3, 0.0)
    assert first.time == datetime(2022, 6, 21, 16, 6, 17)


def test_relative_heights_need_a_takeoff_height() -> None:
    log = read_srt(SRT / "mavic-pro.SRT")
    with pytest.raises(InputError, match="take-off point only"):
        flight_poses(log.samples, PoseOptions())


def test_unreadable_blocks_are_counted_and_reported(tmp_path: Path) -> None:
    good = (SRT / "mavic4pro.SRT").read_text().split("\n\n")
    broken = [
        good[0],
        "2\nthis is not a time code\n[latitude: 31.0] [longitude: 121.0]",
        "3\n00:00:00,100 --> 00:00:00,116\n[latitude: 0.000000] [longitude: 0.000000]",
        '4\n00:00:00,116 --> 00:00:00,132\n<font size="28">FrameCnt: 4, DiffTime',
        "5\n00:00:00,132 --> 00:00:00,148\n\x00\x01\xff garbage [latitude: nan]",
        good[1],
    ]
    log = parse_srt("\n\n".join(broken).splitlines())
    assert len(log.samples) == 2 and log.unreadable == 4
    assert log.first_unreadable is not None and log.first_unreadable.startswith("line 7: no time")
    path = tmp_path / "broken.SRT"
    path.write_text("\n\n".join(broken))
    result = _import(path, "--out", str(tmp_path / "broken.geojson"))
    assert result.returncode == 0, result.stderr
    assert "2 samples" in result.stderr and "4 unreadable block(s)" in result.stderr
    assert "line 7" in result.stderr


def test_a_file_with_nothing_readable_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.SRT"
    path.write_text("1\nhello\n\n2\nworld\n")
    result = _import(path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no telemetry read (2 unreadable" in lines[0]


# --- flights over the sample district, one per family ------------------------------------


# family: (writer, block length s, command options)
FLIGHTS: dict[str, tuple[Callable[..., str], float, list[str]]] = {
    "mavic3": (mavic3, 0.1, ["--takeoff-height", "12.5"]),
    "air2s": (air2s, 0.1, []),
    "mavic-pro": (mavic_pro, 1.0, ["--workspace", "{ws}", "--pitch", "-60"]),
    "m300": (m300, 1.0, ["--takeoff-height", "7.0"]),
}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory, sample_ws: Path) -> Iterator[LiveServer]:
    """One server on a copy of the sample district for the flights of this module."""
    import shutil

    from servers import start_server

    ws = tmp_path_factory.mktemp("srt") / "ws"
    shutil.copytree(sample_ws, ws)
    server = start_server(ws)
    yield server
    server.stop()


def _video(path: Path, seconds: float, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, VIDEO_SIZE)
    for i in range(round(seconds * fps)):
        frame = np.full((VIDEO_SIZE[1], VIDEO_SIZE[0], 3), (i * 7) % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return path


def _import(flight: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TWIN, "drone", "import-srt", str(flight), "--drone", DRONE, "--tz", "Asia/Shanghai",
         *args], capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("family", list(FLIGHTS))
def test_flight_replays_in_step_with_its_video(
    family: str, district: LiveServer, tmp_path: Path
) -> None:
    writer, step, options = FLIGHTS[family]
    fast = step >= 1.0  # 1 Hz logs keep 1e-4 deg: fly fast enough for a course
    points = flight_path(step, 5.0 if fast else 4.0, bearing=60.0, speed_mps=20.0 if fast else 8.0)
    end = len(points) * step
    flight = tmp_path / f"{family}.SRT"
    flight.write_text(srt_text(points, step, writer))
    video = _video(tmp_path / f"{family}.avi", end)
    args = [a.replace("{ws}", str(district.ws)) for a in options]
    result = _import(
        flight, "--video", str(video), "--server", district.url, "--token", TOKENS["ingest"],
        "--speed", "0", "--every", "0.5", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = [k * 0.5 for k in range(round(end / 0.5))]  # video times in [0, end)
    assert f"sent {len(steps)} telemetry samples and {len(steps)} frames" in result.stderr
    assert f"{len(points)} samples" in result.stderr and "unreadable" not in result.stderr

    with district.client("viewer") as client:
        record = client.get(f"/api/cameras/{DRONE}").json()
        frame = client.get(f"/api/cameras/{DRONE}/frame")
    # The last step: the block showing then, its clock as UTC, on the telemetry and the frame.
    t, lon, lat = max(p for p in points if p[0] <= steps[-1] + 1e-9)
    taken = (CLOCK + timedelta(seconds=t)).replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert datetime.fromisoformat(record["time"]) == taken
    assert (
        frame.status_code == 200 and datetime.fromisoformat(frame.headers["x-frame-time"]) == taken
    )
    assert (record["lon"], record["lat"]) == pytest.approx((lon, lat), abs=6e-5)
    assert record["image_width"] == VIDEO_SIZE[0]

    log = read_srt(flight)
    sample = next(s for s in log.samples if s.start_s == pytest.approx(t))
    if family == "mavic-pro":
        takeoff = surface_height(district.ws, log.samples[0].lon, log.samples[0].lat)
        assert 0.0 < takeoff < 20.0  # the promenade: ground, no roof
        expected_height, pitch = takeoff + 30.0 + t, -60.0
    elif family == "air2s":
        expected_height, pitch = 60.0 + t, -90.0
    else:
        expected_height = float(options[1]) + (sample.rel_alt or 0.0)
        pitch = -45.0 if family == "mavic3" else -90.0
    assert record["height"] == pytest.approx(expected_height, abs=0.01)
    assert record["pitch"] == pytest.approx(pitch)
    if family == "mavic3":
        assert record["heading"] == pytest.approx(30.0)  # the gimbal's yaw
    else:  # the course between the fixes as logged (1e-4 deg in the 1 Hz formats)
        before = next(s for s in log.samples if s.start_s == pytest.approx(t - 1.0))
        course = GEOD.inv(before.lon, before.lat, sample.lon, sample.lat)[0] % 360.0
        assert record["heading"] == pytest.approx(course, abs=0.01)
        assert abs(course - 60.0) < 25.0
    focal = 24.0
    assert record["hfov"] == pytest.approx(hfov_from_focal(focal, *VIDEO_SIZE), abs=0.01)
    _check_projection(record)


def _check_projection(record: dict[str, Any]) -> None:
    """The ground point on the optical axis (found from the pose alone) lands at the image
    centre of the camera the page draws from `record`, and inside its view footprint."""
    camera = Camera.from_pose(record)
    ground = float(record["ground_height"])
    above = float(record["height"]) - ground
    reach = above / math.tan(math.radians(-float(record["pitch"])))
    lon, lat, _ = GEOD.fwd(record["lon"], record["lat"], record["heading"], reach)
    u, v = camera.project(lon, lat, ground) or (math.nan, math.nan)
    assert (u, v) == pytest.approx((VIDEO_SIZE[0] / 2, VIDEO_SIZE[1] / 2), abs=0.5)
    assert shape(record["footprint"]).contains(Point(lon, lat))


def test_without_a_server_the_flight_becomes_a_geojson_track(tmp_path: Path) -> None:
    points = flight_path(0.1, 2.0, bearing=90.0, speed_mps=5.0)
    flight = tmp_path / "DJI_0001.SRT"
    flight.write_text(srt_text(points, 0.1, mavic3))
    result = _import(flight, "--takeoff-height", "10")
    assert result.returncode == 0, result.stderr
    track = json.loads((tmp_path / "DJI_0001.geojson").read_text())
    line, *samples = track["features"]
    assert line["geometry"]["type"] == "LineString" and len(samples) == len(points) == 20
    assert line["properties"]["family"] == "mavic3" and line["properties"]["drone"] == DRONE
    lon, lat, height = samples[-1]["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx(points[-1][1:], abs=1e-6)
    assert height == pytest.approx(10.0 + 40.0 + 1.9)
    taken = (CLOCK + timedelta(seconds=1.9)).replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert datetime.fromisoformat(samples[-1]["properties"]["time"]) == taken
    assert samples[-1]["properties"]["heading"] == 30.0
