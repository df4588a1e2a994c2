"""The page never freezes and comes back by itself, in real headless Chromium against a real
`twin serve` on a copy of the sample: a minute of video projection while frames arrive and the
projected cameras move, with no render error; a render error is caught, shown in the status bar
and recovered from; the wall survives a server restart (a visible "reconnecting", then live
again); after a restart with new tokens the page asks for one and resumes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from browser import SCREENSHOTS, open_page, wait_live, wait_ready
from playwright.sync_api import Browser, Page
from servers import TOKENS, LiveServer, start_server

from bench.chromium import chromium_available

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

PTZ_CAMERA = "camera:cam-lujiazui-ptz"
ROAD_CAMERA = "camera:cam-bund-road"
DRONE = "drone:soak"
DRONE_POINT = (121.4905, 31.2400)  # over the Huangpu (lon, lat deg)
SOAK_S = 60.0
CAR_IN_LANE = (121.4859, 31.2390)  # in the sample's closed-lane rule (rules.yaml)


@pytest.fixture(scope="module")
def server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ws = tmp_path_factory.mktemp("resilience") / "ws"
    shutil.copytree(sample_ws, ws)
    srv = start_server(ws)
    yield srv
    srv.stop()


def frame(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    """A JPEG of `size` (w, h px) in one BGR colour with a white diagonal."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    image[:] = colour
    cv2.line(image, (0, 0), size, (255, 255, 255), 9)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def put_frame(server: LiveServer, camera: str, data: bytes) -> None:
    with server.client("ingest") as client:
        response = client.put(f"/api/cameras/{camera}/frame", content=data,
                              headers={"Content-Type": "image/jpeg"})  # fmt: skip
    assert response.status_code == 204, response.text


def telemetry(lon: float, altitude: float) -> dict[str, Any]:
    return {"lon": lon, "lat": DRONE_POINT[1], "altitude": altitude, "yaw": 30.0,
            "gimbal": {"pitch": -60.0}, "hfov": 60.0, "image_width": 640,
            "image_height": 480}  # fmt: skip


