"""City-scale build: `twin build` on a generated district of 100,000 footprints with a DSM/DTM.

`python -m bench build100k` or `python -m bench.build100k --buildings N`. The district (a
jittered grid of rectangular footprints in UTM 51N, GeoPackage; a 2 m DTM with gentle relief and
a DSM = DTM + each building's height) is written once into a temporary folder. Reports wall
time, the build's own step timings and the peak RSS summed over the process tree. Goal: < 60 s
and < 2 GiB on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import yaml
from rasterio.transform import from_origin

from bench.common import TWIN, console, show
from bench.pointcloud import measure

DEFAULT_BUILDINGS = 100_000
PITCH_M = 25.0  # grid spacing of footprints, metres
PIXEL_M = 2.0  # DSM/DTM resolution, metres
ORIGIN = (350_000.0, 3_450_000.0)  # UTM 51N (Shanghai) west, south
CRS = "EPSG:32651"


def generate(folder: Path, buildings: int, seed: int = 3) -> None:
    """Write buildings.gpkg, dtm.tif, dsm.tif and twin.yaml into `folder`."""
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(buildings))
    k = np.arange(buildings)
    i, j = k // side, k % side
    w, d = rng.uniform(8, 18, (2, buildings))
    x0 = ORIGIN[0] + i * PITCH_M + rng.uniform(0, PITCH_M - w - 2)
    y0 = ORIGIN[1] + j * PITCH_M + rng.uniform(0, PITCH_M - d - 2)
    heights = rng.uniform(6, 80, buildings).round(1)
    boxes = shapely.box(x0, y0, x0 + w, y0 + d)
    frame = gpd.GeoDataFrame(
        {"id": [f"b{n}" for n in k], "height": heights}, geometry=boxes, crs=CRS
    )
    frame.to_file(folder / "buildings.gpkg", driver="GPKG")
    extent = side * PITCH_M + 50
    cells = int(extent / PIXEL_M)
    xs = np.arange(cells) * PIXEL_M
    ground = (5 + 3 * np.sin(xs / 700)[None, :] + 2 * np.cos(xs / 900)[:, None]).astype(np.float32)
    surface = ground.copy()
    for n in range(buildings):
        c0, c1 = int((x0[n] - ORIGIN[0]) / PIXEL_M), int((x0[n] + w[n] - ORIGIN[0]) / PIXEL_M)
        r1 = cells - int((y0[n] - ORIGIN[1]) / PIXEL_M)
        r0 = cells - int((y0[n] + d[n] - ORIGIN[1]) / PIXEL_M)
        surface[r0:r1, c0:c1] += heights[n]
    transform = from_origin(ORIGIN[0], ORIGIN[1] + cells * PIXEL_M, PIXEL_M, PIXEL_M)
    for name, data in (("dtm.tif", ground), ("dsm.tif", surface)):
        profile = {"driver": "GTiff", "width": cells, "height": cells, "count": 1,
                   "dtype": "float32", "crs": CRS, "transform": transform, "tiled": True,
                   "compress": "deflate", "nodata": -9999.0}  # fmt: skip
        with rasterio.open(folder / name, "w", **profile) as out:
            out.write(data[None])
    config = {
        "name": f"Generated district ({buildings:,} buildings)",
        "layers": {"buildings": {"path": "buildings.gpkg", "id": "id", "height": "height"}},
        "drone": {"dsm": "dsm.tif", "dtm": "dtm.tif"},
    }
    (folder / "twin.yaml").write_text(yaml.safe_dump(config))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.build100k")
    parser.add_argument("--buildings", type=int, default=DEFAULT_BUILDINGS)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory() as tmp:
        src, ws = Path(tmp) / "src", Path(tmp) / "ws"
        src.mkdir()
        start = time.perf_counter()
        generate(src, args.buildings)
        console.print(f"generated {args.buildings:,} footprints + DSM/DTM in "
                      f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        run = measure([TWIN, "build", str(src), "-o", str(ws)])
        if run.returncode:
            raise SystemExit(f"build failed ({run.returncode}): {run.stderr}")
        report = json.loads((ws / "twin.json").read_text())["report"]
        rows = [["total", f"{run.seconds:.1f}"]]
        rows += [[step, f"{s:.1f}"] for step, s in report["timings_s"].items()]
        rows.append(["peak MiB (process tree)", f"{run.peak_mib:,.0f}"])
        rows.append(["height sources", json.dumps(report.get("height_sources", {}))])
        show(f"twin build, {args.buildings:,} footprints with DSM/DTM (goal < 60 s, < 2048 MiB)",
             ["step", "seconds"], rows)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
