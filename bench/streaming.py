"""Streaming benchmark: the bundled sample district in CesiumJS (headless Chromium, WebGL through
SwiftShader), served by `twin serve`, built with each tile variant; then the war-room page
itself.

Run `python -m bench streaming`. For each variant: build the sample (`twin build` with its
flags), serve it, then in a fresh browser context (empty cache) point the camera straight down
at the district's centre from OVERVIEW_HEIGHT_M and load the tileset. Timed: from asking for
tileset.json to `tileset.tilesLoaded` (every tile that view needs is loaded and ready), polled
every 25 ms. Bytes: the bodies of every /tiles/ response as sent (Content-Length, i.e. after
gzip where the server gzips). Median of REPEATS runs.

The war-room page (web/, the default build) is opened in a fresh context at 1920×1080 and
3840×2160, and timed from navigation by its own performance marks: `twin:first-buildings` (the
first frame that draws a building tile) and `twin:tiles-loaded` (every tile of the first view
loaded and drawn). SwiftShader renders in software, so absolute times are far slower than on a
GPU, and on a shared machine they follow its load (the table shows the load average).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Request

from bench.chromium import CESIUM, chromium_available, launch
from bench.common import SAMPLE, TWIN, free_port, show

VARIANTS = {
    "flat": ["--tiling", "explicit", "--no-lod", "--compression", "none"],
    "lod-meshopt (default)": [
        "--tiling",
        "explicit",
        "--lod",
        "--compression",
        "meshopt",
    ],
    "lod-draco": ["--tiling", "explicit", "--lod", "--compression", "draco"],
    "implicit-lod-meshopt": ["--tiling", "implicit", "--lod", "--compression", "meshopt"],
    "lod-meshopt from .3tz": ["--lod", "--compression", "meshopt", "--archive"],
}
DEFAULT_VARIANT = "lod-meshopt (default)"
OVERVIEW_HEIGHT_M = 5000.0
VIEWPORT = (1280, 720)  # CSS px
REPEATS = 3
PAGE_PATH = "/__bench-streaming.html"
PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script>window.CESIUM_BASE_URL = "/cesium/";</script><script src="/cesium/Cesium.js"></script>
<style>html,body,#v{width:100%;height:100%;margin:0}</style></head><body><div id="v"></div>
<script>
window.overview = async (lon, lat, height) => {
  const viewer = new Cesium.Viewer("v", {baseLayer: false, animation: false, timeline: false,
    baseLayerPicker: false, geocoder: false, homeButton: false, sceneModePicker: false,
    navigationHelpButton: false, infoBox: false, selectionIndicator: false});
  viewer.camera.setView({destination: Cesium.Cartesian3.fromDegrees(lon, lat, height),
    orientation: {heading: 0, pitch: -Cesium.Math.PI_OVER_TWO, roll: 0}});
  let frames = 0;
  viewer.scene.postRender.addEventListener(() => { frames += 1; });
  const start = performance.now();
  const tileset = await Cesium.Cesium3DTileset.fromUrl("/tiles/tileset.json");
  viewer.scene.primitives.add(tileset);
  const after = frames + 2;
  while (!(frames >= after && tileset.tilesLoaded)) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    if (performance.now() - start > 120000) throw new Error("overview not loaded in 120 s");
  }
  const s = tileset.statistics;
  return {seconds: (performance.now() - start) / 1000, selected: s.selected,
          loaded: s.numberOfLoadedTilesTotal};
};
</script></body></html>"""


@dataclass
class Transfer:
    """/tiles/ responses seen by the page: count and encoded body bytes."""

    requests: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)


