"""Cameras on the war-room page, in real headless Chromium against a real `twin serve`: AR labels
at the server's projected pixels, a live entity at the pixel its ray came from, PTZ moves, the
video projection's colours on the model, and drone telemetry moving the frustum."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from browser import SCREENSHOTS, open_page, wait_live, wait_ready
from playwright.sync_api import FloatRect, Page
from servers import TOKENS, LiveServer, start_server

from bench.chromium import chromium_available, launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

ROAD_CAMERA = "camera:cam-bund-road"
PTZ_CAMERA = "camera:cam-lujiazui-ptz"
DRONE = "drone:web-test"
# Open water of the Huangpu between the Bund and Lujiazui: flat, no buildings (lon, lat deg).
DRONE_POINT = (121.4905, 31.2400)
DRONE_AGL_M = 120.0
PIXEL_TOLERANCE = 3.0
RED = (0, 0, 255)  # BGR
BLUE = (255, 0, 0)


@pytest.fixture(scope="module")
def server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    ws = tmp_path_factory.mktemp("web-cameras") / "ws"
    shutil.copytree(sample_ws, ws)
    srv = start_server(ws)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def wall(server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """One page for the module: the operator's wall display, model loaded, socket open."""
    with launch() as browser:
        page, log = open_page(browser, f"{server.url}/?token={TOKENS['operator']}", 1280, 760)
        wait_ready(page)
        wait_live(page)
        page.wait_for_function("twin.cameras.records.size >= 3")
        yield page, log.errors
        page.context.close()


def get(server: LiveServer, path: str, **params: Any) -> Any:
    with server.client("viewer") as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def open_ar(page: Page, camera_id: str) -> None:
    renders = page.evaluate("twin.ar.renders")
    page.evaluate("id => twin.ar.open(id)", camera_id)
    page.wait_for_function(
        "([id, n]) => twin.ar.cameraId === id && twin.ar.renders > n", arg=[camera_id, renders]
    )


def stage_box(page: Page) -> FloatRect:
    box = page.locator("#ar-stage canvas").bounding_box()
    assert box is not None and box["width"] > 100
    return box


def dot_centres(page: Page, layer: str) -> dict[str, tuple[float, float]]:
    """Centre (page CSS px) of each label dot in `layer`, keyed by element or entity id."""
    found: dict[str, list[float]] = page.evaluate(
        """layer => Object.fromEntries([...document.querySelectorAll(`${layer} .ar-label`)]
            .map(label => {
                const r = label.querySelector('.ar-dot').getBoundingClientRect();
                const id = label.dataset.elementId || label.dataset.entityId;
                return [id, [r.x + r.width / 2, r.y + r.height / 2]];
            }))""",
        layer,
    )
    return {key: (value[0], value[1]) for key, value in found.items()}


def expected_position(
    box: FloatRect, camera: dict[str, Any], u: float, v: float
) -> tuple[float, float]:
    """Page position of pixel (u, v) of the calibrated image shown in `box`."""
    return (
        box["x"] + u * box["width"] / camera["image_width"],
        box["y"] + v * box["height"] / camera["image_height"],
    )


def assert_labels_at_api_pixels(page: Page, server: LiveServer, camera_id: str) -> list[Any]:
    camera = get(server, f"/api/cameras/{camera_id}")
    items = get(server, f"/api/cameras/{camera_id}/labels", limit=200)["items"]
    inside = [
        item
        for item in items
        if item["visible"]
        and 0 <= item["u"] <= camera["image_width"]
        and 0 <= item["v"] <= camera["image_height"]
    ]
    assert inside, f"{camera_id} sees labelled elements"
    hidden = {item["element_id"] for item in items if not item["visible"]}
    box = stage_box(page)
    dots = dot_centres(page, "#ar-labels")
    assert set(dots) == {item["element_id"] for item in inside}
    assert not hidden & set(dots), "occluded elements are not labelled"
    for item in inside:
        x, y = expected_position(box, camera, item["u"], item["v"])
        assert dots[item["element_id"]] == pytest.approx((x, y), abs=PIXEL_TOLERANCE)
    return inside