def test_a_minute_of_projection_with_frames_and_moves(browser: Browser, server: LiveServer) -> None:
    """The AR view of a PTZ camera projected onto the model, plus a drone's frames: new frames
    (of changing sizes) every half second, PTZ and drone poses every few seconds, the view
    moving; the globe keeps drawing and no render error happens."""
    page, log = open_page(browser, f"{server.url}/?token={TOKENS['operator']}", 1280, 720)
    try:
        wait_ready(page)
        wait_live(page)
        ground = float(
            server.client("viewer").get("/api/cameras").json()["items"][0]["ground_height"]
        )
        with server.client("ingest") as client:
            client.post(
                f"/api/drones/{DRONE}/telemetry", json=telemetry(DRONE_POINT[0], ground + 150)
            )
        put_frame(server, PTZ_CAMERA, frame((0, 0, 255), (640, 360)))
        put_frame(server, DRONE, frame((255, 0, 0), (640, 480)))
        page.evaluate(f"twin.openCamera('{PTZ_CAMERA}', {{project: true}})")
        page.wait_for_function(
            "ids => ids.every((id) => twin.state().projections.includes(id))",
            arg=[PTZ_CAMERA, DRONE],
        )
        frames = page.evaluate("twin.state().frames")
        start = time.monotonic()
        tick = 0
        sizes = [(640, 360), (800, 450), (640, 360), (1280, 720)]
        while time.monotonic() - start < SOAK_S:
            tick += 1
            colour = (0, 0, 255) if tick % 2 else (0, 255, 0)
            put_frame(server, PTZ_CAMERA, frame(colour, sizes[tick % len(sizes)]))
            put_frame(server, DRONE, frame((255, tick % 255, 0), (640, 480)))
            if tick % 4 == 0:
                with server.client("operator") as client:
                    pan = 120 + 10 * ((tick // 4) % 5)
                    client.put(f"/api/cameras/{PTZ_CAMERA}/ptz", json={"pan": pan, "tilt": -15})
            if tick % 6 == 0:
                with server.client("ingest") as client:
                    lon = DRONE_POINT[0] + 0.0002 * ((tick // 6) % 4)
                    client.post(f"/api/drones/{DRONE}/telemetry", json=telemetry(lon, ground + 150))
                page.evaluate(
                    "twin.viewer.camera.rotateRight(0.02); twin.viewer.scene.requestRender()"
                )
            page.wait_for_timeout(500)
        state = page.evaluate("twin.state()")
        assert state["renderErrors"] == 0, page.evaluate("String(twin.guard.lastError)")
        assert state["rendering"] is True
        assert state["frames"] > frames + 60, "the globe kept drawing"
        assert set(state["projections"]) >= {PTZ_CAMERA, DRONE}
        assert page.evaluate("Number(document.querySelector('#ar').dataset.frames)") > 20
        assert page.is_hidden("#render-status")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "war-room-projection-soak.png"))
        assert log.errors == []
    finally:
        page.context.close()


def test_a_render_error_is_caught_shown_and_recovered(browser: Browser, server: LiveServer) -> None:
    page, log = open_page(browser, f"{server.url}/?token={TOKENS['viewer']}&lang=en", 900, 600)
    try:
        wait_ready(page)
        # A primitive whose first update throws: Cesium stops its render loop on it.
        page.evaluate(
            """twin.viewer.scene.primitives.add({
                failed: false,
                update() { if (!this.failed) { this.failed = true; throw new Error('injected'); } },
                isDestroyed() { return false; },
                destroy() {},
            }); twin.viewer.scene.requestRender();"""
        )
        page.wait_for_function("twin.state().renderErrors === 1")
        note = page.locator("#render-status")
        note.wait_for(state="visible")
        assert "injected" in note.inner_text() and "×1" in note.inner_text()
        page.wait_for_function("twin.state().rendering")
        frames = page.evaluate("twin.state().frames")
        page.evaluate("twin.viewer.camera.rotateRight(0.05); twin.viewer.scene.requestRender()")
        page.wait_for_function("n => twin.state().frames > n", arg=frames)
        assert page.evaluate("twin.state().renderErrors") == 1
        assert log.errors == []
    finally:
        page.context.close()


def alert_in_lane(server: LiveServer, track: str) -> str:
    """Post a car in the sample's closed lane; the id of the alert it raised."""
    car = {"kind": "vehicle", "cls": "car", "source": ROAD_CAMERA, "track_id": track,
           "lon": CAR_IN_LANE[0], "lat": CAR_IN_LANE[1], "height": 5.0}  # fmt: skip
    with server.client("ingest") as client:
        body = client.post("/api/observations", json={"observations": [car]}).json()
    [alert_id] = body["alerts"]
    return str(alert_id)


def restart(server: LiveServer, env: dict[str, str] | None = None) -> LiveServer:
    """Stop `server` and start it again on the same workspace and port."""
    server.stop()
    port = int(server.url.rsplit(":", 1)[1])
    return start_server(server.ws, env, port=port)


def test_the_wall_survives_a_server_restart_and_new_tokens(
    browser: Browser, sample_ws: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_ws, ws)
    server = start_server(ws)
    page: Page | None = None
    try:
        page, log = open_page(browser, f"{server.url}/?token={TOKENS['viewer']}&wall=1", 1280, 720)
        wait_live(page)
        assert page.evaluate("twin.state().wall") is True
        first = alert_in_lane(server, "before")
        page.wait_for_selector(f'#alert-list li[data-alert-id="{first}"]')

        # The server goes away: the wall says so at once, where it shows.
        server.stop()
        page.wait_for_selector("#reconnecting", state="visible")
        assert page.evaluate("twin.state().connected") is False
        text = page.inner_text("#reconnecting")
        page.screenshot(path=str(SCREENSHOTS / "war-room-wall-reconnecting.png"))
        # It comes back: the wall is live again by itself and shows what happens next.
        server = restart(server)
        page.wait_for_function("twin.state().connected && twin.state().live", timeout=60_000)
        page.wait_for_selector("#reconnecting", state="hidden")
        # A second car in the same lane joins the incident: the wall shows its count go up.
        assert alert_in_lane(server, "after") == first
        page.wait_for_selector(f'#alert-list li[data-alert-id="{first}"][data-count="2"]')
        assert "重新连接" in text

        # Restarted with new tokens: the page asks for one, then resumes without a reload.
        server = restart(server, {"TWIN_TOKENS": "fresh-viewer-token:viewer,fresh-ingest:ingest"})
        page.wait_for_selector("#signin", state="visible", timeout=60_000)
        page.fill("#signin-token", "fresh-viewer-token")
        page.click("#signin-form button")
        page.wait_for_function("twin.state().connected && twin.state().live", timeout=60_000)
        page.wait_for_selector("#reconnecting", state="hidden")
        # What a browser logs while the server is away or refuses the old token, and nothing else.
        expected = ("ERR_CONNECTION_REFUSED", "WebSocket connection to", "401", "403")
        assert [e for e in log.errors if not any(s in e for s in expected)] == []
    finally:
        if page is not None:
            page.context.close()
        server.stop()
