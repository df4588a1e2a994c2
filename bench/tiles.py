"""3D Tiles benchmark: 100 k box buildings over 10 × 10 km written flat, as an explicit LOD
tree and as implicit tiling, without compression, with meshopt and with Draco.

Run `python -m bench.tiles` (each variant runs in its own process, so peak memory is its own).
Prints wall time, peak RSS, tiles, glbs, bytes on disk, the largest glb, and the bytes a client
fetches for the overview.

Overview model (screen-space error, as CesiumJS computes it): a 1080 px tall screen, 60°
vertical field of view, the camera looking straight down from the distance at which the whole
city fits the screen, D = (city width / 2) / tan(30°) ≈ 8.66 km, and every tile taken at that
distance. A tile with geometric error e shows SSE = e · 1080 / (2 D tan 30°) px; it is refined
while SSE > 16 px (so e > ≈148 m). The overview fetch is tileset.json plus the content of every
tile visited (refined tiles too, as CesiumJS loads ancestors first) plus, for implicit tiling,
every subtree file (an upper bound).
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import show

BUILDINGS = 100_000
CITY_M = 10_000.0
SCREEN_PX = 1080
FOV_DEG = 60.0
MAX_SSE_PX = 16.0
VARIANTS: dict[str, dict[str, Any]] = {
    "flat": {"lod": False, "tiling": "explicit", "compression": "none"},
    "flat-meshopt": {"lod": False, "tiling": "explicit", "compression": "meshopt"},
    "lod": {"lod": True, "tiling": "explicit", "compression": "none"},
    "lod-meshopt": {"lod": True, "tiling": "explicit", "compression": "meshopt"},
    "lod-draco": {"lod": True, "tiling": "explicit", "compression": "draco"},
    "implicit-meshopt": {"lod": True, "tiling": "implicit", "compression": "meshopt"},
}
BOX = np.array(
    [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
     [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]
)  # fmt: skip


def city(n: int = BUILDINGS, seed: int = 1) -> list[Any]:
    """`n` boxes 8–40 m wide, 4–120 m tall, uniformly over CITY_M × CITY_M metres (ENU)."""
    from tiles import FeatureMesh

    rng = np.random.default_rng(seed)
    xy = rng.uniform(-CITY_M / 2, CITY_M / 2, (n, 2))
    wd = rng.uniform(8, 40, (n, 2))
    heights = rng.uniform(4, 120, n)
    out = []
    for i in range(n):
        (x, y), (w, d), h = xy[i], wd[i], float(heights[i])
        corners = [(x, y), (x + w, y), (x + w, y + d), (x, y + d)]
        positions = np.array([(*c, 0.0) for c in corners] + [(*c, h) for c in corners])
        props: dict[str, Any] = {
            "name": f"B{i}",
            "kind": "building",
            "height": h,
            "levels": int(h // 3),
        }
        out.append(FeatureMesh(f"building:{i}", props, positions, BOX))
    return out


def overview_bytes(out: Path) -> int:
    """Bytes fetched for the overview of an explicit tileset (see the module doc)."""
    distance = (CITY_M / 2) / math.tan(math.radians(FOV_DEG / 2))
    per_metre = SCREEN_PX / (2 * distance * math.tan(math.radians(FOV_DEG / 2)))
    doc = json.loads((out / "tileset.json").read_text())

    def visit(tile: dict[str, Any]) -> int:
        uri = tile.get("content", {}).get("uri")
        size = (out / uri).stat().st_size if uri else 0
        if tile["geometricError"] * per_metre > MAX_SSE_PX:
            size += sum(visit(child) for child in tile.get("children", []))
        return size

    return (out / "tileset.json").stat().st_size + visit(doc["root"])


def run_variant(name: str) -> dict[str, Any]:
    """Write one variant in this process; its figures as a dict."""
    from tiles import BuildingsWriter, TilesetOptions, write_tileset
    from twin.geo import LocalFrame

    buildings = city()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tiles"
        start = time.perf_counter()
        report = write_tileset(
            out,
            LocalFrame(121.49, 31.24, 4.0).enu_to_ecef_matrix(),
            [BuildingsWriter(buildings)],
            TilesetOptions(**VARIANTS[name]),
        )
        seconds = time.perf_counter() - start
        subtrees = sum(p.stat().st_size for p in out.rglob("*.subtree"))
        explicit_twin = None
        if VARIANTS[name]["tiling"] == "implicit":
            # Implicit tiles hold the same content as the explicit plan: traverse its explicit
            # twin and add every subtree file.
            twin_out = Path(tmp) / "twin"
            write_tileset(
                twin_out,
                np.eye(4),
                [BuildingsWriter(buildings)],
                TilesetOptions(**{**VARIANTS[name], "tiling": "explicit"}),
            )
            explicit_twin = overview_bytes(twin_out)
        overview = overview_bytes(out) if explicit_twin is None else explicit_twin + subtrees
    return {
        "variant": name,
        "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tiles": report.tiles,
        "glbs": report.glbs,
        "mib": report.bytes / 2**20,
        "largest_kib": report.largest_glb / 1024,
        "overview_mib": overview / 2**20,
    }


def main() -> None:
    rows = []
    for name in VARIANTS:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.tiles", name], capture_output=True, text=True
        )
        if proc.returncode:
            raise SystemExit(f"{name} failed: {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(list(result.values()))
    columns = ["variant", "write s", "peak RSS MiB", "tiles", "glbs", "MiB", "largest KiB"]
    show(
        f"3D Tiles: {BUILDINGS} boxes over {CITY_M / 1000:.0f} km", [*columns, "overview MiB"], rows
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(run_variant(sys.argv[1])))
    else:
        main()