def test_cameras_on_map_and_ar_labels(wall: tuple[Page, list[str]], server: LiveServer) -> None:
    page, errors = wall
    ids = {item["id"] for item in get(server, "/api/cameras")["items"]}
    assert ids <= set(page.evaluate("[...twin.cameras.records.keys()]"))
    # The frustum starts at the optical centre of the camera.
    camera = get(server, f"/api/cameras/{ROAD_CAMERA}")
    apex = page.evaluate(
        """id => { const c = Cesium.Cartographic.fromCartesian(twin.cameras.frustum(id).apex);
            return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude),
                    c.height]; }""",
        ROAD_CAMERA,
    )
    assert apex == pytest.approx([camera["lon"], camera["lat"], camera["height"]], abs=1e-6)

    open_ar(page, ROAD_CAMERA)
    inside = assert_labels_at_api_pixels(page, server, ROAD_CAMERA)

    # A label opens the same panel as the element on the map.
    target = next(item for item in inside if item["name"] and item["name"] != item["element_id"])
    page.locator(f'#ar-labels .ar-label[data-element-id="{target["element_id"]}"] .ar-dot').click()
    page.wait_for_selector(f'#panel[data-element-id="{target["element_id"]}"]')
    assert page.inner_text("#panel-id") == target["element_id"]
    page.screenshot(path=str(SCREENSHOTS / "war-room-ar.png"))
    page.click("#panel-close")
    assert errors == []


def test_ar_live_entity_at_its_pixel(wall: tuple[Page, list[str]], server: LiveServer) -> None:
    page, errors = wall
    open_ar(page, ROAD_CAMERA)
    camera = get(server, f"/api/cameras/{ROAD_CAMERA}")
    u, v = camera["image_width"] * 0.4, camera["image_height"] * 0.8
    hit = get(server, f"/api/cameras/{ROAD_CAMERA}/ray", u=u, v=v)
    assert hit["hit"]
    observation = {
        "kind": "person", "cls": "person", "source": ROAD_CAMERA, "track_id": "ar-1",
        "lon": hit["lon"], "lat": hit["lat"], "height": hit["height"], "confidence": 0.9,
    }  # fmt: skip
    with server.client("ingest") as client:
        response = client.post("/api/observations", json={"observations": [observation]})
    assert response.status_code == 200, response.text
    entity_id = f"{ROAD_CAMERA}/ar-1"
    # Labels are zero-size boxes at their pixel (their dot and tag overflow them).
    page.wait_for_selector(
        f'#ar-entities .ar-label[data-entity-id="{entity_id}"]', state="attached"
    )
    x, y = expected_position(stage_box(page), camera, u, v)
    assert dot_centres(page, "#ar-entities")[entity_id] == pytest.approx((x, y), abs=1.0)
    page.locator(f'#ar-entities .ar-label[data-entity-id="{entity_id}"] .ar-dot').click()
    page.wait_for_selector(f'#panel[data-entity-id="{entity_id}"]')
    page.click("#panel-close")
    assert errors == []


def test_ar_follows_ptz(wall: tuple[Page, list[str]], server: LiveServer) -> None:
    page, errors = wall
    open_ar(page, PTZ_CAMERA)
    before = page.evaluate("twin.ar.record.heading")
    requests = page.evaluate("twin.ar.labelRequests")
    with server.client("operator") as client:
        response = client.put(f"/api/cameras/{PTZ_CAMERA}/ptz", json={"pan": 40, "tilt": -10})
    assert response.status_code == 200, response.text
    heading = response.json()["heading"]
    assert heading != pytest.approx(before)
    page.wait_for_function(
        "([h, n]) => Math.abs(twin.ar.record.heading - h) < 1e-6 && twin.ar.labelRequests > n"
        " && !twin.ar.pending",
        arg=[heading, requests],
    )
    assert_labels_at_api_pixels(page, server, PTZ_CAMERA)
    assert page.evaluate("id => twin.cameras.get(id).heading", PTZ_CAMERA) == pytest.approx(heading)
    page.click("#ar-close")
    assert errors == []


def telemetry(lon: float, lat: float, altitude: float) -> dict[str, Any]:
    return {
        "lon": lon, "lat": lat, "altitude": altitude, "yaw": 0.0,
        "gimbal": {"pitch": -90.0}, "hfov": 50.0, "image_width": 640, "image_height": 480,
    }  # fmt: skip


def two_colour_frame() -> bytes:
    """640×480 PNG: top half red, bottom half blue."""
    image = np.zeros((480, 640, 3), np.uint8)
    image[:240] = RED
    image[240:] = BLUE
    ok, png = cv2.imencode(".png", image)
    assert ok
    return bytes(png.tobytes())


