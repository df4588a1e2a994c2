"""CesiumJS (npm, headless Chromium) loads the LOD tilesets — explicit and implicit with
meshopt compression, explicit with Draco — refines them, and picking a building at the finest
level returns its element_id."""

from __future__ import annotations

import json

import numpy as np
import pytest
from browser import CesiumSite, open_page
from synthetic_city import FRAME, synthetic_city

from bench.chromium import CESIUM, chromium_available, launch
from tiles import BuildingsWriter, TilesetOptions, write_tileset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (chromium_available() and CESIUM.is_dir()), reason="needs chromium and cesium"
    ),
]
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script><script src="/cesium/Cesium.js"></script>
<style>html,body,#v{width:100%;height:100%;margin:0}</style></head><body><div id="v"></div>
<script>
window.run = async (url, lon, lat, height) => {
  const viewer = new Cesium.Viewer("v", {baseLayer: false, animation: false, timeline: false,
    baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, infoBox: false, selectionIndicator: false});
  const tileset = await Cesium.Cesium3DTileset.fromUrl(url);
  viewer.scene.primitives.add(tileset);
  const loaded = new Promise((resolve) => tileset.allTilesLoaded.addEventListener(resolve));
  viewer.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
    orientation: {heading: 0, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0}});
  await loaded;
  // An implicit tileset reports "all loaded" once its subtree is in; render until content is.
  for (let i = 0; i < 100 && !(tileset.tilesLoaded && tileset.statistics.selected); i++) {
    viewer.scene.render();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const c = viewer.scene.canvas;
  const picked = viewer.scene.pick(new Cesium.Cartesian2(c.clientWidth / 2, c.clientHeight / 2));
  const tile = picked && picked.content ? picked.content.tile : null;
  return {id: picked && picked.getProperty ? picked.getProperty("element_id") : null,
          leaf: tile ? tile.children.length === 0 && tile.geometricError === 0 : null,
          selected: tileset.statistics.selected,
          loaded: tileset.statistics.numberOfLoadedTilesTotal,
          failed: tileset.statistics.numberOfFailedTiles ?? null};
};
</script></body></html>"""


@pytest.mark.parametrize(
    ("tiling", "compression"),
    [("explicit", "meshopt"), ("implicit", "meshopt"), ("explicit", "draco")],
)
def test_cesium_refines_compressed_lod_and_picks(served: CesiumSite, tiling: str, compression: str):
    base, root = served.base, served.root
    city = synthetic_city(400, seed=5, half_size=600)
    name = f"{tiling}-{compression}"
    options = TilesetOptions(tiling, compression, max_features=20)  # type: ignore[arg-type]
    write_tileset(root / name, FRAME.enu_to_ecef_matrix(), [BuildingsWriter(city)], options)
    # The tallest building: nothing covers its roof seen from above.
    target = max(city, key=lambda b: float(b.positions[:, 2].max()))
    centre = target.positions.mean(axis=0)
    top = float(target.positions[:, 2].max())
    lon, lat, height = FRAME.to_geodetic(np.array([[centre[0], centre[1], top]]))[0]
    with launch() as browser:
        page, log = open_page(browser, f"{base}/index.html")
        result = page.evaluate(
            "([u, lon, lat, h]) => window.run(u, lon, lat, h)",
            [f"/{name}/tileset.json", float(lon), float(lat), float(height) + 150],
        )
    assert log.errors == [], log.errors
    assert result["id"] == target.element_id, json.dumps(result)
    assert result["leaf"] is True, json.dumps(result)  # picked at the finest level
    assert result["loaded"] >= 2
