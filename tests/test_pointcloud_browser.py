"""CesiumJS (npm, headless Chromium) loads an implicit-octree point cloud: content is selected
from afar, and moving the camera closer makes it fetch deeper subtrees and tiles."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from browser import CesiumSite, open_page
from playwright.sync_api import ConsoleMessage
from synthetic_city import FRAME
from synthetic_cloud import synthetic_cloud

import tiles.pointcloud as tiles_pointcloud
from bench.chromium import CESIUM, chromium_available, launch
from tiles import Compression
from tiles.schema import tileset_schema
from tiles.spec import Asset, Tile, Tileset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (chromium_available() and CESIUM.is_dir()), reason="needs chromium and cesium"
    ),
]
SIDE_M = 200.0
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script><script src="/cesium/Cesium.js"></script>
<style>html,body,#v{width:100%;height:100%;margin:0}</style></head><body><div id="v"></div>
<script>
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
window.load = async (url) => {
  window.viewer = new Cesium.Viewer("v", {baseLayer: false, animation: false, timeline: false,
    baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, infoBox: false, selectionIndicator: false});
  // Request what the view needs at once: no deferring off-centre tiles or while moving.
  window.tileset = await Cesium.Cesium3DTileset.fromUrl(url,
    {foveatedScreenSpaceError: false, cullRequestsWhileMoving: false});
  viewer.scene.primitives.add(tileset);
};
// Look straight down from `height` m and render until the view's tiles are in: ten frames in
// a row with nothing pending (a subtree that just came in asks for its tiles a frame later).
window.look = async (lon, lat, height) => {
  viewer.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
    orientation: {heading: 0, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0}});
  let calm = 0;
  for (let i = 0; i < 300 && calm < 10; i++) {
    viewer.scene.render();
    await sleep(100);
    calm = tileset.tilesLoaded && tileset.statistics.selected ? calm + 1 : 0;
  }
  const s = tileset.statistics;
  return {selected: s.selected, points: s.numberOfPointsSelected};
};
</script></body></html>"""


@pytest.mark.parametrize("compression", ["none", "meshopt"])
def test_cesium_refines_an_implicit_point_cloud(
    served: CesiumSite, monkeypatch: pytest.MonkeyPatch, compression: Compression
) -> None:
    base, root = served.base, served.root
    # Small tiles and 2-level subtrees: a 60 k-point cloud gets a deep tree and many subtrees.
    monkeypatch.setattr(tiles_pointcloud, "LEAF_POINTS", 1_500)
    monkeypatch.setattr(tiles_pointcloud, "SAMPLE_GRID", 16)
    monkeypatch.setattr(tiles_pointcloud, "SUBTREE_LEVELS", 2)
    shutil.rmtree(root / "cloud", ignore_errors=True)  # the other parameter's cloud
    ref, report = synthetic_cloud(root / "cloud", 60_000, SIDE_M, compression=compression)
    assert report.levels >= 4
    ref.content.uri = "cloud/tileset.json"  # type: ignore[union-attr]
    # The placing root has no content; a large error makes every view open the cloud.
    top = Tile(ref.bounding_volume, 10 * SIDE_M, refine="ADD",
               transform=FRAME.enu_to_ecef_matrix(), children=[ref])  # fmt: skip
    tileset = Tileset(Asset("1.1"), 10 * SIDE_M, top)
    # CesiumJS reads tile metadata with the root tileset's schema only (CesiumGS/cesium#11638):
    # like the build's root tileset under implicit tiling, it defines the `tile` class.
    tileset.schema = tileset_schema(None, tiles=True)
    (root / "tileset.json").write_text(json.dumps(tileset.to_dict()))
    requests: list[str] = []
    failures: list[str] = []  # CesiumJS logs a tile that fails to load with console.log
    lon, lat, _ = FRAME.to_geodetic(np.array([[SIDE_M / 4, SIDE_M / 4, 0.0]]))[0]

    def on_console(message: ConsoleMessage) -> None:
        if "failed to load" in message.text:
            failures.append(message.text)

    with launch() as browser:
        page, log = open_page(browser, f"{base}/index.html")
        page.on("request", lambda r: requests.append(r.url.removeprefix(base)))
        page.on("console", on_console)
        page.evaluate("(u) => window.load(u)", "/tileset.json")
        far = page.evaluate("([lon, lat]) => window.look(lon, lat, 3000)", [lon, lat])
        far_requests = _cloud_files(requests)
        near = page.evaluate("([lon, lat]) => window.look(lon, lat, 40)", [lon, lat])
        near_requests = _cloud_files(requests)
    assert log.errors == [], log.errors
    assert failures == [], failures
    assert far["selected"] >= 1 and far["points"] > 0, far
    # From 3 km only the top of the octree; from 40 m a deeper subtree and more tiles.
    assert "/cloud/subtrees/0.0.0.0.subtree" in far_requests
    seen = (far, near, far_requests, near_requests)
    assert len(near_requests) > len(far_requests), seen
    deepest = max(int(u.split("/")[2]) for u in near_requests if u.endswith(".glb"))
    shallow = max(int(u.split("/")[2]) for u in far_requests if u.endswith(".glb"))
    assert deepest >= 2 > shallow, seen
    assert any(u.startswith("/cloud/subtrees/2.") for u in near_requests), seen
    assert near["selected"] > far["selected"], seen


def _cloud_files(urls: list[str]) -> list[str]:
    """The point cloud's glb and subtree requests so far (paths from the site root)."""
    return sorted({u for u in urls if u.startswith("/cloud/") and not u.endswith(".json")})