def screen_colours(page: Page, points: list[list[float]]) -> list[np.ndarray]:
    """Mean BGR colour of a 5×5 patch of a screenshot around each lon/lat/height point."""
    windows = page.evaluate(
        """points => points.map(([lon, lat, h]) => {
            const p = Cesium.SceneTransforms.worldToWindowCoordinates(
                twin.viewer.scene, Cesium.Cartesian3.fromDegrees(lon, lat, h));
            return [p.x, p.y];
        })""",
        points,
    )
    canvas = page.locator("#map canvas").bounding_box()
    assert canvas is not None
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    assert shot is not None
    colours = []
    for x, y in windows:
        px, py = round(canvas["x"] + x), round(canvas["y"] + y)
        colours.append(shot[py - 2 : py + 3, px - 2 : px + 3].reshape(-1, 3).mean(axis=0))
    return colours


def test_video_projection_and_drone_telemetry(
    wall: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = wall
    lon, lat = DRONE_POINT
    ground = float(get(server, "/api/cameras")["items"][0]["ground_height"])
    altitude = ground + DRONE_AGL_M
    with server.client("ingest") as client:
        response = client.post(f"/api/drones/{DRONE}/telemetry", json=telemetry(lon, lat, altitude))
        assert response.status_code == 200, response.text
        response = client.put(
            f"/api/cameras/{DRONE}/frame",
            content=two_colour_frame(),
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 204, response.text
    page.wait_for_function("id => twin.projection.has(id)", arg=DRONE)

    # Where the drone's image rows 25 % and 75 % land (north half red, south half blue), and a
    # point east of its footprint (the left column of panes covers the west of the map).
    drone = get(server, f"/api/cameras/{DRONE}")
    top = get(server, f"/api/cameras/{DRONE}/ray", u=320, v=120)
    bottom = get(server, f"/api/cameras/{DRONE}/ray", u=320, v=360)
    assert top["hit"] and bottom["hit"]
    east = get(server, f"/api/cameras/{DRONE}/ray", u=640, v=240)
    outside = [east["lon"] + 1.3 * (east["lon"] - drone["lon"]), drone["lat"]]
    points = [
        [top["lon"], top["lat"], top["height"]],
        [bottom["lon"], bottom["lat"], bottom["height"]],
        [outside[0], outside[1], bottom["height"]],
    ]
    page.evaluate(
        """([lon, lat, h]) => twin.viewer.camera.setView({
            destination: Cesium.Cartesian3.fromDegrees(lon, lat, h),
            orientation: {heading: 0, pitch: -Math.PI / 2, roll: 0}})""",
        [lon, lat, altitude + 180],
    )
    page.evaluate("twin.settle()")
    red, blue, plain = screen_colours(page, points)
    page.screenshot(path=str(SCREENSHOTS / "war-room-projection.png"))
    assert red[2] > 150 and red[0] < 90 and red[1] < 90, f"red half shows {red}"
    assert blue[0] > 150 and blue[2] < 90 and blue[1] < 90, f"blue half shows {blue}"
    assert not (plain[2] > 150 and plain[0] < 90), f"outside the footprint shows {plain}"
    assert not (plain[0] > 150 and plain[2] < 90), f"outside the footprint shows {plain}"

    # The drone flies 60 m east: its frustum and projection follow the telemetry.
    moved = lon + 60 / (111_320 * np.cos(np.radians(lat)))
    with server.client("ingest") as client:
        response = client.post(
            f"/api/drones/{DRONE}/telemetry", json=telemetry(moved, lat, altitude)
        )
    assert response.status_code == 200
    page.wait_for_function(
        """([id, lon]) => {
            const c = Cesium.Cartographic.fromCartesian(twin.cameras.frustum(id).apex);
            return Math.abs(Cesium.Math.toDegrees(c.longitude) - lon) < 1e-7
                && Math.abs(twin.projection.stages.get(id).record.lon - lon) < 1e-9;
        }""",
        arg=[DRONE, moved],
    )
    page.evaluate("twin.settle()")
    shift = moved - lon
    red_moved, blue_moved = screen_colours(page, [[p[0] + shift, p[1], p[2]] for p in points[:2]])
    assert red_moved[2] > 150 and red_moved[0] < 90, f"moved red half shows {red_moved}"
    assert blue_moved[0] > 150 and blue_moved[2] < 90, f"moved blue half shows {blue_moved}"
    assert errors == []
