"""The war-room page in real headless Chromium (WebGL through SwiftShader) against a real
`twin serve` on a copy of the sample workspace: load, click a building, live entities, alerts."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ultralytics
from browser import SCREENSHOTS, open_page, wait_live, wait_ready
from playwright.sync_api import Browser, Page
from servers import TOKENS, LiveServer, ingest, start_server

from bench.chromium import chromium_available

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

CAMERA = "camera:cam-bund-road"
# A point on Zhongshan East 1st Road (the Bund), inside the sample district (lon, lat in deg).
ROAD_POINT = (121.4866, 31.2395)


ZONE_HALF_SIZE = 0.0005  # deg, around ROAD_POINT


@pytest.fixture(scope="module")
def web_server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One `twin serve` for the module, on a private copy of the sample workspace, whose only
    rule raises an alert for a vehicle within ZONE_HALF_SIZE of ROAD_POINT."""
    root = tmp_path_factory.mktemp("web")
    ws = root / "ws"
    shutil.copytree(sample_ws, ws)
    lon, lat = ROAD_POINT
    d = ZONE_HALF_SIZE
    rules = root / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: web-test-zone\n"
        "    title: Vehicle in the web test zone\n"
        "    type: zone\n"
        "    kinds: [vehicle]\n"
        "    zone:\n"
        f"      polygon: [[{lon - d}, {lat - d}], [{lon + d}, {lat - d}], "
        f"[{lon + d}, {lat + d}], [{lon - d}, {lat + d}]]\n"
        "    cooldown_s: 60\n"
    )
    server = start_server(ws, {"TWIN_RULES": str(rules)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wall(browser: Browser, web_server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """The page as a wall display opened with the viewer token, tiles loaded, socket open; shared
    by the tests of this module (each leaves it as it found it)."""
    page, errors = page_for(browser, web_server, "viewer")
    wait_ready(page)
    wait_live(page)
    yield page, errors
    page.context.close()


def page_for(
    browser: Browser, server: LiveServer, role: str, small: bool = False
) -> tuple[Page, list[str]]:
    """The page opened with the `role` token in its URL; returns it and its console errors.
    `small` opens a 900×600 window (fewer tiles to draw) for tests that do not look at the map."""
    size = (900, 600) if small else (1600, 900)
    page, log = open_page(browser, f"{server.url}/?token={TOKENS[role]}", *size)
    return page, log.errors


def observation(lon: float, lat: float, track: str, cls: str = "car") -> dict[str, Any]:
    kind = "person" if cls == "person" else "vehicle"
    return {
        "kind": kind,
        "cls": cls,
        "source": CAMERA,
        "track_id": track,
        "lon": lon,
        "lat": lat,
        "height": 2.0,
        "confidence": 0.9,
    }


def test_sign_in_form_when_no_token(browser: Browser, web_server: LiveServer) -> None:
    page, log = open_page(browser, web_server.url + "/", 900, 600)
    try:
        page.wait_for_selector("#signin:not([hidden])")
        assert page.get_attribute("#conn", "data-state") != "open"
        page.fill("#signin-token", "not-a-token")
        page.click("#signin-form button")
        page.wait_for_selector("#signin-error:not([hidden])")
        page.fill("#signin-token", TOKENS["viewer"])
        page.click("#signin-form button")
        wait_live(page)
        assert page.is_hidden("#signin")
        assert page.evaluate("sessionStorage.getItem('twin.token')") == TOKENS["viewer"]
        assert [e for e in log.errors if "401" not in e] == []
    finally:
        page.context.close()


def test_page_loads_with_token(wall: tuple[Page, list[str]], web_server: LiveServer) -> None:
    page, errors = wall
    with web_server.client() as client:
        name = client.get("/healthz").json()["name"]
    assert page.inner_text("#district-name") == name
    assert "token=" not in page.url, "the token must be stripped from the address bar"
    assert page.evaluate("sessionStorage.getItem('twin.token')") == TOKENS["viewer"]
    assert page.is_hidden("#signin")
    assert page.evaluate("twin.tileset.tilesLoaded") is True
    assert page.evaluate("twin.tileset.root.contentReady || twin.tileset.root.children.length > 0")
    assert page.get_attribute("#conn", "data-state") == "open"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "war-room.png"))
    assert errors == []


def standalone_building(server: LiveServer) -> dict[str, Any]:
    """A building taller than 30 m whose roof is the highest, by more than 1 m, of every
    building within ~50 m: seen from straight above, its representative point shows its roof."""
    with server.client("viewer") as client:
        params: dict[str, str | int] = {"kind": "building", "limit": 1000, "geometry": "false"}
        items = client.get("/api/elements", params=params).json()["items"]
        tall = sorted((b for b in items if b["height"] > 30), key=roof, reverse=True)
        assert tall, "the sample has buildings taller than 30 m"
        for building in tall:
            d = 0.0005
            box = (
                building["lon"] - d,
                building["lat"] - d,
                building["lon"] + d,
                building["lat"] + d,
            )
            near = client.get(
                "/api/elements", params={**params, "bbox": ",".join(map(str, box))}
            ).json()["items"]
            others = [roof(b) for b in near if b["id"] != building["id"]]
            if all(other < roof(building) - 1 for other in others):
                return building
    raise AssertionError("no building stands alone above its neighbours")


def roof(building: dict[str, Any]) -> float:
    """Roof height of a building record (ellipsoidal m)."""
    return float(building["base_height"] + building["height"])


def test_click_building_opens_its_record(
    wall: tuple[Page, list[str]], web_server: LiveServer
) -> None:
    page, errors = wall
    building = standalone_building(web_server)
    with web_server.client("viewer") as client:
        record = client.get(f"/api/elements/{building['id']}").json()
    page.evaluate(
        """([lon, lat, h]) => twin.viewer.camera.setView({
            destination: Cesium.Cartesian3.fromDegrees(lon, lat, h),
            orientation: {heading: 0, pitch: -Math.PI / 2, roll: 0}})""",
        [building["lon"], building["lat"], roof(building) + 150],
    )
    page.evaluate("twin.settle()")
    box = page.locator("#map canvas").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(f'#panel[data-element-id="{record["id"]}"]')
    assert page.inner_text("#panel-id") == record["id"]
    assert page.inner_text("#panel-name") == (record["name"] or record["id"])
    assert page.evaluate("twin.state().selectedId") == record["id"]
    if record["jurisdiction"]:
        assert record["jurisdiction"]["name"] in page.inner_text("#panel")
    page.evaluate("twin.settle()")
    page.screenshot(path=str(SCREENSHOTS / "war-room-picked.png"))
    page.click("#panel-close")
    assert errors == []


def entity_lon_lat_height(page: Page, entity_id: str) -> list[float]:
    return list(
        page.evaluate(
            """id => {
                const e = twin.live.getById(id);
                const p = e.position.getValue(twin.viewer.clock.currentTime);
                const c = Cesium.Cartographic.fromCartesian(p);
                return [Cesium.Math.toDegrees(c.longitude), Cesium.Math.toDegrees(c.latitude),
                        c.height];
            }""",
            entity_id,
        )
    )


def test_observation_appears_as_entity(
    wall: tuple[Page, list[str]], web_server: LiveServer
) -> None:
    page, errors = wall
    # A person, so the module's vehicle zone rule stays quiet; 300 m north of the zone.
    lon, lat = ROAD_POINT[0], ROAD_POINT[1] + 0.003
    ids = ingest(web_server, observation(lon, lat, "web-1", cls="person"))["ids"]
    assert len(ids) == 1
    entity_id = f"{CAMERA}/web-1"
    page.wait_for_function("id => !!twin.live.getById(id)", arg=entity_id)
    assert entity_lon_lat_height(page, entity_id) == pytest.approx([lon, lat, 2.0], abs=1e-6)
    count = page.evaluate("twin.state().entities")
    assert count >= 1
    assert int(page.inner_text("#entity-count")) == count
    # A second observation of the same track moves the entity instead of adding one.
    ingest(web_server, observation(lon + 0.0002, lat, "web-1", cls="person"))
    page.wait_for_function(
        """([id, lon]) => {
            const p = twin.live.getById(id).position.getValue(twin.viewer.clock.currentTime);
            const c = Cesium.Cartographic.fromCartesian(p);
            return Math.abs(Cesium.Math.toDegrees(c.longitude) - lon) < 1e-7;
        }""",
        arg=[entity_id, lon + 0.0002],
    )
    assert page.evaluate("twin.state().entities") == count
    assert errors == []


def test_stale_entities_leave_and_socket_reconnects(
    wall: tuple[Page, list[str]], web_server: LiveServer
) -> None:
    page, errors = wall
    lon, lat = ROAD_POINT[0] + 0.003, ROAD_POINT[1] + 0.003
    ingest(web_server, observation(lon, lat, "web-stale", cls="person"))
    entity_id = f"{CAMERA}/web-stale"
    page.wait_for_function("id => !!twin.live.getById(id)", arg=entity_id)
    # 61 s later by the page's clock, every entity is stale and leaves the map.
    removed = page.evaluate("twin.live.prune(Date.now() + 61000)")
    assert removed >= 1
    assert page.evaluate("id => twin.live.getById(id) === undefined", entity_id)
    assert page.evaluate("twin.state().entities") == 0
    assert page.inner_text("#entity-count") == "0"

    # The socket drops: the status bar says so, and the page reconnects by itself.
    connects = page.evaluate("twin.state().connects")
    page.evaluate("twin.socket.socket.close()")
    page.wait_for_function(
        "n => twin.state().connects > n && twin.state().connection === 'open'",
        arg=connects,
    )
    assert page.get_attribute("#conn", "data-state") == "open"
    ingest(web_server, observation(lon, lat, "web-stale", cls="person"))
    page.wait_for_function("id => !!twin.live.getById(id)", arg=entity_id)
    assert errors == []


def test_search_flies_to_and_opens_element(
    wall: tuple[Page, list[str]], web_server: LiveServer
) -> None:
    page, errors = wall
    with web_server.client("viewer") as client:
        items = client.get(
            "/api/elements", params={"q": "Tower", "kind": "building", "geometry": "false"}
        ).json()["items"]
    named = [b for b in items if b["name"] and b["name"] != b["id"]]
    assert named, "the sample has named towers"
    target = named[0]
    page.fill("#search-input", target["name"])
    option = f'#search-results li[data-element-id="{target["id"]}"]'
    page.wait_for_selector(option)
    start = page.evaluate("twin.viewer.camera.positionCartographic.height")
    page.click(option)
    page.wait_for_selector(f'#panel[data-element-id="{target["id"]}"]')
    assert page.inner_text("#panel-name") == target["name"]
    assert page.is_hidden("#search-results")
    page.wait_for_function("h => twin.viewer.camera.positionCartographic.height < h", arg=start)
    page.click("#panel-close")
    assert errors == []


def alert_row(alert_id: str) -> str:
    return f'#alert-list li[data-alert-id="{alert_id}"]'


def test_alert_appears_and_operator_acknowledges(
    browser: Browser, wall: tuple[Page, list[str]], web_server: LiveServer
) -> None:
    viewer_page, viewer_errors = wall
    operator_page, operator_errors = page_for(browser, web_server, "operator", small=True)
    try:
        wait_live(operator_page)
        # The camera's latest frame (real pixels): the alert keeps a crop of the observed box.
        bus = (Path(ultralytics.__file__).parent / "assets" / "bus.jpg").read_bytes()
        with web_server.client("ingest") as client:
            client.put(
                f"/api/cameras/{CAMERA}/frame",
                content=bus,
                headers={"Content-Type": "image/jpeg"},
            ).raise_for_status()
        lon, lat = ROAD_POINT
        seen = observation(lon, lat, "web-alert")
        seen["attributes"] = {"bbox": [20.0, 220.0, 800.0, 760.0], "frame_size": [810, 1080]}
        alerts = ingest(web_server, seen)["alerts"]
        assert len(alerts) == 1, "the zone rule raises one alert"
        alert_id = alerts[0]
        for page in (viewer_page, operator_page):
            page.wait_for_selector(alert_row(alert_id))
            row = page.locator(alert_row(alert_id))
            assert row.get_attribute("data-status") == "new"
            assert "Vehicle in the web test zone" in row.inner_text()
        # The evidence crop is shown (loaded with the token: a plain <img src> could not).
        viewer_page.wait_for_function(
            "sel => { const i = document.querySelector(sel); return i && i.naturalWidth > 0; }",
            arg=alert_row(alert_id) + " img.alert-crop",
        )

        # A viewer may not act on alerts (GET /api/me): the page offers no life-cycle button and
        # names the role in the header; the operator's page offers them.
        viewer_page.wait_for_function("twin.access.me !== null")
        assert viewer_page.get_attribute("#role", "data-role") == "viewer"
        assert viewer_page.locator(alert_row(alert_id) + " .alert-buttons").count() == 0
        assert viewer_page.locator("#alert-list button").count() == 0
        assert operator_page.get_attribute("#role", "data-role") == "operator"
        offered = operator_page.eval_on_selector_all(
            alert_row(alert_id) + " .alert-buttons button", "bs => bs.map(b => b.dataset.action)"
        )
        assert offered == ["ack", "dispatch", "false-alarm"]

        operator_page.locator(alert_row(alert_id) + ' button[data-action="ack"]').click()
        for page in (operator_page, viewer_page):  # the viewer hears it on the socket
            page.wait_for_selector(alert_row(alert_id) + '[data-status="acknowledged"]')
        viewer_page.screenshot(path=str(SCREENSHOTS / "war-room-alert.png"))
        with web_server.client("viewer") as client:
            body = client.get("/api/alerts", params={"status": "acknowledged"}).json()
        acked = {a["id"]: a for a in body["items"]}
        assert alert_id in acked
        assert acked[alert_id]["acknowledged_by"]

        # Clicking the alert flies the camera down to it.
        start = operator_page.evaluate("twin.viewer.camera.positionCartographic.height")
        operator_page.locator(alert_row(alert_id) + " .alert-title").click()
        deadline = time.monotonic() + 20
        height = start
        while time.monotonic() < deadline and height > start * 0.5:
            operator_page.wait_for_timeout(250)
            height = operator_page.evaluate("twin.viewer.camera.positionCartographic.height")
        assert height < start * 0.5, "the camera flies down to the alert"
        assert viewer_page.locator("#alert-list button").count() == 0
        assert viewer_errors == [] and operator_errors == []
    finally:
        operator_page.context.close()
