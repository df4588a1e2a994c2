"""A DJI flight log replayed with `twin drone import-srt` moves the drone on the war-room page:
in real headless Chromium against a real `twin serve`, the page's frustum stands where the log
puts the aircraft and points where its gimbal looked, and the page projects its last frame."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from browser import open_page, wait_live, wait_ready
from paths import TWIN
from playwright.sync_api import Page
from servers import TOKENS, LiveServer, start_server
from srt_flights import CLOCK, flight_path, mavic3, srt_text

from bench.chromium import chromium_available, launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

DRONE = "drone:srt-page"
TAKEOFF_M = 12.5
STEP_S = 0.1


@pytest.fixture(scope="module")
def server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ws = tmp_path_factory.mktemp("srt-page") / "ws"
    shutil.copytree(sample_ws, ws)
    srv = start_server(ws)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[Page]:
    with launch() as browser:
        opened, _ = open_page(browser, f"{server.url}/?token={TOKENS['operator']}", 1280, 760)
        wait_ready(opened)
        wait_live(opened)
        yield opened
        opened.context.close()


def _axis(page: Page, drone: str) -> dict[str, float]:
    """The page's frustum of `drone`: its apex (lon, lat deg, height m) and the heading and
    pitch (deg) of its axis, from the apex to the middle of its far rectangle."""
    return dict(page.evaluate(
        """id => {
            const {apex, corners} = twin.cameras.frustum(id);
            const mid = corners.reduce((s, c) => Cesium.Cartesian3.add(s, c, s),
                new Cesium.Cartesian3()); Cesium.Cartesian3.divideByScalar(mid, 4, mid);
            const toEnu = Cesium.Matrix4.inverseTransformation(
                Cesium.Transforms.eastNorthUpToFixedFrame(apex), new Cesium.Matrix4());
            const d = Cesium.Matrix4.multiplyByPoint(toEnu, mid, new Cesium.Cartesian3());
            const c = Cesium.Cartographic.fromCartesian(apex);
            return {lon: Cesium.Math.toDegrees(c.longitude), lat: Cesium.Math.toDegrees(c.latitude),
                    height: c.height, heading: Math.atan2(d.x, d.y) * 180 / Math.PI,
                    pitch: Math.atan2(d.z, Math.hypot(d.x, d.y)) * 180 / Math.PI};
        }""",
        drone,
    ))  # fmt: skip


def test_the_page_frustum_follows_the_flight_log(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    points = flight_path(STEP_S, 3.0, bearing=120.0, speed_mps=6.0)
    flight = tmp_path / "DJI_0007.SRT"
    flight.write_text(srt_text(points, STEP_S, mavic3))  # gimbal: yaw 30°, pitch -45°
    video = tmp_path / "DJI_0007.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (320, 180))
    for i in range(len(points)):
        writer.write(np.full((180, 320, 3), (0, 0, 40 + 5 * i), np.uint8))
    writer.release()
    result = subprocess.run(
        [TWIN, "drone", "import-srt", str(flight), "--drone", DRONE, "--video", str(video),
         "--server", server.url, "--token", TOKENS["ingest"], "--tz", "Asia/Shanghai",
         "--takeoff-height", str(TAKEOFF_M), "--speed", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    t, lon, lat = points[-5]  # the block showing at the last step (video 2.5 s)
    lon, lat = round(lon, 6), round(lat, 6)  # as the log writes them
    page.wait_for_function(
        """([id, lon]) => {
            const f = twin.cameras.frustum(id);
            if (!f) return false;
            const c = Cesium.Cartographic.fromCartesian(f.apex);
            return Math.abs(Cesium.Math.toDegrees(c.longitude) - lon) < 1e-7;
        }""",
        arg=[DRONE, lon],
    )
    axis = _axis(page, DRONE)
    assert (axis["lon"], axis["lat"]) == pytest.approx((lon, lat), abs=1e-7)
    assert axis["height"] == pytest.approx(TAKEOFF_M + 40.0 + t, abs=0.05)  # rel_alt 40 + t
    assert axis["heading"] == pytest.approx(30.0, abs=0.5)
    assert axis["pitch"] == pytest.approx(-45.0, abs=0.5)
    page.wait_for_function("id => twin.projection.has(id)", arg=DRONE)
    taken = (CLOCK + timedelta(seconds=t)).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    record = page.evaluate("id => twin.cameras.records.get(id)", DRONE)
    assert record["time"] == taken.astimezone(UTC).isoformat()
    assert math.isclose(record["hfov"], 76.31, abs_tol=0.01)  # 24 mm on 16:9
