"""The workspace the viewer tests open: the bundled sample district (buildings, roads, water,
jurisdictions, cameras, DTM and orthophoto) plus a small coloured LiDAR cloud over Lujiazui,
built with the real `twin build`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import laspy
import numpy as np
import pytest
import yaml
from paths import SAMPLE_SRC, TWIN
from pyproj import CRS, Transformer

CLOUD_CENTRE = (121.5005, 31.2387)  # lon, lat (deg): Lujiazui, in the middle of the sample
CLOUD_SIDE_M = 300.0
CLOUD_POINTS = 120_000
CLOUD_RGB = (255, 40, 200)  # magenta ground: no such colour in the orthophoto
UTM51N = 32651


def write_cloud(path: Path, points: int = CLOUD_POINTS, seed: int = 5) -> None:
    """A LAS square of `points` points (UTM 51N, 16-bit RGB): magenta ground (class 2) at 20 m
    ellipsoidal height, with a 40 m box of class 6 (cyan) in its north-east quarter."""
    rng = np.random.default_rng(seed)
    to_utm = Transformer.from_crs(4326, UTM51N, always_xy=True)
    cx, cy = to_utm.transform(*CLOUD_CENTRE)
    xy = rng.uniform(-CLOUD_SIDE_M / 2, CLOUD_SIDE_M / 2, (points, 2))
    roof = (xy[:, 0] > 40) & (xy[:, 0] < 100) & (xy[:, 1] > 40) & (xy[:, 1] < 100)
    header = laspy.LasHeader(point_format=7, version="1.4")
    header.offsets = [cx, cy, 0.0]
    header.scales = [0.01, 0.01, 0.01]
    header.add_crs(CRS.from_epsg(UTM51N))
    record = laspy.ScaleAwarePointRecord.zeros(points, header=header)
    record.x, record.y = xy[:, 0] + cx, xy[:, 1] + cy
    record.z = np.where(roof, 60.0, 20.0)
    record.classification = np.where(roof, 6, 2).astype(np.uint8)
    rgb = np.where(roof[:, None], [0, 220, 255], CLOUD_RGB)
    record.red, record.green, record.blue = (rgb.T * 257).astype(np.uint16)
    with laspy.open(path, mode="w", header=header) as writer:
        writer.write_points(record)


def viewer_source(folder: Path) -> Path:
    """A copy of the sample source with the cloud added as ``drone.pointcloud``."""
    shutil.copytree(SAMPLE_SRC, folder)
    write_cloud(folder / "drone" / "cloud.las")
    config = yaml.safe_load((folder / "twin.yaml").read_text("utf-8"))
    config["drone"]["pointcloud"] = ["drone/cloud.las"]
    (folder / "twin.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return folder


def build_viewer_workspace(root: Path) -> Path:
    """Build the viewer workspace under `root` (`root/src` → `root/ws`) once and return it."""
    ws = root / "ws"
    if (ws / "twin.json").is_file():
        return ws
    src = viewer_source(root / "src")
    result = subprocess.run(
        [TWIN, "build", str(src), "-o", str(ws)], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return ws


@pytest.fixture(scope="session")
def viewer_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The viewer workspace, built once per test session (shared by the viewer test files)."""
    return build_viewer_workspace(tmp_path_factory.getbasetemp() / "viewer")