def _serve(ws: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [TWIN, "serve", str(ws), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TWIN_TOKENS": "bench-token:viewer"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"twin serve {ws} did not start")


def _load_once(
    browser: Browser, url: str, lon: float, lat: float
) -> tuple[dict[str, Any], Transfer]:
    """One overview load in a fresh context (empty cache): the page's figures and the transfer."""
    context = browser.new_context(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
    page = context.new_page()
    page.route(
        f"{url}{PAGE_PATH}", lambda route: route.fulfill(body=PAGE, content_type="text/html")
    )
    transfer = Transfer()

    def finished(request: Request) -> None:
        if "/tiles/" in request.url:
            response = request.response()
            if response is not None:
                transfer.requests += 1
                length = response.headers.get("content-length")
                transfer.bytes += int(length) if length else len(response.body())

    page.on("requestfinished", finished)
    page.on("requestfailed", lambda r: transfer.failed.append(r.url))
    try:
        page.goto(f"{url}{PAGE_PATH}")
        result: dict[str, Any] = page.evaluate("([lon, lat, h]) => window.overview(lon, lat, h)",
                               [lon, lat, OVERVIEW_HEIGHT_M])  # fmt: skip
        page.wait_for_timeout(200)  # let the last requestfinished events arrive
    finally:
        context.close()
    return result, transfer


def _workspace(root: Path, name: str) -> Path:
    """Where variant `name` is built under `root`."""
    return root / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")


def _variant(browser: Browser, name: str, flags: list[str], root: Path) -> list[object]:
    """Build, serve and load one variant `REPEATS` times; its table row."""
    from twin.workspace import Manifest, WorkspacePaths

    ws = _workspace(root, name)
    subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws), *flags], check=True,
                   capture_output=True)  # fmt: skip
    paths = WorkspacePaths(ws)
    if "--archive" in flags:
        shutil.rmtree(paths.tiles)  # serve the archive alone
    minlon, minlat, maxlon, maxlat = Manifest.read(paths.manifest).bounds
    process, url = _serve(ws)
    try:
        runs = [
            _load_once(browser, url, (minlon + maxlon) / 2, (minlat + maxlat) / 2)
            for _ in range(REPEATS)
        ]
    finally:
        process.terminate()
        process.wait(timeout=20)
    failed = [u for _, t in runs for u in t.failed]
    if failed:
        raise SystemExit(f"{name}: failed requests {failed[:5]}")
    seconds = statistics.median(r["seconds"] for r, _ in runs)
    result, transfer = runs[0]
    return [name, seconds, transfer.requests, transfer.bytes / 1024, result["selected"],
            result["loaded"]]  # fmt: skip


PAGE_SIZES = ((1920, 1080, REPEATS), (3840, 2160, 1))


def _war_room(browser: Browser, ws: Path) -> list[list[object]]:
    """The war-room page on `ws` at each of PAGE_SIZES: rows of size, runs, median seconds to
    the first buildings drawn and to every tile loaded, and the load average."""
    process, url = _serve(ws)
    rows: list[list[object]] = []
    try:
        for width, height, repeats in PAGE_SIZES:
            marks = []
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                try:
                    page.goto(f"{url}/?token=bench-token")
                    page.wait_for_function("document.body.dataset.ready === '1'", timeout=300_000)
                    marks.append(page.evaluate(
                        "['twin:first-buildings', 'twin:tiles-loaded'].map((name) =>"
                        " performance.getEntriesByName(name)[0].startTime / 1000)"
                    ))  # fmt: skip
                finally:
                    context.close()
            first = statistics.median(m[0] for m in marks)
            loaded = statistics.median(m[1] for m in marks)
            rows.append([f"{width}×{height}", repeats, first, loaded, os.getloadavg()[0]])
    finally:
        process.terminate()
        process.wait(timeout=20)
    return rows


def main() -> None:
    if not (chromium_available() and CESIUM.is_dir()):
        print("streaming: skipped (needs Debian chromium and web/node_modules/cesium)")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp, launch() as browser:
        for name, flags in VARIANTS.items():
            rows.append(_variant(browser, name, flags, Path(tmp)))
        page_rows = _war_room(browser, _workspace(Path(tmp), DEFAULT_VARIANT))
    show(
        f"Sample district overview in headless CesiumJS ({OVERVIEW_HEIGHT_M:.0f} m above the "
        f"centre, {VIEWPORT[0]}×{VIEWPORT[1]} px; median of {REPEATS})",
        ["variant", "s to tilesLoaded", "tile requests", "KiB transferred", "tiles drawn",
         "tiles loaded"],
        rows,
    )  # fmt: skip
    show(
        "The war-room page (web/) on the default build, from navigation (median)",
        ["viewport", "runs", "s to first buildings", "s to all tiles", "load average"],
        page_rows,
    )


if __name__ == "__main__":
    main()
