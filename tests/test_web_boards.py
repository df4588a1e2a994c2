"""The war-room boards and alert feed in real headless Chromium against a real `twin serve` on a
copy of the sample workspace, with the shipped apps: a plate on the suspended-licences watchlist
(治安管理) and an uncovered muck truck (协同治理) raise alerts; the boards' figures match
GET /api/boards; the life cycle runs through the feed's buttons, which (like the apps' on/off
switches) only a role allowed to use them is offered (GET /api/me); filters and clicks work."""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import SCREENSHOTS, open_page
from playwright.sync_api import APIResponse, Page, Route
from servers import TOKENS, LiveServer, start_server
from waiting import wait_for

from bench.chromium import chromium_available, launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

CAMERA = "camera:cam-bund-road"
PLATE = "沪A12345"
MASKED = "沪A·***45"
BUND = (121.4866, 31.2395)  # on the Bund, in the Waitan Police Station's area (lon, lat deg)
LUJIAZUI = (121.5050, 31.2350)  # a road in the Lujiazui Traffic Police Squad's area
OUTSIDE = (121.4700, 31.2300)  # west of the district: no element, no jurisdiction
LUJIAZUI_UNIT = "Lujiazui Traffic Police Squad"
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`twin serve` on a private copy of the sample workspace (shipped apps plus its rule file),
    with PLATE on the suspended-licences watchlist."""
    ws = tmp_path_factory.mktemp("boards") / "ws"
    shutil.copytree(sample_ws, ws)
    srv = start_server(ws)
    with srv.client("admin") as admin:
        added = admin.post(
            "/api/watchlists/suspended-licences/entries",
            json={"value": PLATE, "reason": "licence revoked"},
        )
    assert added.status_code == 201, added.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """The page as an operator sees it, socket open, boards and role loaded; shared by the
    module."""
    with launch() as browser:
        pg, log = open_page(browser, f"{server.url}/?token={TOKENS['operator']}&lang=en", 1280, 800)
        pg.wait_for_function(
            "window.twin && typeof twin.state === 'function' && twin.state().connected"
            " && twin.state().live && twin.boards.loads > 0 && twin.access.me !== null",
            timeout=60_000,
        )
        # Once the initial view's tiles are in, the globe draws only on change (render-on-demand)
        # and leaves the CPU to the page.
        pg.wait_for_function("document.body.dataset.ready", timeout=90_000)
        yield pg, log.errors
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SCREENSHOTS / "war-room-boards.png"))
        pg.context.close()


def ingest(server: LiveServer, *observations: dict[str, Any]) -> list[str]:
    """Post observations; the ids of the alerts they raised."""
    with server.client("ingest") as client:
        response = client.post("/api/observations", json={"observations": list(observations)})
    assert response.status_code == 200, response.text
    return list(response.json()["alerts"])


def vehicle(cls: str, where: tuple[float, float], track: str, **attributes: Any) -> dict[str, Any]:
    """A vehicle seen by the Bund road camera at `where` (lon, lat deg), 2 m up."""
    return {"kind": "vehicle", "cls": cls, "source": CAMERA, "track_id": track,
            "lon": where[0], "lat": where[1], "height": 2.0, "attributes": attributes}  # fmt: skip


def car(where: tuple[float, float], track: str) -> dict[str, Any]:
    """A car whose plate is on the suspended-licences list (app suspended-licence)."""
    return vehicle("car", where, track, plate=PLATE)


def truck(where: tuple[float, float], track: str) -> dict[str, Any]:
    """An uncovered muck truck (app muck-truck)."""
    return vehicle("truck", where, track, covered=False)


def alert(server: LiveServer, alert_id: str) -> dict[str, Any]:
    with server.client("viewer") as client:
        items = client.get("/api/alerts", params={"limit": 1000}).json()["items"]
    [found] = [a for a in items if a["id"] == alert_id]
    return dict(found)


def row(alert_id: str) -> str:
    return f'#alert-list li[data-alert-id="{alert_id}"]'


def ratio_text(ratio: float | None) -> str:
    """As the page writes a handled ratio (boards.js formatRatio)."""
    return "—" if ratio is None else f"{math.floor(ratio * 100 + 0.5)}%"


def duration_text(seconds: float | None) -> str:
    """As the page writes a median response time in English (i18n.js formatDuration)."""
    if seconds is None:
        return "—"
    s = math.floor(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def expected_boards(server: LiveServer, tz: str) -> dict[str, list[str]]:
    """GET /api/boards as the table should show it: row key → today, 7 days, handled, response."""
    with server.client("viewer") as client:
        data = client.get("/api/boards", params={"tz": tz} if tz else {}).json()
    figures: dict[str, list[str]] = {}
    for board in data["boards"]:
        for key, item in [(f"board:{board['id']}", board)] + [
            (f"app:{app['id']}", app) for app in board["apps"]
        ]:
            figures[key] = [str(item["today"]), str(item["week"]),
                            ratio_text(item["handled_ratio"]),
                            duration_text(item["median_response_s"])]  # fmt: skip
    return figures


SHOWN_BOARDS = """() => Object.fromEntries([...document.querySelectorAll('#boards tbody tr')].map(
    (tr) => [tr.dataset.app ? `app:${tr.dataset.app}` : `board:${tr.dataset.board}`,
             ['today', 'week', 'handled', 'response'].map(
                 (f) => tr.querySelector(`[data-fig="${f}"]`).textContent)]))"""


def assert_boards_match(pg: Page, server: LiveServer) -> dict[str, list[str]]:
    """Wait until the boards table equals GET /api/boards (as the page's zone sees 'today')."""
    tz = pg.evaluate("twin.boards.tz")
    wait_for(lambda: pg.evaluate(SHOWN_BOARDS) == expected_boards(server, tz))
    shown = pg.evaluate(SHOWN_BOARDS)
    expected = expected_boards(server, tz)
    assert shown == expected
    return expected


def test_boards_show_the_figures_of_get_boards(
    page: tuple[Page, list[str]], server: LiveServer
) -> None:
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    assert pg.locator("#boards tr.board-row").count() == 4
    for board in ("basic", "public-order", "joint-governance", "public-service"):
        assert pg.locator(f'#boards tr.board-row[data-board="{board}"]').count() == 1
    boards_text = pg.inner_text("#boards")
    assert "Public order" in boards_text and "Public service" in boards_text
    assert len(ingest(server, car(BUND, "b-1"), car(BUND, "b-2"))) == 2
    assert len(ingest(server, truck(LUJIAZUI, "t-1"))) == 1
    # The `alert` messages make the page fetch the boards again (no reload, no 60 s tick).
    figures = assert_boards_match(pg, server)
    assert figures["board:public-order"][:2] == ["2", "2"]
    assert figures["app:suspended-licence"][:2] == ["2", "2"]
    assert figures["board:joint-governance"][:2] == ["1", "1"]
    assert figures["app:muck-truck"][:2] == ["1", "1"]
    assert errors == []


def test_life_cycle_through_the_buttons(page: tuple[Page, list[str]], server: LiveServer) -> None:
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    [first] = ingest(server, car(BUND, "life-1"))
    [second] = ingest(server, car(BUND, "life-2"))
    pg.wait_for_selector(row(first) + '[data-status="new"]')
    text = pg.inner_text(row(first))
    assert MASKED in text and PLATE not in text, "evidence shows the masked plate only"
    assert "Waitan Police Station" in text
    assert pg.locator(row(first) + f' .alert-cameras a[data-camera-id="{CAMERA}"]').count() == 1

    # The token changes under the page to a viewer's: the server refuses (403) and the page
    # says so; the alert stays new.
    pg.evaluate("t => sessionStorage.setItem('twin.token', t)", TOKENS["viewer"])
    pg.click(row(first) + ' button[data-action="dispatch"]')
    pg.wait_for_selector("#alert-error:not([hidden])")
    assert "403" in pg.inner_text("#alert-error")
    assert pg.get_attribute(row(first), "data-status") == "new"
    errors[:] = [e for e in errors if "403" not in e]  # the refused request, seen above
    pg.evaluate("t => sessionStorage.setItem('twin.token', t)", TOKENS["operator"])

    for action, status in (("ack", "acknowledged"), ("dispatch", "dispatched"),
                           ("arrive", "on_scene")):  # fmt: skip
        pg.click(row(first) + f' button[data-action="{action}"]')
        pg.wait_for_selector(row(first) + f'[data-status="{status}"] .badge.status-{status}')
    pg.click(row(first) + ' button[data-action="resolve"]')
    pg.wait_for_selector(row(first), state="detached")  # closed alerts leave the feed
    done = alert(server, first)
    assert done["status"] == "resolved"
    for field in ("acknowledged_at", "dispatched_at", "on_scene_at", "resolved_at"):
        assert done[field], field
    assert done["dispatched_at"] <= done["on_scene_at"] <= done["resolved_at"]

    pg.wait_for_selector(row(second))
    pg.click(row(second) + ' button[data-action="false-alarm"]')
    pg.wait_for_selector(row(second), state="detached")
    assert alert(server, second)["status"] == "false_alarm"

    figures = assert_boards_match(pg, server)
    assert figures["app:suspended-licence"][3] != "—", "a median response time is shown"
    assert figures["app:suspended-licence"][2] != "—", "a handled ratio is shown"
    assert errors == []


def visible_alerts(pg: Page) -> set[str]:
    return set(pg.eval_on_selector_all("#alert-list li", "els => els.map(e => e.dataset.alertId)"))


def test_filter_by_board_and_unit(page: tuple[Page, list[str]], server: LiveServer) -> None:
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    [plate] = ingest(server, car(BUND, "filter-1"))
    [muck] = ingest(server, truck(LUJIAZUI, "filter-2"))
    pg.wait_for_selector(row(plate))
    pg.wait_for_selector(row(muck))

    pg.select_option("#alert-board", "joint-governance")
    pg.wait_for_selector(row(plate), state="detached")
    shown = visible_alerts(pg)
    assert muck in shown
    with server.client("viewer") as client:
        listed = client.get("/api/alerts", params={"board": "joint-governance"}).json()["items"]
    open_ids = {a["id"] for a in listed if a["status"] not in ("resolved", "false_alarm")}
    assert shown == open_ids
    assert "board-public-order" not in pg.inner_html("#alert-list")

    pg.select_option("#alert-board", "")
    pg.wait_for_selector(row(plate))
    pg.select_option("#alert-unit", LUJIAZUI_UNIT)
    pg.wait_for_selector(row(plate), state="detached")
    assert muck in visible_alerts(pg)
    units = pg.eval_on_selector_all("#alert-list li", "els => els.map(e => e.dataset.unit)")
    assert set(units) == {LUJIAZUI_UNIT}

    # A click on a board row filters by it too (and a second click clears it).
    pg.select_option("#alert-unit", "")
    pg.click('#boards tr.board-row[data-board="public-order"]')
    pg.wait_for_selector(row(muck), state="detached")
    assert pg.input_value("#alert-board") == "public-order"
    assert plate in visible_alerts(pg)
    pg.click('#boards tr.board-row[data-board="public-order"]')
    pg.wait_for_selector(row(muck))
    assert pg.input_value("#alert-board") == ""
    assert errors == []


def test_an_alert_pushed_during_a_reload_stays_in_the_feed(
    page: tuple[Page, list[str]], server: LiveServer
) -> None:
    """The feed reloads GET /api/alerts (e.g. when its filter changes). An alert pushed on the
    socket while those answers are on their way, and which they do not hold, stays shown."""
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:  # answered now by the server, delivered later
        held.append((route, route.fetch()))

    pattern = re.compile(r"/api/alerts\?")
    pg.route(pattern, hold)
    try:
        pg.evaluate("void twin.alerts.load()")
        deadline = time.monotonic() + 30
        while len(held) < 4 and time.monotonic() < deadline:  # one request per open status
            pg.wait_for_timeout(50)
        assert len(held) == 4
        [late] = ingest(server, car(BUND, "reload-1"))
        pg.wait_for_selector(row(late))  # from the socket
        assert all(late not in response.text() for _, response in held)  # the answers predate it
    finally:
        for route, response in held:
            route.fulfill(response=response)
        pg.unroute(pattern)
    pg.wait_for_function("twin.alerts.arriving.size === 0")
    assert pg.is_visible(row(late))
    assert errors == []


def test_click_alert_opens_its_panel_element_and_entity(
    page: tuple[Page, list[str]], server: LiveServer
) -> None:
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    [on_road] = ingest(server, car(LUJIAZUI, "click-1"))
    [off_map] = ingest(server, car(OUTSIDE, "click-2"))
    element_id = alert(server, on_road)["element_id"]
    assert element_id, "the alert lies on an element (a road)"
    pg.wait_for_selector(row(on_road))
    start = pg.evaluate("twin.viewer.camera.positionCartographic.height")
    pg.click(row(on_road) + " .alert-title")
    pg.wait_for_selector(f'#panel[data-alert-id="{on_road}"]')
    assert pg.inner_text("#panel-id") == on_road
    assert "selected" in (pg.get_attribute(row(on_road), "class") or "")
    pg.wait_for_function("h => twin.viewer.camera.positionCartographic.height < h", arg=start)
    # The element it happened at opens from the alert's panel.
    pg.click("#alert-element")
    pg.wait_for_selector(f'#panel[data-element-id="{element_id}"]')

    # No element there: the alert's panel offers its live entity (source/track).
    assert alert(server, off_map)["element_id"] is None
    pg.wait_for_selector(row(off_map))
    pg.click(row(off_map) + " .alert-title")
    pg.wait_for_selector(f'#panel[data-alert-id="{off_map}"]')
    pg.click("#alert-entity")
    pg.wait_for_selector(f'#panel[data-entity-id="{CAMERA}/click-2"]')

    # A camera that sees the place opens the camera's record and its AR view.
    pg.click(row(on_road) + f' .alert-cameras a[data-camera-id="{CAMERA}"]')
    pg.wait_for_selector(f'#panel[data-element-id="{CAMERA}"]')
    pg.wait_for_selector(f'#ar[data-camera-id="{CAMERA}"]:not([hidden])')
    pg.click("#ar-close")
    assert errors == []


def test_get_api_me_names_the_role_and_its_permissions(server: LiveServer) -> None:
    expected = {
        "viewer": ["read"],
        "operator": ["alerts", "read"],
        "ingest": ["ingest", "read"],
        "admin": ["admin", "alerts", "ingest", "read"],
    }
    for role, permissions in expected.items():
        with server.client(role) as client:
            me = client.get("/api/me").json()
        assert me["role"] == role and me["permissions"] == permissions
        assert me["label"].startswith(f"{role}#") and TOKENS[role] not in me["label"]
    with server.client() as anonymous:
        assert anonymous.get("/api/me").status_code == 401
        bad = anonymous.get("/api/me", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


def app_enabled(server: LiveServer, app_id: str) -> bool:
    with server.client("viewer") as client:
        return bool(client.get(f"/api/apps/{app_id}").json()["enabled"])


def sign_in(pg: Page, role: str) -> None:
    """Change the page's token as the sign-in form does, and wait for GET /api/me to answer."""
    pg.evaluate(
        "t => (twin.access.me = null, sessionStorage.setItem('twin.token', t),"
        " window.dispatchEvent(new Event('twin:token')))",
        TOKENS[role],
    )
    pg.wait_for_function("twin.access.me !== null")


def test_the_page_offers_only_what_the_role_may_do(
    page: tuple[Page, list[str]], server: LiveServer
) -> None:
    """An operator gets the life-cycle buttons but no app switches; an admin gets both, and a
    switch turns an app off and on on the server. (A viewer gets neither: test_web.py.)"""
    pg, errors = page
    pg.mouse.move(0, 0)  # rows hold still under the pointer (alerts.js)
    [first] = ingest(server, car(BUND, "role-1"))
    buttons = row(first) + " .alert-buttons button"
    pg.wait_for_selector(row(first) + '[data-status="new"]')
    assert pg.get_attribute("#role", "data-role") == "operator"
    actions = pg.eval_on_selector_all(buttons, "bs => bs.map(b => b.dataset.action)")
    assert actions == ["ack", "dispatch", "false-alarm"]
    assert pg.locator("#boards tr.app-row").count() > 0
    assert pg.locator("#boards .app-toggle").count() == 0

    switch = '#boards .app-toggle[data-app="suspended-licence"]'
    try:
        sign_in(pg, "admin")
        assert pg.get_attribute("#role", "data-role") == "admin"
        assert pg.locator(buttons).count() == 3
        pg.click(switch + '[data-enabled="true"]')
        wait_for(lambda: not app_enabled(server, "suspended-licence"))
        assert not app_enabled(server, "suspended-licence")
        pg.click(switch + '[data-enabled="false"]')
        wait_for(lambda: app_enabled(server, "suspended-licence"))
        assert app_enabled(server, "suspended-licence")
    finally:
        with server.client("admin") as admin:  # leave the app on for the other tests
            admin.put("/api/apps/suspended-licence", json={"enabled": True})
        sign_in(pg, "operator")
    assert pg.locator("#boards .app-toggle").count() == 0
    assert errors == []
