"""The sample workspace, built with LOD (the default), streamed by `twin serve` to CesiumJS in
headless Chromium: the overview loads coarse tiles only, moving the camera close to a building
requests and loads more tiles, and picking that building at the finest level returns its
element_id. Also from a ``.3tz``-only copy of the workspace."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import shapely
from browser import ConsoleLog
from playwright.sync_api import Browser, Page, Request
from servers import LiveServer, start_server

from bench.chromium import CESIUM, chromium_available
from twin.catalog import Catalog, Element
from twin.workspace import Manifest, WorkspacePaths

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (chromium_available() and CESIUM.is_dir()), reason="needs chromium and cesium"
    ),
]
OVERVIEW_HEIGHT_M = 5000.0  # above the district's centre, looking straight down
CLOSE_ABOVE_ROOF_M = 150.0
PAGE_PATH = "/__streaming-test.html"
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script><script src="/cesium/Cesium.js"></script>
<style>html,body,#v{width:100%;height:100%;margin:0}</style></head><body><div id="v"></div>
<script>
window.start = async () => {
  window.viewer = new Cesium.Viewer("v", {baseLayer: false, animation: false, timeline: false,
    baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, infoBox: false, selectionIndicator: false});
  window.frames = 0;
  viewer.scene.postRender.addEventListener(() => { window.frames += 1; });
  window.tileset = await Cesium.Cesium3DTileset.fromUrl("/tiles/tileset.json");
  viewer.scene.primitives.add(tileset);
};
// Look straight down from (lon, lat, height); resolve once every tile the view needs is in.
window.look = async (lon, lat, height) => {
  viewer.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
    orientation: {heading: 0, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0}});
  const after = window.frames + 3;
  for (let i = 0; i < 400; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (window.frames >= after && tileset.tilesLoaded) break;
  }
  const s = tileset.statistics;
  return {loaded: tileset.tilesLoaded, selected: s.selected, visited: s.visited,
          contentLoaded: s.numberOfLoadedTilesTotal};
};
window.pickCentre = () => {
  const c = viewer.scene.canvas;
  const f = viewer.scene.pick(new Cesium.Cartesian2(c.clientWidth / 2, c.clientHeight / 2));
  if (!f || !f.getProperty) return null;
  const tile = f.content.tile;
  return {id: f.getProperty("element_id"), error: tile.geometricError,
          children: tile.children.length, url: f.content.url};
};
</script></body></html>"""


@dataclass
class TileRequests:
    """Every /tiles/ URL the page asked for, in order."""

    urls: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        if "/tiles/" in request.url:
            self.urls.append(request.url.split("/tiles/", 1)[1])


@pytest.fixture(scope="module")
def archive_only(sample_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`twin serve` on a copy of the sample whose tiles are only tiles.3tz."""
    from tiles.archive import write_3tz

    ws = tmp_path_factory.mktemp("streaming") / "ws"
    shutil.copytree(sample_ws, ws)
    paths = WorkspacePaths(ws)
    write_3tz(paths.tiles, paths.tiles_archive)
    shutil.rmtree(paths.tiles)
    server = start_server(ws)
    yield server
    server.stop()


def _clear_tallest(buildings: list[Element]) -> Element:
    """The tallest building that no other footprint touches: its roof is the only thing at the
    canvas centre when seen from above (the sample's tallest tower has a building part on it)."""
    tree = shapely.STRtree([b.geometry for b in buildings])
    for building in sorted(buildings, key=lambda b: -(b.base_height + b.height)):
        if len(tree.query(building.geometry, predicate="intersects")) == 1:
            return building
    raise AssertionError("no free-standing building in the sample")


def _open(browser: Browser, url: str) -> tuple[Page, ConsoleLog, TileRequests]:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    page.route(
        f"{url}{PAGE_PATH}", lambda route: route.fulfill(body=PAGE, content_type="text/html")
    )
    log, requests = ConsoleLog(), TileRequests()
    log.attach(page)
    page.on("request", requests.on_request)
    page.goto(f"{url}{PAGE_PATH}")
    page.evaluate("window.start()")
    return page, log, requests


def _look(page: Page, lon: float, lat: float, height: float) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        "([lon, lat, h]) => window.look(lon, lat, h)", [lon, lat, height]
    )
    return result


def _stream_and_pick(browser: Browser, server: LiveServer, sample_ws: Path) -> None:
    manifest = Manifest.read(WorkspacePaths(sample_ws).manifest)
    minlon, minlat, maxlon, maxlat = manifest.bounds
    tower = _clear_tallest(list(Catalog(WorkspacePaths(sample_ws).catalog).all("building")))
    page, log, requests = _open(browser, server.url)
    try:
        overview = _look(page, (minlon + maxlon) / 2, (minlat + maxlat) / 2, OVERVIEW_HEIGHT_M)
        assert overview["loaded"], overview
        first = list(requests.urls)
        assert first[0] == "tileset.json"
        glbs = [u for u in first if u.endswith(".glb")]
        assert glbs, "the overview draws something"

        roof = tower.base_height + tower.height
        close = _look(page, tower.lon, tower.lat, roof + CLOSE_ABOVE_ROOF_M)
        assert close["loaded"], close
        more = [u for u in requests.urls[len(first) :] if u.endswith(".glb")]
        assert more, f"moving closer requested no tiles (overview: {first})"
        assert close["contentLoaded"] > overview["contentLoaded"], (overview, close)
        picked = page.evaluate("window.pickCentre()")
    finally:
        page.context.close()
    assert log.errors == [], log.errors
    assert picked is not None, "nothing under the canvas centre"
    assert picked["id"] == tower.id, json.dumps(picked)
    assert picked["error"] == 0 and picked["children"] == 0, json.dumps(picked)  # finest level
    leaf = picked["url"].split("/tiles/", 1)[1]
    assert leaf in more and leaf not in first  # loaded for the close view, not the overview


def test_lod_sample_refines_when_closer_and_picks_at_the_finest_level(
    browser: Browser, live_server: LiveServer, sample_ws: Path
) -> None:
    tileset = json.loads(WorkspacePaths(sample_ws).tileset.read_text())
    assert tileset["root"]["children"][0]["refine"] == "REPLACE"  # built with LOD
    _stream_and_pick(browser, live_server, sample_ws)


def test_the_same_from_a_3tz_archive(
    browser: Browser, archive_only: LiveServer, sample_ws: Path
) -> None:
    _stream_and_pick(browser, archive_only, sample_ws)
