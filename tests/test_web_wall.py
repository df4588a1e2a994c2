"""The war-room page as the control room uses it, in real headless Chromium against a real
`twin serve` on a copy of the sample fed by the demo's scenario (`twin.live.scenario`: every
shipped app, no app-less rule file): boards with live counts within a minute and per-unit
figures; incidents in the feed; alert symbols on the map; the alert panel; filters; bulk
acknowledge; rows holding still under the pointer; layer switches; entity icons, headings,
trails, fading and decluttered labels; the camera panel (live PTZ pose, PTZ controls, AR from
the panel and from search, "no video"); the curated element panel and its fonts; credits, clock
and sound; both languages at 1920×1080 and, in wall mode, at 3840×2160 (screenshots under
.cache/screenshots), every visible text from the message catalog."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import SCREENSHOTS, open_page, wait_live, wait_ready
from playwright.sync_api import Browser, Page
from servers import TOKENS, LiveServer, ingest, start_server
from waiting import wait_for

from bench.chromium import chromium_available
from twin.live.scenario import ScenarioFeed, configure

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

WEB = Path(__file__).resolve().parent.parent / "web"
ROAD_CAMERA = "camera:cam-bund-road"
PTZ_CAMERA = "camera:cam-lujiazui-ptz"
LANE = (121.4859, 31.2391)  # in the closed lane the scenario points closed-zone at (lon, lat)
QUIET = (121.5040, 31.2300)  # Lujiazui, outside every zone the scenario sets
BOARDS = ("basic", "public-order", "joint-governance", "public-service")
FEED_BUDGET_S = 60.0
STALE_S = 3


@pytest.fixture(scope="module")
def catalog() -> dict[str, dict[str, str]]:
    """The page's message catalog, read with Node."""
    node = shutil.which("node")
    assert node
    script = "import('./src/messages.js').then((m) => console.log(JSON.stringify(m.MESSAGES)))"
    out = subprocess.run([node, "--input-type=module", "-e", script], cwd=WEB,
                         capture_output=True, text=True, check=True)  # fmt: skip
    messages: dict[str, dict[str, str]] = json.loads(out.stdout)
    return messages


@pytest.fixture(scope="module")
def feed() -> dict[str, Any]:
    return {"stop": threading.Event(), "started": 0.0}


@pytest.fixture(scope="module")
def server(
    sample_ws: Path, tmp_path_factory: pytest.TempPathFactory, feed: dict[str, Any]
) -> Iterator[LiveServer]:
    """`twin serve` on a copy of the sample as `twin demo` runs it: the shipped apps pointed at
    the sample's places, no rule file, and the scenario feeding it until the boards test has
    seen its counts."""
    root = tmp_path_factory.mktemp("wall")
    ws = root / "ws"
    shutil.copytree(sample_ws, ws)
    (root / "rules.yaml").write_text("rules: []\n")
    srv = start_server(ws, {"TWIN_RULES": str(root / "rules.yaml"),
                            "TWIN_ENTITY_STALE_S": str(STALE_S)})  # fmt: skip
    configure(srv.url, TOKENS["admin"])
    scenario = ScenarioFeed(srv.url, TOKENS["ingest"])
    feed["started"] = time.monotonic()
    thread = threading.Thread(target=scenario.run, args=(feed["stop"],), daemon=True)
    thread.start()
    yield srv
    feed["stop"].set()
    thread.join(timeout=10)
    srv.stop()


