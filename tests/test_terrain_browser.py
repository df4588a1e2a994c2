"""CesiumJS (npm, headless Chromium) refines the terrain LOD tree, explicit and implicit: from
far it draws and requests only the top tile; close over one corner it requests and draws the
finest tiles there (and not everywhere), and the surface it picks lies at the grid's height
within the drawn tile's error."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser import CesiumSite, open_page
from playwright.sync_api import Browser

from bench.chromium import CESIUM, chromium_available
from tiles import TerrainGrid, TerrainWriter, TilesetOptions, write_tileset
from tiles.terrain import levels_for
from twin.geo import LocalFrame

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (chromium_available() and CESIUM.is_dir()), reason="needs chromium and cesium"
    ),
]
FRAME = LocalFrame(121.5, 31.23, 10.0)
CELL = 4.0  # metres
SIDE = 257  # cells a side: 256 / 64 → levels 0, 1, 2
LEAF = 64
FINEST = 2.0  # metres; level errors 8, 4, 2
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script><script src="/cesium/Cesium.js"></script>
<style>html,body,#v{width:100%;height:100%;margin:0}</style></head><body><div id="v"></div>
<script>
let viewer, tileset;
const visible = new Set();
async function settle() {
  // Render until the tileset has been fully loaded for a few frames in a row.
  let calm = 0;
  for (let i = 0; i < 300 && calm < 3; i++) {
    viewer.scene.render();
    await new Promise((resolve) => setTimeout(resolve, 50));
    calm = tileset.tilesLoaded ? calm + 1 : 0;
  }
}
window.open_tileset = async (url) => {
  viewer = new Cesium.Viewer("v", {globe: false, skyBox: false, skyAtmosphere: false,
    useDefaultRenderLoop: false, animation: false, timeline: false, baseLayerPicker: false,
    geocoder: false, homeButton: false, sceneModePicker: false, navigationHelpButton: false,
    infoBox: false, selectionIndicator: false});
  tileset = await Cesium.Cesium3DTileset.fromUrl(url);
  viewer.scene.primitives.add(tileset);
  tileset.tileVisible.addEventListener((tile) => visible.add(tile.content.url));
};
window.look_down = async (lon, lat, height) => {
  viewer.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
    orientation: {heading: 0, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0}});
  await settle();
  visible.clear();
  viewer.scene.render();
  const c = viewer.scene.canvas;
  const centre = new Cesium.Cartesian2(c.clientWidth / 2, c.clientHeight / 2);
  const picked = viewer.scene.pick(centre);
  const at = viewer.scene.pickPosition(centre);
  const carto = at && Cesium.Cartographic.fromCartesian(at);
  return {visible: [...visible], picked: picked && picked.content ? picked.content.url : null,
    position: carto && [Cesium.Math.toDegrees(carto.longitude),
                        Cesium.Math.toDegrees(carto.latitude), carto.height]};
};
</script></body></html>"""


def surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hills (metres) at ENU (x, y) metres, with detail at several scales so every level's TIN
    differs; between cells of 4 m it bends by at most a few centimetres."""
    return 40 + 25 * np.sin(x / 90) * np.cos(y / 70) + 6 * np.sin(x / 17 + y / 23)


def to_enu(cols: np.ndarray, rows: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Cell centres on a 4 m grid, row 0 north, centred on the frame's origin."""
    half = (SIDE - 1) / 2
    return np.column_stack([(cols - half) * CELL, (half - rows) * CELL, z])


def heights() -> np.ndarray:
    """The surface sampled at the cell centres, (rows, cols) metres."""
    r, c = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    xyz = to_enu(c.ravel(), r.ravel(), np.zeros(r.size))
    return surface(xyz[:, 0], xyz[:, 1]).reshape(SIDE, SIDE)


def _level(uri: str) -> int:
    """Level of a terrain content URI (``terrain/terrain.glb`` is the explicit top)."""
    found = re.search(r"terrain/(\d+)/\d+/\d+\.glb", uri)
    return int(found.group(1)) if found else 0


def _terrain_glbs(requested: list[str]) -> list[str]:
    return [path for path in requested if "/terrain/" in path and path.endswith(".glb")]


@pytest.mark.parametrize("tiling", ["explicit", "implicit"])
def test_cesium_refines_terrain_near_the_camera(
    served: CesiumSite, browser: Browser, tiling: str
) -> None:
    base, root, requested = served.base, served.root, served.requested
    grid = TerrainGrid(heights(), to_enu, finest_error=FINEST, leaf_cells=LEAF)
    assert levels_for((SIDE, SIDE), LEAF) == 2
    options = TilesetOptions(tiling, "none")  # type: ignore[arg-type]
    write_tileset(root / tiling, FRAME.enu_to_ecef_matrix(), [TerrainWriter(grid)], options)
    page, log = open_page(browser, f"{base}/index.html", width=800, height=600)
    requested.clear()
    page.evaluate("(url) => window.open_tileset(url)", f"/{tiling}/tileset.json")
    lon, lat, h = FRAME.to_geodetic(np.array([[0.0, 0.0, 6000.0]]))[0]
    far = page.evaluate("(a) => window.look_down(...a)", [float(lon), float(lat), float(h)])
    far_requests = _terrain_glbs(requested)
    assert {_level(u) for u in far["visible"]} == {0}, far
    assert far_requests and {_level(u) for u in far_requests} == {0}, far_requests
    assert far["picked"] is not None and _level(far["picked"]) == 0

    # 60 m above the ground, 40 m inside the south-west corner.
    corner = to_enu(np.array([0.0]), np.array([SIDE - 1.0]), np.zeros(1))[0]
    x, y = corner[0] + 40, corner[1] + 40
    ground = float(surface(x, y))
    lon, lat, h = FRAME.to_geodetic(np.array([[x, y, ground + 60]]))[0]
    requested.clear()
    near = page.evaluate("(a) => window.look_down(...a)", [float(lon), float(lat), float(h)])
    near_requests = _terrain_glbs(requested)
    assert log.errors == [], log.errors
    levels = [_level(u) for u in near_requests]
    assert max(levels) == 2, near_requests
    assert levels.count(2) < 16, near_requests  # only the tiles near the corner
    south_west_leaf = "terrain/2/0/0.glb" if tiling == "implicit" else "terrain/2/0/3.glb"
    assert any(u.endswith(south_west_leaf) for u in near["visible"]), near["visible"]
    assert near["picked"] is not None and near["picked"].endswith(south_west_leaf), near
    # The picked surface point: under the camera, at the grid's height within the leaf error.
    px, py, pz = FRAME.to_enu(*near["position"])
    assert np.hypot(px - x, py - y) < 1.0
    assert abs(pz - surface(px, py)) <= FINEST + 0.3, (pz, surface(px, py))
