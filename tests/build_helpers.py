"""Helpers for the `twin build` tests: small source folders made at test time from sample
buildings, the CLI in a subprocess, and content hashes of a workspace."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import geopandas as gpd
import yaml
from paths import SAMPLE_SRC, TWIN

# A few sample buildings near Lujiazui (OSM ids), all polygons with a height column.
SMALL_AREA = (121.497, 31.236, 121.503, 31.241)


def sample_buildings(limit: int = 12) -> gpd.GeoDataFrame:
    """Polygon buildings of the sample inside `SMALL_AREA`, lon/lat, only id/name/height."""
    frame = gpd.read_file(SAMPLE_SRC / "buildings.geojson", bbox=SMALL_AREA)
    frame = frame[frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    frame = frame.sort_values("id").head(limit)
    return frame[["id", "name", "height", "geometry"]].reset_index(drop=True)


def write_source(folder: Path, config: dict[str, Any]) -> Path:
    """Write `config` as `folder/twin.yaml`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "twin.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return folder


def small_source(folder: Path, limit: int = 12) -> Path:
    """A source folder with a handful of sample buildings (GeoJSON) and the sample cameras."""
    folder.mkdir(parents=True, exist_ok=True)
    sample_buildings(limit).to_file(folder / "buildings.geojson", driver="GeoJSON")
    (folder / "cameras.geojson").write_bytes((SAMPLE_SRC / "cameras.geojson").read_bytes())
    sample = yaml.safe_load((SAMPLE_SRC / "twin.yaml").read_text("utf-8"))
    return write_source(
        folder,
        {
            "name": "small",
            "layers": {
                "buildings": {"path": "buildings.geojson", "id": "id", "height": "height"},
                "cameras": sample["layers"]["cameras"],
            },
        },
    )


def run_build(src: Path, ws: Path) -> subprocess.CompletedProcess[str]:
    """`twin build SRC -o WS` in a subprocess."""
    return subprocess.run(
        [TWIN, "build", str(src), "-o", str(ws)], capture_output=True, text=True, timeout=300
    )


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def twin_build(src: Path, ws: Path, *flags: str, epoch: int | None = None) -> str:
    """`twin build SRC -o WS FLAGS` that must succeed, with SOURCE_DATE_EPOCH set to `epoch` (s)
    or unset; its stderr (the progress log)."""
    env = {**os.environ}
    env.pop("SOURCE_DATE_EPOCH", None)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    result = subprocess.run(
        [TWIN, "build", str(src), "-o", str(ws), *flags],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr
