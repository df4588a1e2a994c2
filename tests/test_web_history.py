"""The page's time bar and alert history in real headless Chromium against a real `twin serve`
(a copy of the sample, a hot window of 3 s so the track is already in the archive): a posted
track replays at the right places and times, an alert shows while it was open, "back to live"
brings the live layer back, and the history dialog lists the closed alert."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from browser import SCREENSHOTS, open_page, wait_live, wait_ready
from playwright.sync_api import Browser, Page
from servers import TOKENS, LiveServer, start_server

from bench.chromium import chromium_available, launch

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium"),
]

CAMERA = "camera:cam-bund-road"
ROAD = (121.4866, 31.2395)  # on the Bund (lon, lat deg)
ZONE = 0.0004  # half size (deg) of the test zone around ROAD
STEP_DEG = 2e-5  # eastward per second of the walk (~1.9 m/s)
NOW = datetime.now(UTC).replace(microsecond=0)
WALK_START = NOW - timedelta(minutes=4)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def walk_at(seconds: float) -> tuple[float, float]:
    """Where the posted walker is `seconds` after WALK_START (lon, lat deg)."""
    return ROAD[0] - 0.003 + seconds * STEP_DEG, ROAD[1] - 0.002


@pytest.fixture(scope="module")
def server(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("web-history")
    ws = root / "ws"
    shutil.copytree(sample_ws, ws)
    lon, lat = ROAD
    rules = root / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: history-zone\n    title: Vehicle in the history test zone\n"
        "    type: zone\n    kinds: [vehicle]\n    severity: critical\n    zone:\n"
        f"      polygon: [[{lon - ZONE}, {lat - ZONE}], [{lon + ZONE}, {lat - ZONE}], "
        f"[{lon + ZONE}, {lat + ZONE}], [{lon - ZONE}, {lat + ZONE}]]\n"
    )
    srv = start_server(ws, {"TWIN_RULES": str(rules), "TWIN_HOT_MINUTES": "0.05",
                            "TWIN_HISTORY_INTERVAL_S": "0.2"})  # fmt: skip
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def posted(server: LiveServer) -> dict[str, str]:
    """The walker (120 observations, one a second) and an alert that was open for ~4 s."""
    walk = []
    for i in range(120):
        lon, lat = walk_at(i)
        walk.append(
            {
                "kind": "person",
                "cls": "person",
                "source": CAMERA,
                "track_id": "walker",
                "lon": lon,
                "lat": lat,
                "time": iso(WALK_START + timedelta(seconds=i)),
            }
        )
    with server.client("ingest") as c:
        assert c.post("/api/observations", json={"observations": walk}).status_code == 200
        reply = c.post("/api/observations", json={"observations": [
            {"kind": "vehicle", "cls": "car", "source": CAMERA, "track_id": "intruder",
             "lon": ROAD[0], "lat": ROAD[1]}]}).json()  # fmt: skip
    [alert_id] = reply["alerts"]
    time.sleep(4.0)
    with server.client("operator") as c:
        resolved = c.post(f"/api/alerts/{alert_id}/resolve").json()
    deadline = time.monotonic() + 30
    while httpx.get(server.url + "/healthz").json()["disk"]["archive_files"] < 2:
        assert time.monotonic() < deadline, "the mover did not archive"
        time.sleep(0.3)
    return {"alert": alert_id, "created": resolved["created_at"], "closed": resolved["resolved_at"]}


@pytest.fixture(scope="module")
def page(server: LiveServer, posted: dict[str, str]) -> Iterator[Page]:
    with launch() as browser:
        pg = _open(browser, server)
        yield pg
        pg.context.close()


def _open(browser: Browser, server: LiveServer) -> Page:
    pg, log = open_page(browser, f"{server.url}/?token={TOKENS['viewer']}&lang=en", 1920, 1080)
    wait_ready(pg)
    wait_live(pg)
    pg.set_default_timeout(60_000)
    pg.evaluate("() => { window.__errors = []; }")
    pg.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    pg.errors = log.errors  # type: ignore[attr-defined]
    return pg


def position(page: Page) -> dict[str, float] | None:
    return page.evaluate(f"twin.replay.positionOf('{CAMERA}/walker')")


def test_a_posted_track_replays_at_the_right_places(page: Page) -> None:
    at = WALK_START + timedelta(seconds=30)
    page.evaluate(f"twin.replay.start('{iso(at)}')")
    state = page.evaluate("twin.replay.state()")
    assert state["active"] and not state["playing"] and state["time"].startswith(iso(at)[:19])
    assert page.is_visible("#timebar") and page.evaluate("twin.live.source.show") is False
    where = position(page)
    assert where is not None
    assert where["lon"] == pytest.approx(walk_at(30)[0], abs=1e-7)
    assert where["lat"] == pytest.approx(walk_at(30)[1], abs=1e-7)
    # Between two observations the walker is drawn between them.
    page.evaluate(f"twin.replay.seek('{iso(at + timedelta(seconds=40, milliseconds=500))}')")
    where = position(page)
    assert where is not None and where["lon"] == pytest.approx(walk_at(70.5)[0], abs=1e-7)
    # Before the walk (and 30 s after it) there is nobody to draw.
    page.evaluate(f"twin.replay.seek('{iso(WALK_START - timedelta(seconds=5))}')")
    assert position(page) is None
    page.evaluate(f"twin.replay.seek('{iso(WALK_START + timedelta(seconds=160))}')")
    assert position(page) is None
    # Playing at 10x, by the time bar's controls: the replay clock runs 10x the page's clock and
    # the walker moves east with it.
    page.evaluate(f"twin.replay.seek('{iso(WALK_START + timedelta(seconds=10))}')")
    page.select_option("#timebar select[data-control=speed]", "10")
    page.click("#timebar button[data-control=play]")
    clock = "[Date.parse(twin.replay.state().time), performance.now()]"
    first = page.evaluate(clock)
    page.wait_for_timeout(3000)
    second = page.evaluate(clock)
    page.click("#timebar button[data-control=play][data-playing=true]")
    rate = (second[0] - first[0]) / (second[1] - first[1])
    assert 7 <= rate <= 13, rate
    assert not page.evaluate("twin.replay.state()")["playing"]
    moved = datetime.fromisoformat(page.evaluate("twin.replay.state()")["time"]) - WALK_START
    where = position(page)
    assert where is not None and moved.total_seconds() > 20
    assert where["lon"] == pytest.approx(walk_at(moved.total_seconds())[0], abs=3 * STEP_DEG)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "war-room-replay.png"))


def test_alerts_replay_while_they_were_open(page: Page, posted: dict[str, str]) -> None:
    created = datetime.fromisoformat(posted["created"])
    closed = datetime.fromisoformat(posted["closed"])
    page.evaluate(f"twin.replay.start('{iso(created + (closed - created) / 2)}')")
    assert page.evaluate("twin.replay.state()")["alerts"] == 1
    symbol = page.evaluate(
        f"twin.viewer.dataSources.getByName('replay')[0].entities.getById('alert:{posted['alert']}')"
        ".show"
    )
    assert symbol is True
    page.evaluate(f"twin.replay.seek('{iso(closed + timedelta(seconds=1))}')")
    assert page.evaluate("twin.replay.state()")["alerts"] == 0


def test_back_to_live(page: Page) -> None:
    page.evaluate(f"twin.replay.start('{iso(WALK_START + timedelta(seconds=20))}')")
    page.click("#timebar .timebar-live")
    assert page.is_hidden("#timebar")
    assert page.evaluate("twin.live.source.show") is True
    assert page.evaluate("twin.replay.state()")["active"] is False
    assert position(page) is None
    assert page.inner_text("#replay-toggle").endswith("Replay")


def test_history_dialog_lists_the_closed_alert(page: Page, posted: dict[str, str]) -> None:
    page.click("#history-open")
    page.wait_for_function(f"twin.history.rows.includes('{posted['alert']}')", timeout=30_000)
    row = page.locator(f"#history tr[data-id='{posted['alert']}']")
    text = row.inner_text()
    assert "Resolved" in text and "Critical" in text
    page.screenshot(path=str(SCREENSHOTS / "war-room-history.png"))
    page.select_option("#history select[data-filter=status]", "new")
    page.wait_for_function(f"!twin.history.rows.includes('{posted['alert']}')")
    page.click("#history .icon-button")
    assert page.is_hidden("#history")
    errors = [e for e in page.errors if "favicon" not in e]  # type: ignore[attr-defined]
    assert errors == []