@pytest.fixture(scope="module")
def desk(browser: Browser, server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """An operator's desk at 1920×1080 in Chinese, shared by the module's desk tests."""
    page, log = open_page(browser, f"{server.url}/?token={TOKENS['operator']}", 1920, 1080)
    wait_ready(page)
    wait_live(page)
    page.wait_for_function("twin.boards.loads > 0 && twin.access.me !== null")
    yield page, log.errors
    page.context.close()


def vehicle(
    track: str, where: tuple[float, float], cls: str = "car", **attributes: Any
) -> dict[str, Any]:
    return {"kind": "vehicle", "cls": cls, "source": ROAD_CAMERA, "track_id": track,
            "lon": where[0], "lat": where[1], "height": 5.0, "attributes": attributes}  # fmt: skip


def open_alerts(server: LiveServer, **params: str) -> list[dict[str, Any]]:
    with server.client("viewer") as client:
        items = client.get("/api/alerts", params={"limit": 1000, **params}).json()["items"]
    return [a for a in items if a["status"] not in ("resolved", "false_alarm")]


def fresh_critical(server: LiveServer, track: str) -> str:
    """A new critical incident: the closed lane's open incidents resolved, then a car in it."""
    with server.client("operator") as client:
        for alert in open_alerts(server, app="closed-zone"):
            client.post(f"/api/alerts/{alert['id']}/resolve")
    [alert_id] = ingest(server, vehicle(track, LANE))["alerts"]
    return str(alert_id)


def rows(page: Page) -> list[str]:
    return list(
        page.eval_on_selector_all("#alert-list li", "els => els.map(e => e.dataset.alertId)")
    )


# -- boards and incidents -------------------------------------------------------------------


def test_every_board_shows_live_counts_within_a_minute(
    desk: tuple[Page, list[str]], server: LiveServer, feed: dict[str, Any]
) -> None:
    page, errors = desk
    left = FEED_BUDGET_S - (time.monotonic() - feed["started"])
    page.wait_for_function(
        """boards => boards.every((b) => Number(document.querySelector(
            `#boards tr.board-row[data-board="${b}"] [data-fig="today"]`)?.textContent) > 0)""",
        arg=list(BOARDS), timeout=max(left, 1) * 1000,
    )  # fmt: skip
    feed["stop"].set()
    # Every alert belongs to an app and a board, and a board's row filters the feed to exactly
    # the open alerts of that board.
    assert all(a["board"] in BOARDS and a["app"] for a in open_alerts(server))
    for board in BOARDS:
        page.click(f'#boards tr.board-row[data-board="{board}"]')
        expected = {a["id"] for a in open_alerts(server, board=board)}
        page.wait_for_function(
            "ids => { const shown = [...document.querySelectorAll('#alert-list li')]"
            ".map((li) => li.dataset.alertId); return shown.length === ids.length"
            " && ids.every((id) => shown.includes(id)); }",
            arg=sorted(expected),
        )
        page.click(f'#boards tr.board-row[data-board="{board}"]')
    # Per-unit figures: every unit alerted, with today's count (as GET /api/boards says).
    with server.client("viewer") as client:
        units = {u["unit"]: u["today"] for u in client.get("/api/boards").json()["units"]}
    assert units

    def shown() -> dict[str, int]:
        cells = page.eval_on_selector_all(
            "#units tr.unit-row",
            "rows => rows.map((r) => [r.dataset.unit,"
            " r.querySelector('[data-fig=today]').textContent])",
        )
        return {unit: int(today) for unit, today in cells}

    wait_for(lambda: shown() == units)
    page.screenshot(path=str(SCREENSHOTS / "war-room-boards-units.png"))
    assert errors == []


def test_repeats_show_as_one_incident(desk: tuple[Page, list[str]], server: LiveServer) -> None:
    page, errors = desk
    page.mouse.move(0, 0)
    [first] = ingest(server, vehicle("rep-1", LANE))["alerts"]
    assert ingest(server, vehicle("rep-2", LANE))["alerts"] == [first]
    row = f'#alert-list li[data-alert-id="{first}"]'
    count = int(next(a for a in open_alerts(server) if a["id"] == first)["count"])
    assert count >= 2
    page.wait_for_selector(f'{row}[data-count="{count}"]')
    assert page.inner_text(f"{row} .alert-count") == f"×{count}"
    assert f"{count} 次" in page.inner_text(f"{row} .alert-seen")
    assert rows(page).count(first) == 1
    assert errors == []


# -- alerts on the map, the alert panel -----------------------------------------------------


def test_every_open_alert_has_a_symbol_that_opens_it(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    page.mouse.move(0, 0)
    page.evaluate("twin.home()")
    page.evaluate("twin.settle()")
    listed = {a["id"]: a for a in open_alerts(server)}
    page.wait_for_function("n => twin.state().alerts === n", arg=len(listed))
    symbols = page.eval_on_selector_all(
        ".alert-symbol",
        "els => els.map((e) => [e.dataset.alertId, e.className, getComputedStyle(e, '::after')"
        ".animationName, getComputedStyle(e).backgroundColor, e.hidden])",
    )
    assert {s[0] for s in symbols} == set(listed)
    assert page.evaluate("twin.state().alertSymbols") == sum(not s[4] for s in symbols) > 0
    colours: dict[str, set[str]] = {}
    for alert_id, classes, animation, colour, _ in symbols:
        alert = listed[alert_id]
        assert f"sev-{alert['severity']}" in classes
        colours.setdefault(alert["severity"], set()).add(colour)
        assert (animation == "alert-pulse") == (alert["status"] == "new"), "pulses while new"
    assert all(len(c) == 1 for c in colours.values()) and len(set.union(*colours.values())) == len(
        colours
    ), "one colour per severity"

    # A click on a symbol flies to the alert and opens its panel. From close by, the symbol of
    # an alert with an element and cameras is on top of the others at its place.
    candidates = [a for a in listed.values() if a["element_id"] and a["evidence"]["cameras"]]
    target = None
    for alert in candidates:
        page.evaluate("a => twin.flyTo(a.lon, a.lat, a.height || 0, 180)", alert)
        page.wait_for_timeout(1800)
        page.evaluate("twin.settle()")
        on_top = page.evaluate(
            """id => { const el = document.querySelector(`.alert-symbol[data-alert-id="${id}"]`);
                if (!el || el.hidden) return false; const r = el.getBoundingClientRect();
                const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                return Boolean(hit && hit.closest('.alert-symbol') === el); }""",
            alert["id"],
        )
        if on_top:
            target = alert
            break
    assert target is not None, "a symbol to click"
    symbol = f'.alert-symbol[data-alert-id="{target["id"]}"]'
    page.click(symbol)
    page.wait_for_selector(f'#panel[data-alert-id="{target["id"]}"]')
    # The view flies to look at the alert from 350 m (viewer.js flyToPoint).
    page.wait_for_function(
        """a => Math.abs(Cesium.Cartesian3.distance(twin.viewer.camera.positionWC,
            Cesium.Cartesian3.fromDegrees(a.lon, a.lat, a.height || 0)) - 350) < 20""",
        arg=target,
    )
    panel = page.locator("#panel")
    assert panel.locator(".life-cycle .step").count() >= 1
    cameras = panel.locator("a[data-camera-id]").evaluate_all(
        "els => els.map(e => e.dataset.cameraId)"
    )
    assert cameras == [c["id"] for c in target["evidence"]["cameras"]]
    page.wait_for_function("id => document.querySelector('#alert-element')"
                           ".textContent.includes(id)",
                           arg=target["element_id"])  # fmt: skip
    assert page.evaluate("twin.state().selectedId") == target["id"]
    assert "selected" in (page.get_attribute(symbol, "class") or "")
    # The life cycle follows the buttons in the panel.
    page.click("#panel .panel-actions button[data-action=ack]")
    page.wait_for_selector('#panel .life-cycle .step[data-status="acknowledged"]')
    page.wait_for_function("s => getComputedStyle(document.querySelector(s), '::after')"
                           ".animationName === 'none'", arg=symbol)  # fmt: skip
    page.screenshot(path=str(SCREENSHOTS / "war-room-alert-panel.png"))
    page.click("#panel-close")
    assert errors == []


def test_filters_by_severity_app_unit_and_time(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    page.mouse.move(0, 0)
    listed = open_alerts(server)
    checks = [
        ("#alert-severity", "critical", lambda a: a["severity"] == "critical"),
        ("#alert-app", "muck-truck", lambda a: a["app"] == "muck-truck"),
        ("#alert-unit", listed[0]["unit"], lambda a: a["unit"] == listed[0]["unit"]),
    ]
    for select, value, keep in checks:
        page.select_option(select, value)
        expected = sorted(a["id"] for a in listed if keep(a))
        assert expected, select
        page.wait_for_function("n => document.querySelectorAll('#alert-list li').length === n",
                               arg=len(expected))  # fmt: skip
        assert sorted(rows(page)) == expected
        assert page.evaluate("twin.state().alertsShown") == len(expected)
        assert (
            sorted(
                page.eval_on_selector_all(".alert-symbol", "els => els.map(e => e.dataset.alertId)")
            )
            == expected
        )
        page.select_option(select, "")
    # Time: an incident seen two hours ago is left out of the last hour.
    old = (time.time() - 7200) * 1000
    page.evaluate("t => twin.alerts.upsert({...twin.alerts.open[0], id: 'old-one', last_seen_at: "
                  "new Date(t).toISOString(), created_at: new Date(t).toISOString()})",
                  old)  # fmt: skip
    page.select_option("#alert-minutes", "60")
    page.wait_for_function("!twin.alerts.shown.some((a) => a.id === 'old-one')")
    assert "old-one" not in rows(page)
    page.select_option("#alert-minutes", "0")
    assert "old-one" in rows(page)
    page.evaluate("twin.alerts.alerts.delete('old-one'); twin.alerts.render()")
    assert errors == []


def test_bulk_acknowledge_and_rows_that_hold_still(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    page.mouse.move(0, 0)
    fresh = [ingest(server, vehicle(f"bulk-{i}", QUIET, "truck", covered=False))["alerts"][0]
             for i in range(2)]  # fmt: skip
    for alert_id in fresh:
        page.wait_for_selector(f'#alert-list li[data-alert-id="{alert_id}"]')
    for alert_id in fresh:
        page.check(f'#alert-list li[data-alert-id="{alert_id}"] .alert-check')
    page.click("#alert-ack-selected")
    page.wait_for_function("ids => ids.every((id) => twin.alerts.get(id).status"
                           " === 'acknowledged')",
                           arg=fresh)  # fmt: skip
    assert {a["id"]: a["status"] for a in open_alerts(server) if a["id"] in fresh} == dict.fromkeys(
        fresh, "acknowledged"
    )
    # With the pointer over the list, a new incident waits behind "n new" instead of pushing the
    # rows down; when the pointer leaves, it takes its place at the top.
    page.hover("#alert-list li:nth-child(2)")
    before = rows(page)
    [late] = ingest(server, vehicle("held", QUIET, "truck", covered=False))["alerts"]
    page.wait_for_selector("#alert-held", state="visible")
    assert rows(page) == before and late not in before
    page.mouse.move(0, 0)
    page.wait_for_function("id => document.querySelector('#alert-list li').dataset.alertId === id",
                           arg=late)  # fmt: skip
    assert page.is_hidden("#alert-held")
    assert errors == []


# -- layers, entities --------------------------------------------------------------------------


def test_layer_switches(desk: tuple[Page, list[str]]) -> None:
    page, errors = desk
    page.wait_for_function("twin.vectors.counts.roads > 0")
    page.click("#layers-toggle")
    shown = {
        "buildings": "twin.tileset.style.show.evaluate({getPropertyInherited:"
                     " (n) => n === 'height' ? 30 : undefined})",
        "terrain": "twin.tileset.style.show.evaluate({getPropertyInherited: () => undefined})",
        "roads": "twin.vectors.primitives.roads.show",
        "water": "twin.vectors.primitives.water.show",
        "jurisdictions": "twin.vectors.primitives.jurisdictions.show && twin.vectors.labels.show",
        "cameras": "twin.cameras.source.show",
        "footprints": "twin.cameras.footprints.show",
        "people": "!twin.live.hiddenLayers.has('people')",
        "vehicles": "!twin.live.hiddenLayers.has('vehicles')",
        "sensors": "twin.vectors.sensors.show && !twin.live.hiddenLayers.has('sensors')",
        "alerts": "!document.querySelector('#alert-symbols').hidden",
    }  # fmt: skip
    for layer, probe in shown.items():
        button = f'#layers-list [data-layer="{layer}"]'
        on = page.get_attribute(button, "aria-pressed") == "true"
        assert page.evaluate(probe) is on, layer
        page.click(button)
        assert page.evaluate(probe) is (not on), layer
        assert page.evaluate(f"twin.state().layers['{layer}']") is (not on)
        page.click(button)
        assert page.evaluate(probe) is on, layer
    page.screenshot(path=str(SCREENSHOTS / "war-room-layers.png"))
    page.click("#layers-toggle")
    assert errors == []


def rotation_deg(page: Page, entity_id: str) -> float:
    return float(page.evaluate(
        "id => Cesium.Math.toDegrees(twin.live.getById(id).billboard.rotation.getValue())",
        entity_id,
    ))  # fmt: skip


def test_entities_icons_heading_trail_fading_and_labels(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    lon, lat = QUIET
    d = 0.0001
    kinds = {"p": ("person", "person", {}), "c": ("vehicle", "car", {}),
             "b": ("vehicle", "bus", {}), "t": ("vehicle", "truck", {}),
             "k": ("vehicle", "bicycle", {}),
             "n": ("vehicle", "car", {"plate": "沪B99999"})}  # fmt: skip
    for step in range(2):  # two sightings each, 5 m apart eastward: heading 90°
        ingest(server, *[
            {"kind": kind, "cls": cls, "source": ROAD_CAMERA, "track_id": f"icon-{key}",
             "lon": lon + i * d * 3 + step * 0.00005, "lat": lat, "height": 5.0,
             "attributes": extra}
            for i, (key, (kind, cls, extra)) in enumerate(kinds.items())
        ])  # fmt: skip
        page.wait_for_timeout(400)
    ids = [f"{ROAD_CAMERA}/icon-{key}" for key in kinds]
    page.wait_for_function("ids => ids.every((id) => twin.live.getById(id))", arg=ids)
    classes = page.evaluate("ids => ids.map((id) => twin.live.getById(id).iconClass)", ids)
    assert classes == ["person", "car", "bus", "truck", "bicycle", "plate"]
    assert rotation_deg(page, ids[1]) == pytest.approx(-90.0, abs=2.0), "turned to the east"
    trail = page.evaluate("id => twin.live.getById(id + '#trail').polyline.positions"
                          ".getValue().length",
                          ids[1])  # fmt: skip
    assert trail == 2
    # Labels: a pile of people at one spot, seen from close by, get one label, not forty.
    page.evaluate(f"twin.flyTo({lon + 0.002}, {lat}, 5, 250)")
    page.wait_for_timeout(2000)
    ingest(server, *[{"kind": "person", "cls": "person", "source": ROAD_CAMERA,
                      "track_id": f"pile-{i}", "lon": lon + 0.002, "lat": lat, "height": 5.0}
                     for i in range(40)])  # fmt: skip
    page.wait_for_function("twin.live.getById('camera:cam-bund-road/pile-39')")
    page.evaluate("twin.declutter.run()")
    pile = page.evaluate(
        """() => [...Array(40).keys()]
            .map((i) => twin.live.getById(`camera:cam-bund-road/pile-${i}`))
            .filter((e) => twin.declutter.state.get(e.label) === true).length"""
    )
    assert pile == 1 and page.evaluate("twin.state().labelsShown") >= 1
    # Not updated for TWIN_ENTITY_STALE_S: faded (icon and trail), still on the map.
    page.wait_for_function(
        "ids => ids.every((id) => twin.live.tracks.get(id).faded)", arg=ids, timeout=STALE_S * 4000
    )
    alpha = page.evaluate("id => twin.live.getById(id).billboard.color.getValue().alpha", ids[1])
    assert alpha < 0.5 and page.evaluate("twin.state().fadedEntities") >= len(ids)
    assert page.evaluate("id => twin.live.getById(id + '#trail').show", ids[1]) is False
    page.screenshot(path=str(SCREENSHOTS / "war-room-entities.png"))
    assert errors == []


# -- cameras, panels, credits, clock, sound ---------------------------------------------------


def test_camera_panel_ptz_and_ar_from_search(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    with server.client("operator") as client:
        moved = client.put(f"/api/cameras/{PTZ_CAMERA}/ptz", json={"pan": 160.9, "tilt": -12})
    assert moved.status_code == 200
    # From search: the PTZ camera's AR button opens its record and AR view.
    page.fill("#search-input", "Lujiazui roundabout PTZ")
    page.click(f'#search-results button[data-ar="{PTZ_CAMERA}"]')
    page.wait_for_selector(f'#ar[data-camera-id="{PTZ_CAMERA}"]:not([hidden])')
    page.wait_for_selector(f'#panel[data-element-id="{PTZ_CAMERA}"]')
    page.wait_for_function(
        "() => document.querySelector('#camera-pose').textContent.includes('160.9')"
    )
    # No frame from this camera: the AR view says so, with no test pattern.
    page.wait_for_selector("#ar-no-video", state="visible")
    assert (
        page.evaluate("getComputedStyle(document.querySelector('#ar-no-video')).backgroundImage")
        == "none"
    )
    assert page.get_attribute("#ar", "data-video") == "no"
    # The operator turns it right: the server's pose and the panel follow.
    before = float(page.get_attribute("#camera-pose", "data-heading") or "nan")
    page.click("#ptz-controls button[data-ptz=right]")
    wait_for(lambda: server.client("viewer").get(f"/api/cameras/{PTZ_CAMERA}").json()["ptz"]["pan"]
             == pytest.approx(170.9))  # fmt: skip
    page.wait_for_function(
        "h => Math.abs(Number(document.querySelector('#camera-pose').dataset.heading) - h) > 5"
        " || document.querySelector('#camera-pose').textContent.includes('170.9')",
        arg=before,
    )
    page.click("#ar-close")
    # From the panel: the AR button.
    page.click("#camera-ar")
    page.wait_for_selector(f'#ar[data-camera-id="{PTZ_CAMERA}"]:not([hidden])')
    page.screenshot(path=str(SCREENSHOTS / "war-room-camera-panel.png"))
    page.click("#ar-close")
    page.click("#panel-close")
    assert errors == []


def test_element_panel_is_curated_and_its_fonts_cover_the_data(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    with server.client("viewer") as client:
        sites = client.get(
            "/api/elements", params={"kind": "site", "limit": 1000, "geometry": "false"}
        ).json()["items"]
        buildings = client.get(
            "/api/elements", params={"kind": "building", "q": "Tower", "geometry": "false"}
        ).json()["items"]
    thai = next(
        s
        for s in sites
        if re.search("[\u0e00-\u0e7f]", json.dumps(s["attributes"], ensure_ascii=False))
    )
    page.evaluate("id => twin.select(id)", thai["id"])
    page.wait_for_selector(f'#panel[data-element-id="{thai["id"]}"]')
    raw = page.locator("#panel details.panel-raw")
    assert raw.get_attribute("open") is None, "raw attributes are folded away"
    raw.locator("summary").click()
    texts = {
        "Thai": "\u0e01\u0e23\u0e38\u0e07\u0e40\u0e17\u0e1e",
        "Bengali": "\u09ac\u09be\u0982\u09b2\u09be",
    }
    for script, sample in texts.items():
        assert page.evaluate(f"document.fonts.check('16px \"Noto Sans {script}\"', '{sample}')")
        # Drawn with the Noto face, not as empty boxes: the glyphs differ from each other.
        widths = page.evaluate(
            """s => [...s].map((ch) => {
                const c = document.createElement('canvas').getContext('2d');
                c.font = '32px ' + getComputedStyle(document.body).fontFamily;
                return c.measureText(ch).width; })""",
            sample,
        )
        assert len(set(widths)) > 1, script
    page.screenshot(path=str(SCREENSHOTS / "war-room-element-raw.png"))
    building = next(b for b in buildings if b["name"])
    page.evaluate("id => twin.select(id)", building["id"])
    page.wait_for_selector(f'#panel[data-element-id="{building["id"]}"]')
    text = page.inner_text("#panel")
    for label in ("高度", "辖区 · 责任单位", "可见摄像头", "最近事件", "附近实时目标"):
        assert label in text
    assert re.search(r"\d+\.\d 米 \((无人机 nDSM|数据属性|按层数估算|默认值)\)", text), (
        "height and its source"
    )
    page.click("#panel-close")
    assert errors == []


def test_credits_clock_and_sound_at_the_desk(
    desk: tuple[Page, list[str]], server: LiveServer
) -> None:
    page, errors = desk
    credits = page.inner_text(".cesium-viewer-bottom")
    assert "OpenStreetMap" in credits
    assert page.locator("img[src*='ion-credit'], img[title='Cesium ion']").count() == 0
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.inner_text("#clock-date"))
    assert re.fullmatch(r"周.", page.inner_text("#clock-weekday"))
    assert re.match(r"UTC[+-]\d{2}:\d{2}", page.inner_text("#clock-zone"))
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", page.inner_text("#clock-time"))
    # The sound is off at a desk: a new critical alert makes none, until it is switched on.
    assert page.evaluate("twin.state().sound") == {"on": False, "played": 0}
    quiet = fresh_critical(server, "loud-1")
    page.wait_for_function("id => !!twin.alerts.get(id)", arg=quiet)
    assert page.evaluate("twin.state().sound.played") == 0
    page.click("#sound-switch")
    assert page.get_attribute("#sound-switch", "aria-pressed") == "true"
    loud = fresh_critical(server, "loud-2")
    assert loud != quiet
    page.wait_for_function("twin.state().sound.played === 1")
    page.click("#sound-switch")
    assert errors == []


def test_a_viewer_gets_no_controls_and_no_stray_text(browser: Browser, server: LiveServer) -> None:
    page, log = open_page(browser, f"{server.url}/?token={TOKENS['viewer']}", 1200, 800)
    try:
        wait_live(page)
        page.wait_for_function("twin.access.me !== null && twin.alerts.open.length > 0")
        text = page.inner_text("#alert-list")
        assert "null" not in text and "undefined" not in text
        assert page.locator("#alert-list button, #alert-bulk:not([hidden])").count() == 0
        assert log.errors == []
    finally:
        page.context.close()


# -- languages ----------------------------------------------------------------------------------

# Visible text of the page (outside data marked translate="no"): text nodes, the options of
# visible selects, placeholders and accessible names.
VISIBLE_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest("[translate=no], script, style, option, canvas")) continue;
    if (!el.checkVisibility({ visibilityProperty: true })) continue;
    texts.push(node.textContent);
  }
  for (const select of document.querySelectorAll("select")) {
    if (!select.checkVisibility()) continue;
    for (const option of select.options) {
      if (option.getAttribute("translate") !== "no") texts.push(option.textContent);
    }
  }
  for (const el of document.querySelectorAll("[placeholder], [aria-label]")) {
    if (!el.checkVisibility()) continue;
    if (el.closest("[translate=no], .cesium-widget, .alert-symbols")) continue;
    for (const attr of ["placeholder", "aria-label"]) {
      if (el.getAttribute(attr)) texts.push(el.getAttribute(attr));
    }
  }
  return texts.map((t) => t.trim()).filter(Boolean);
}"""
PURE = re.compile(r"^(px)?[\s\d:.,/%×°+\-–—()…·→▲▼◀▶−!#|◆]*(m|px)?$")


def untranslated(page: Page, messages: dict[str, str]) -> list[str]:
    """Visible texts that are neither a message of `messages` (placeholders as wildcards) nor
    figures."""
    patterns = []
    for message in messages.values():
        escaped = re.escape(message)
        patterns.append(re.compile("^" + re.sub(r"\\\{\w+\\\}", ".*?", escaped) + "$", re.S))

    def known(text: str) -> bool:
        bare = text.strip(" ()·:,→…")
        return bool(PURE.match(bare)) or any(p.match(text) or p.match(bare) for p in patterns)

    found = []
    for text in page.evaluate(VISIBLE_TEXT):
        # A text may join messages with " · " (e.g. the AR view's status line).
        if not known(text) and not all(known(part) for part in text.split(" · ")):
            found.append(text)
    return sorted(set(found))


def show_both_languages(page: Page, catalog: dict[str, dict[str, str]], name: str) -> None:
    """In each language: every visible text from the catalog, the other language's words
    absent, a screenshot."""
    for lang in ("zh-CN", "en"):
        page.evaluate("l => twin.setLang(l)", lang)
        page.wait_for_function("l => document.documentElement.lang === l", arg=lang)
        page.evaluate("twin.settle()")  # credits change with the next frame
        assert page.evaluate("twin.state().lang") == lang
        assert untranslated(page, catalog[lang]) == [], lang
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{lang}.png"))
    assert untranslated(page, catalog["zh-CN"])  # in English, the Chinese catalog leaves text over


def test_both_languages_at_1920x1080(
    desk: tuple[Page, list[str]], catalog: dict[str, dict[str, str]]
) -> None:
    page, errors = desk
    page.evaluate("twin.home()")
    first = page.evaluate("twin.alerts.open[0].id")
    page.evaluate("id => twin.select(id)", first)
    page.wait_for_selector("#panel[data-alert-id]")
    show_both_languages(page, catalog, "war-room-1080")
    page.evaluate("twin.setLang('zh-CN')")
    page.click("#panel-close")
    # ?lang= picks the language of a new page.
    assert errors == []


def test_the_wall_at_3840x2160(
    browser: Browser, server: LiveServer, catalog: dict[str, dict[str, str]]
) -> None:
    page, log = open_page(
        browser, f"{server.url}/?token={TOKENS['viewer']}&wall=1&lang=en", 3840, 2160
    )
    try:
        wait_ready(page)
        wait_live(page)
        state = page.evaluate("twin.state()")
        assert state["wall"] is True and state["lang"] == "en"
        assert state["sound"]["on"] is True, "sound on by default on the wall"
        sizes = page.evaluate(
            """() => Object.fromEntries(Object.entries({body: 'body', title: '.alert-title',
                evidence: '.alert-evidence', boards: '.boards-table td', clock: '#clock-time',
                date: '#clock-date'}).map(([k, s]) => [k, parseFloat(getComputedStyle(
                document.querySelector(s)).fontSize)]))"""
        )
        assert min(sizes["body"], sizes["title"], sizes["evidence"]) >= 26, sizes
        assert sizes["clock"] >= 48, sizes
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", page.inner_text("#clock-date"))
        assert page.inner_text("#clock-weekday") in (
            "Sun",
            "Mon",
            "Tue",
            "Wed",
            "Thu",
            "Fri",
            "Sat",
        )
        assert page.inner_text("#clock-zone").startswith("UTC")

        def assert_map_clear() -> None:
            boxes = page.evaluate(
                """() => ['#map-cell', '#left-column', '#right-column', '#header', '#statusbar']
                    .map((s) => { const r = document.querySelector(s).getBoundingClientRect();
                                  return [r.left, r.top, r.right, r.bottom]; })"""
            )
            cell, *others = boxes
            for other in others:
                overlap = min(cell[2], other[2]) - max(cell[0], other[0]) > 1 and min(
                    cell[3], other[3]) - max(cell[1], other[1]) > 1  # fmt: skip
                assert not overlap, (cell, other)
            assert cell[2] - cell[0] > 0.5 * 3840

        assert_map_clear()
        # A new critical alert: the wall chimes and shows it, beside the map, not over it.
        played = page.evaluate("twin.state().sound.played")
        critical = fresh_critical(server, "wall-1")
        page.wait_for_selector(f'#panel[data-alert-id="{critical}"]', timeout=30_000)
        assert page.evaluate("twin.state().sound.played") > played
        page.evaluate(f"twin.openCamera('{ROAD_CAMERA}', {{project: false}})")
        page.wait_for_selector("#ar:not([hidden])")
        assert_map_clear()
        show_both_languages(page, catalog, "war-room-wall-4k")
        assert log.errors == []
    finally:
        page.context.close()
